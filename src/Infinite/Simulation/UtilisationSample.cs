namespace Infinite.Simulation;

/// <summary>KV memory in use across the cluster at one instant: fraction of all pages held by requests, and the
/// requests running and queued then.</summary>
public readonly record struct UtilisationSample(double Seconds, double KvUtilisation, int Running, int Queued);
