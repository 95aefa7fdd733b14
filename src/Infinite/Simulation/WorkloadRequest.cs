namespace Infinite.Simulation;

/// <summary>One request of a workload: when it arrives (seconds from the start), its prompt length and how many
/// tokens it generates. Lengths are what matter to a scheduler; token values are not simulated.</summary>
public readonly record struct WorkloadRequest(double ArrivalSeconds, int PromptTokens, int OutputTokens)
{
    /// <summary>Context at the end: prompt plus every generated token.</summary>
    public long TotalTokens => (long)PromptTokens + OutputTokens;
}
