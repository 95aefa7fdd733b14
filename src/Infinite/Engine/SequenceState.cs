namespace Infinite.Engine;

/// <summary>Where a request is in its life.</summary>
internal enum SequenceState
{
    Waiting,
    Running,
    Finished,
}
