namespace Infinite.Cluster;

/// <summary>
/// Requests waiting for memory, as the planner models them: freed memory on an instance is filled with up to
/// <paramref name="Requests"/> requests of <paramref name="BlocksPerRequest"/> pages each. The default (none) makes
/// the planner value moves only for the step time they save.
/// </summary>
public readonly record struct Demand(int Requests, int BlocksPerRequest)
{
    /// <summary>No waiting requests.</summary>
    public static Demand None => default;
}
