using System.Diagnostics;
using Infinite.Native;

namespace Infinite.Runtime.Mpi;

/// <summary>
/// Rank 0's stand-in for the instance of another MPI rank: <see cref="Step"/> ships the <see cref="InstancePlan"/> to
/// that rank's <see cref="MpiWorker"/> and waits for its logits while rank 0's own instance steps beside it (the
/// distributed executor runs every runner on its own thread); page moves become commands too. Queries and partial
/// results do not pass through here: the native step exchanges them directly between the ranks.
/// </summary>
public sealed class RemoteInstance : IInstanceRunner
{
    private readonly Communicator _comm;
    private readonly TimeSpan _replyTimeout;
    private readonly StepFailure? _stepFailure;
    private bool _disposed;

    /// <param name="comm">Rank 0's endpoint (shared with rank 0's own instance and the other remote instances).</param>
    /// <param name="rank">The worker's rank (1 .. size-1).</param>
    /// <param name="replyTimeout">How long a command may run on the worker (a long prefill chunk takes seconds);
    /// the communicator's own timeout only bounds each wait in between.</param>
    /// <param name="stepFailure">Set when another instance's share of the current step failed: then a missing reply
    /// is not waited for beyond the communicator's timeout (a dead worker never answers).</param>
    public RemoteInstance(Communicator comm, int rank, TimeSpan replyTimeout, StepFailure? stepFailure = null)
    {
        ArgumentNullException.ThrowIfNull(comm);
        if (rank < 1 || rank >= comm.Size)
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"worker ranks are 1 .. {comm.Size - 1}");
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(replyTimeout, TimeSpan.Zero);
        _comm = comm;
        Rank = rank;
        _replyTimeout = replyTimeout;
        _stepFailure = stepFailure;
    }

    public int Rank { get; }

    /// <summary>Waits for the worker's announcement and checks it against rank 0's own shape; a worker started with
    /// another model or KV setting is refused by name.</summary>
    public void Handshake(WorkerShape expected)
    {
        ArgumentNullException.ThrowIfNull(expected);
        var shape = new float[WorkerShape.Length];
        WorkerProtocol.ReadReply(Rank, AwaitReply(), shape);
        WorkerShape actual = WorkerShape.FromFloats(shape);
        string? difference = expected.Difference(actual);
        if (difference is not null)
            throw new InvalidOperationException($"rank {Rank} runs a different setup than rank 0: {difference}. Start every rank with the same model and KV options.");
    }

    public void Step(InstancePlan plan, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(plan);
        _comm.Send(Rank, WorkerProtocol.ControlTag, WorkerProtocol.EncodeCommand(WorkerProtocol.Command.Step, InstancePlanCodec.Encode(plan)));
        WorkerProtocol.ReadReply(Rank, AwaitReply(plan.StepId), logits);
    }

    public void SendPages(int peer, ReadOnlySpan<int> pages) =>
        Run(WorkerProtocol.Command.SendPages, WorkerProtocol.EncodePages(peer, pages), []);

    public void ReceivePages(int peer, ReadOnlySpan<int> pages) =>
        Run(WorkerProtocol.Command.ReceivePages, WorkerProtocol.EncodePages(peer, pages), []);

    /// <summary>Tells the worker to leave its loop (best effort: a gone worker is not waited for).</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        try
        {
            // One communicator timeout at most: a gone worker must not hold up rank 0's shutdown.
            _comm.Send(Rank, WorkerProtocol.ControlTag, WorkerProtocol.EncodeCommand(WorkerProtocol.Command.Shutdown, []));
            WorkerProtocol.ReadReply(Rank, _comm.Receive(Rank, WorkerProtocol.ReplyTag), []);
        }
        catch (Exception e) when (e is InfiniteException or WorkerFailedException or InvalidDataException or ObjectDisposedException)
        {
        }
    }

    private void Run(WorkerProtocol.Command command, ReadOnlySpan<byte> payload, Span<float> result)
    {
        _comm.Send(Rank, WorkerProtocol.ControlTag, WorkerProtocol.EncodeCommand(command, payload));
        WorkerProtocol.ReadReply(Rank, AwaitReply(), result);
    }

    private byte[] AwaitReply(long stepId = -1)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return _comm.Receive(Rank, WorkerProtocol.ReplyTag);
            }
            catch (CommunicationTimeoutException) when (clock.Elapsed < _replyTimeout && !(_stepFailure?.Failed(stepId) ?? false))
            {
                // A long command: keep waiting up to the reply timeout, unless the step already failed elsewhere.
            }
        }
    }
}

/// <summary>
/// Shared by the runners of one MPI cluster: the step id whose share failed on some instance, so that rank 0 stops
/// waiting for a worker's reply that may never come (under Open MPI without ULFM a dead rank is only ever a silence).
/// </summary>
public sealed class StepFailure
{
    private long _failedStep = -1;

    public void Fail(long stepId) => Interlocked.Exchange(ref _failedStep, stepId);

    public bool Failed(long stepId) => stepId >= 0 && Interlocked.Read(ref _failedStep) == stepId;
}
