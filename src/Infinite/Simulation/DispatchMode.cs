namespace Infinite.Simulation;

/// <summary>How arriving requests reach an instance (<see cref="SimulationOptions.Dispatch"/>).</summary>
public enum DispatchMode
{
    /// <summary>Independent servers behind a load balancer, as the paper's baselines run: on arrival a request goes to
    /// the instance with the fewest outstanding prompt tokens (dispatched and not finished; ties to the lower index)
    /// and waits in that instance's own first-come-first-served queue; it never moves to another queue (a preempted
    /// request goes back to the front of its own). It is admitted when the page space can give that home its pages,
    /// local ones or, under a borrowing policy, borrowed ones.</summary>
    Arrival,

    /// <summary>As <see cref="Arrival"/>, but the balancer deals requests round-robin.</summary>
    ArrivalRoundRobin,

    /// <summary>One cluster-wide first-come-first-served queue; the head is bound to an instance only when the page
    /// space can take its prompt (perfect late binding), as the engine's one scheduler does.</summary>
    Global,
}

/// <summary>Command-line names of <see cref="DispatchMode"/>.</summary>
public static class DispatchModes
{
    public static IReadOnlyList<string> Names { get; } = ["arrival", "round-robin", "global"];

    /// <summary>"arrival", "round-robin" or "global".</summary>
    /// <exception cref="ArgumentException">Any other name.</exception>
    public static DispatchMode Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            "arrival" => DispatchMode.Arrival,
            "round-robin" => DispatchMode.ArrivalRoundRobin,
            "global" => DispatchMode.Global,
            _ => throw new ArgumentException($"Unknown dispatch '{name}': expected {string.Join(", ", Names)}."),
        };
    }

    /// <summary>The command-line name of a mode.</summary>
    public static string Name(DispatchMode mode) => mode switch
    {
        DispatchMode.Arrival => "arrival",
        DispatchMode.ArrivalRoundRobin => "round-robin",
        _ => "global",
    };
}
