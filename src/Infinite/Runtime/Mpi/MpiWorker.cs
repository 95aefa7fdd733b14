using Infinite.Native;

namespace Infinite.Runtime.Mpi;

/// <summary>
/// The loop of a worker rank under <c>mpirun</c>: announce its shape to rank 0, then run rank 0's commands on its
/// own instance (steps, page sends and receives) and answer each with the result or the error, until Shutdown.
/// An error in one command is reported to rank 0 and the loop goes on, so a bad plan does not take the rank down.
/// </summary>
public static class MpiWorker
{
    /// <summary>Runs until rank 0 sends Shutdown or <paramref name="cancel"/> fires; returns the number of steps run.</summary>
    public static long Run(LocalInstance instance, WorkerShape shape, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(shape);
        Communicator comm = instance.Communicator;
        if (comm.Rank == 0)
            throw new ArgumentException("rank 0 drives the workers; it does not run a worker loop", nameof(instance));
        comm.Send(0, WorkerProtocol.ReplyTag, WorkerProtocol.EncodeSuccess(shape.ToFloats()));
        float[] logits = [];
        long steps = 0;
        while (!cancel.IsCancellationRequested)
        {
            byte[] message;
            try
            {
                message = comm.Receive(0, WorkerProtocol.ControlTag);
            }
            catch (CommunicationTimeoutException)
            {
                continue; // an idle server: rank 0 has nothing to run yet
            }
            byte[] reply;
            bool stop = false;
            try
            {
                (WorkerProtocol.Command command, ReadOnlyMemory<byte> payload) = WorkerProtocol.DecodeCommand(message);
                switch (command)
                {
                    case WorkerProtocol.Command.Step:
                        InstancePlan plan = InstancePlanCodec.Decode(payload.Span);
                        int length = plan.LogitTokens.Length * shape.VocabSize;
                        if (logits.Length < length)
                            logits = new float[length];
                        instance.Step(plan, logits.AsSpan(0, length));
                        steps++;
                        reply = WorkerProtocol.EncodeSuccess(logits.AsSpan(0, length));
                        break;
                    case WorkerProtocol.Command.SendPages:
                    {
                        (int peer, int[] pages) = WorkerProtocol.DecodePages(payload.Span);
                        instance.SendPages(peer, pages);
                        reply = WorkerProtocol.EncodeSuccess([]);
                        break;
                    }
                    case WorkerProtocol.Command.ReceivePages:
                    {
                        (int peer, int[] pages) = WorkerProtocol.DecodePages(payload.Span);
                        instance.ReceivePages(peer, pages);
                        reply = WorkerProtocol.EncodeSuccess([]);
                        break;
                    }
                    default:
                        stop = true;
                        reply = WorkerProtocol.EncodeSuccess([]);
                        break;
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                reply = WorkerProtocol.EncodeFailure(e);
            }
            comm.Send(0, WorkerProtocol.ReplyTag, reply);
            if (stop)
                break;
        }
        return steps;
    }
}

/// <summary>What every rank must agree on: the model's shape and the KV pool's page size and page count.</summary>
public sealed record WorkerShape(int VocabSize, int Dim, int Layers, int QHeads, int KvHeads, int HeadDim, int FfnDim,
    int PageSize, int PagesPerInstance)
{
    internal const int Length = 9;

    internal float[] ToFloats() =>
        [VocabSize, Dim, Layers, QHeads, KvHeads, HeadDim, FfnDim, PageSize, PagesPerInstance];

    internal static WorkerShape FromFloats(ReadOnlySpan<float> f) =>
        new((int)f[0], (int)f[1], (int)f[2], (int)f[3], (int)f[4], (int)f[5], (int)f[6], (int)f[7], (int)f[8]);

    /// <summary>The first field that differs, as "name: rank 0 has X, this rank Y", or null.</summary>
    internal string? Difference(WorkerShape other)
    {
        (string Name, int Mine, int Theirs)[] fields =
        [
            (nameof(VocabSize), VocabSize, other.VocabSize), (nameof(Dim), Dim, other.Dim), (nameof(Layers), Layers, other.Layers),
            (nameof(QHeads), QHeads, other.QHeads), (nameof(KvHeads), KvHeads, other.KvHeads), (nameof(HeadDim), HeadDim, other.HeadDim),
            (nameof(FfnDim), FfnDim, other.FfnDim), (nameof(PageSize), PageSize, other.PageSize),
            (nameof(PagesPerInstance), PagesPerInstance, other.PagesPerInstance),
        ];
        foreach (var (name, mine, theirs) in fields)
        {
            if (mine != theirs)
                return $"{name}: rank 0 has {mine}, this rank {theirs}";
        }
        return null;
    }
}
