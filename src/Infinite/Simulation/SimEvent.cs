namespace Infinite.Simulation;

/// <summary>What happens at an instant of simulated time.</summary>
internal enum SimEventKind
{
    /// <summary>A request of the workload arrives (<see cref="SimEvent.Target"/> = request index).</summary>
    Arrival,
    /// <summary>An instance finishes its step (<see cref="SimEvent.Target"/> = instance).</summary>
    StepDone,
    /// <summary>Shared-host lockstep (<see cref="SimulationOptions.SharedHost"/>): plan and start the next cluster
    /// step. Scheduled at the instant work appears, after every event already queued for that instant, so requests
    /// arriving together are admitted into the same step as the engine's scheduler admits them.</summary>
    ClusterStep,
}

/// <summary>One event: its kind and the request or instance it concerns.</summary>
internal readonly record struct SimEvent(SimEventKind Kind, int Target);
