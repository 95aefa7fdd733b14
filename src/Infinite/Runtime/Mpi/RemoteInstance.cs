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
    private bool _disposed;

    /// <param name="comm">Rank 0's endpoint (shared with rank 0's own instance and the other remote instances).</param>
    /// <param name="rank">The worker's rank (1 .. size-1).</param>
    /// <param name="replyTimeout">How long a command may run on the worker (a long prefill chunk takes seconds);
    /// the communicator's own timeout only bounds each wait in between.</param>
    public RemoteInstance(Communicator comm, int rank, TimeSpan replyTimeout)
    {
        ArgumentNullException.ThrowIfNull(comm);
        if (rank < 1 || rank >= comm.Size)
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"worker ranks are 1 .. {comm.Size - 1}");
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(replyTimeout, TimeSpan.Zero);
        _comm = comm;
        Rank = rank;
        _replyTimeout = replyTimeout;
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
        Run(WorkerProtocol.Command.Step, InstancePlanCodec.Encode(plan), logits);
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
            Run(WorkerProtocol.Command.Shutdown, [], []);
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

    private byte[] AwaitReply()
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return _comm.Receive(Rank, WorkerProtocol.ReplyTag);
            }
            catch (CommunicationTimeoutException) when (clock.Elapsed < _replyTimeout)
            {
                // A long command: keep waiting up to the reply timeout (a dead worker fails faster: PeerFailed).
            }
        }
    }
}
