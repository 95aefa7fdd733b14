namespace Infinite.Engine;

/// <summary>One finished engine step, for metrics. <see cref="Tokens"/> counts every token fed to the model
/// (<see cref="PrefillTokens"/> + <see cref="DecodeTokens"/>).</summary>
public sealed class StepCompletedEventArgs : EventArgs
{
    public required int BatchSize { get; init; }
    public required int Tokens { get; init; }
    public required int PrefillTokens { get; init; }
    public required int DecodeTokens { get; init; }
    public required TimeSpan Duration { get; init; }
    /// <summary>False when the executor threw and the step's requests failed.</summary>
    public required bool Succeeded { get; init; }
}
