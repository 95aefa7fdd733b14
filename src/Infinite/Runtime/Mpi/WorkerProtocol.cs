using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Infinite.Native;

namespace Infinite.Runtime.Mpi;

/// <summary>
/// The control protocol between rank 0 (engine, HTTP, gManager) and the worker ranks of <c>mpirun -np N infinite
/// serve --mpi</c>. Rank 0 sends a command on <see cref="ControlTag"/>; the worker answers on <see cref="ReplyTag"/>
/// with a status, then the result (a step's logits) or the error's kind and message, so an exception on a worker
/// surfaces on rank 0 with its type and text. A worker first announces its shape (<see cref="WorkerShape"/>) so that
/// ranks started with different models or KV settings are refused by name instead of computing garbage.
/// </summary>
public static class WorkerProtocol
{
    /// <summary>Tag of rank 0's commands (<see cref="LocalInstance.MoveTag"/> is 1; the library's own tags are &gt;= 16384).</summary>
    public const int ControlTag = 2;
    public const int ReplyTag = 3;

    public enum Command
    {
        Step = 1,
        SendPages = 2,
        ReceivePages = 3,
        Shutdown = 4,
    }

    internal enum ErrorKind
    {
        General = 0,
        PeerFailed = 1,
        Timeout = 2,
    }

    public static byte[] EncodeCommand(Command command, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[4 + payload.Length];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, (int)command);
        payload.CopyTo(bytes.AsSpan(4));
        return bytes;
    }

    public static (Command Command, ReadOnlyMemory<byte> Payload) DecodeCommand(byte[] message)
    {
        if (message.Length < 4)
            throw new InvalidDataException($"A worker command of {message.Length} bytes is shorter than its 4-byte kind.");
        var command = (Command)BinaryPrimitives.ReadInt32LittleEndian(message);
        if (!Enum.IsDefined(command))
            throw new InvalidDataException($"Unknown worker command {(int)command}.");
        return (command, message.AsMemory(4));
    }

    /// <summary>A page-move command: the peer rank, then the local page ids.</summary>
    public static byte[] EncodePages(int peer, ReadOnlySpan<int> pages)
    {
        var bytes = new byte[8 + 4 * pages.Length];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, peer);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), pages.Length);
        for (int i = 0; i < pages.Length; i++)
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8 + 4 * i), pages[i]);
        return bytes;
    }

    public static (int Peer, int[] Pages) DecodePages(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 8)
            throw new InvalidDataException("A page-move command is shorter than its peer and count.");
        int peer = BinaryPrimitives.ReadInt32LittleEndian(payload);
        int count = BinaryPrimitives.ReadInt32LittleEndian(payload[4..]);
        if (count < 0 || payload.Length != 8 + 4L * count)
            throw new InvalidDataException($"A page-move command claims {count} pages in {payload.Length - 8} bytes.");
        var pages = new int[count];
        for (int i = 0; i < count; i++)
            pages[i] = BinaryPrimitives.ReadInt32LittleEndian(payload[(8 + 4 * i)..]);
        return (peer, pages);
    }

    public static byte[] EncodeSuccess(ReadOnlySpan<float> result)
    {
        var bytes = new byte[4 + result.Length * sizeof(float)];
        MemoryMarshal.AsBytes(result).CopyTo(bytes.AsSpan(4));
        return bytes;
    }

    public static byte[] EncodeFailure(Exception error)
    {
        ErrorKind kind = error switch
        {
            PeerFailedException => ErrorKind.PeerFailed,
            CommunicationTimeoutException => ErrorKind.Timeout,
            _ => ErrorKind.General,
        };
        byte[] text = Encoding.UTF8.GetBytes(kind == ErrorKind.General ? $"{error.GetType().Name}: {error.Message}" : error.Message);
        var bytes = new byte[8 + text.Length];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, 1);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), (int)kind);
        text.CopyTo(bytes.AsSpan(8));
        return bytes;
    }

    /// <summary>Reads a reply: copies a success's floats into <paramref name="result"/> (which must match its length),
    /// or throws what the worker threw: a peer failure as <see cref="PeerFailedException"/> and a timeout as
    /// <see cref="CommunicationTimeoutException"/> (their native message names the peer, so the distributed executor
    /// knows which instance is gone), anything else as <see cref="WorkerFailedException"/> naming the rank.</summary>
    public static void ReadReply(int rank, byte[] reply, Span<float> result)
    {
        if (reply.Length < 4)
            throw new InvalidDataException($"Rank {rank} sent a reply of {reply.Length} bytes.");
        int status = BinaryPrimitives.ReadInt32LittleEndian(reply);
        if (status == 0)
        {
            int floats = (reply.Length - 4) / sizeof(float);
            if ((reply.Length - 4) % sizeof(float) != 0 || floats != result.Length)
                throw new InvalidDataException($"Rank {rank} returned {reply.Length - 4} bytes of results; {result.Length} floats were expected.");
            MemoryMarshal.Cast<byte, float>(reply.AsSpan(4)).CopyTo(result);
            return;
        }
        if (reply.Length < 8)
            throw new InvalidDataException($"Rank {rank} sent a failure reply without its kind.");
        var kind = (ErrorKind)BinaryPrimitives.ReadInt32LittleEndian(reply.AsSpan(4));
        string message = Encoding.UTF8.GetString(reply.AsSpan(8));
        string where = $"worker rank {rank}";
        throw kind switch
        {
            ErrorKind.PeerFailed => new PeerFailedException(where, message),
            ErrorKind.Timeout => new CommunicationTimeoutException(where, message),
            _ => new WorkerFailedException(rank, message),
        };
    }
}

/// <summary>A worker rank's command failed there for a reason other than a gone or silent peer (a bad plan, a native
/// error); the message is the worker's, prefixed with its rank.</summary>
public sealed class WorkerFailedException(int rank, string message) : Exception($"rank {rank}: {message}")
{
    public int Rank { get; } = rank;
}
