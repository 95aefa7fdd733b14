namespace Infinite.Cluster;

/// <summary>An rManager's answer to a request for pages on behalf of another instance's request.</summary>
public enum LendDecision
{
    /// <summary>The pages were taken and are accounted to the request.</summary>
    Granted,
    /// <summary>Lending them would exceed the lending cap that protects the instance's own requests.</summary>
    CapReached,
    /// <summary>Too few free pages.</summary>
    NoFreePages,
    /// <summary>The asking instance is not the request's home: lending on behalf of a request that is itself remote
    /// would let debts chain across instances (the paper's loop guard).</summary>
    LoopGuard,
    /// <summary>The instance has failed; its pages are never handed out again.</summary>
    Failed,
}
