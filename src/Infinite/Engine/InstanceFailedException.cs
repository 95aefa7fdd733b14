namespace Infinite.Engine;

/// <summary>
/// A step or page move failed because one or more instances of a distributed executor are gone (their communicator
/// endpoint was destroyed, their process died, or they stopped answering). Only the work that depended on those
/// instances is lost: the engine marks them failed, fails the requests that had pages there and re-runs the step
/// with the others (appends are idempotent, so a re-run is safe).
/// </summary>
public sealed class InstanceFailedException : Exception
{
    public InstanceFailedException(IReadOnlyList<int> instances, string reason, Exception? inner = null)
        : base(Compose(instances, reason), inner)
    {
        ArgumentNullException.ThrowIfNull(instances);
        if (instances.Count == 0)
        {
            throw new ArgumentException("at least one failed instance must be named", nameof(instances));
        }
        Instances = [.. instances.Distinct().Order()];
        Reason = reason;
    }

    public InstanceFailedException(int instance, string reason, Exception? inner = null)
        : this([instance], reason, inner)
    {
    }

    /// <summary>The failed instances, ascending.</summary>
    public IReadOnlyList<int> Instances { get; }

    /// <summary>Why, without the instance prefix (e.g. the peer's native message).</summary>
    public string Reason { get; }

    private static string Compose(IReadOnlyList<int> instances, string reason)
    {
        string which = instances is null || instances.Count == 0 ? "an instance"
            : instances.Count == 1 ? $"instance {instances[0]}"
            : $"instances {string.Join(", ", instances.Distinct().Order())}";
        return $"{which} failed: {reason}";
    }
}
