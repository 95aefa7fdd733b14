using System.Buffers.Binary;

namespace Infinite.Runtime.Mpi;

/// <summary>
/// Binary form of an <see cref="InstancePlan"/> for the control messages rank 0 sends to MPI workers: a magic, a
/// version, the step id, then each array as a length and little-endian ints in the order of the class, then the
/// sparse step (a presence flag, the windows, budget and per-query-head flag, the streaming-head flags). Decoding
/// checks every length against the message, so a truncated or foreign message is an <see cref="InvalidDataException"/>
/// naming the field, never an out-of-bounds read.
/// </summary>
public static class InstancePlanCodec
{
    private const uint Magic = 0x4E4C5049; // "IPLN"
    private const int Version = 2;
    private const int SparseInts = 6;

    public static byte[] Encode(InstancePlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        int[]?[] arrays = [.. Arrays(plan), .. SparseArrays(plan.Sparse)];
        int size = 4 + 4 + 8;
        foreach (int[]? a in arrays)
            size += 4 + 4 * (a?.Length ?? 0);
        var bytes = new byte[size];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(span[4..], Version);
        BinaryPrimitives.WriteInt64LittleEndian(span[8..], plan.StepId);
        int offset = 16;
        foreach (int[]? a in arrays)
        {
            // -1 marks a null array (ServedAppendPages, the sparse step, the streaming flags).
            BinaryPrimitives.WriteInt32LittleEndian(span[offset..], a is null ? -1 : a.Length);
            offset += 4;
            if (a is null)
                continue;
            foreach (int v in a)
            {
                BinaryPrimitives.WriteInt32LittleEndian(span[offset..], v);
                offset += 4;
            }
        }
        return bytes;
    }

    public static InstancePlan Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 16 || BinaryPrimitives.ReadUInt32LittleEndian(bytes) != Magic)
            throw new InvalidDataException("Not an instance plan message (bad magic or shorter than its header).");
        int version = BinaryPrimitives.ReadInt32LittleEndian(bytes[4..]);
        if (version != Version)
            throw new InvalidDataException($"Instance plan version {version}; this build reads version {Version}.");
        long stepId = BinaryPrimitives.ReadInt64LittleEndian(bytes[8..]);
        int offset = 16;
        var arrays = new int[]?[FieldNames.Length];
        for (int f = 0; f < FieldNames.Length; f++)
        {
            if (bytes.Length - offset < 4)
                throw new InvalidDataException($"Instance plan truncated before the length of {FieldNames[f]} (byte {offset}).");
            int length = BinaryPrimitives.ReadInt32LittleEndian(bytes[offset..]);
            offset += 4;
            if (length == -1 && Nullable.Contains(FieldNames[f]))
                continue;
            if (FieldNames[f] == SparseField && length != SparseInts)
                throw new InvalidDataException($"Instance plan field {SparseField} has {length} ints; {SparseInts} were expected (byte {offset}).");
            if (length < 0 || (long)length * 4 > bytes.Length - offset)
                throw new InvalidDataException(
                    $"Instance plan field {FieldNames[f]} claims {length} ints but {bytes.Length - offset} bytes remain (byte {offset}).");
            var a = new int[length];
            for (int i = 0; i < length; i++, offset += 4)
                a[i] = BinaryPrimitives.ReadInt32LittleEndian(bytes[offset..]);
            arrays[f] = a;
        }
        if (offset != bytes.Length)
            throw new InvalidDataException($"Instance plan has {bytes.Length - offset} trailing bytes.");
        int k = 0;
        return new InstancePlan
        {
            StepId = stepId,
            TokenIds = arrays[k++]!,
            Positions = arrays[k++]!,
            QStarts = arrays[k++]!,
            KvLengths = arrays[k++]!,
            PageStarts = arrays[k++]!,
            PageIds = arrays[k++]!,
            PagePositions = arrays[k++]!,
            LogitTokens = arrays[k++]!,
            RemoteSequences = arrays[k++]!,
            RemoteRanks = arrays[k++]!,
            RemoteSendsKv = arrays[k++]!,
            ServedRanks = arrays[k++]!,
            ServedQStarts = arrays[k++]!,
            ServedPositions = arrays[k++]!,
            ServedKvLengths = arrays[k++]!,
            ServedPageStarts = arrays[k++]!,
            ServedPageIds = arrays[k++]!,
            ServedPagePositions = arrays[k++]!,
            ServedReceivesKv = arrays[k++]!,
            ServedAppendPages = arrays[k++],
            Sparse = DecodeSparse(arrays[k], arrays[k + 1]),
        };
    }

    private const string SparseField = nameof(InstancePlan.Sparse);
    private const string StreamingField = "Sparse.StreamingHeads";
    private static readonly HashSet<string> Nullable = [nameof(InstancePlan.ServedAppendPages), SparseField, StreamingField];

    private static int[]?[] SparseArrays(Engine.SparseStep? sparse) => sparse is null
        ? [null, null]
        :
        [
            [sparse.DecodeSinkTokens, sparse.DecodeLocalTokens, sparse.PrefillSinkTokens, sparse.PrefillLocalTokens,
                sparse.BudgetTokens, sparse.PerQueryHead ? 1 : 0],
            sparse.StreamingHeads is { } flags ? Array.ConvertAll(flags, f => f ? 1 : 0) : null,
        ];

    private static Engine.SparseStep? DecodeSparse(int[]? settings, int[]? streaming)
    {
        if (settings is null)
        {
            if (streaming is not null)
                throw new InvalidDataException($"Instance plan has {StreamingField} without {SparseField}.");
            return null;
        }
        return new Engine.SparseStep
        {
            DecodeSinkTokens = settings[0],
            DecodeLocalTokens = settings[1],
            PrefillSinkTokens = settings[2],
            PrefillLocalTokens = settings[3],
            BudgetTokens = settings[4],
            PerQueryHead = settings[5] != 0,
            StreamingHeads = streaming is null ? null : Array.ConvertAll(streaming, f => f != 0),
        };
    }

    private static readonly string[] FieldNames =
    [
        nameof(InstancePlan.TokenIds), nameof(InstancePlan.Positions), nameof(InstancePlan.QStarts),
        nameof(InstancePlan.KvLengths), nameof(InstancePlan.PageStarts), nameof(InstancePlan.PageIds),
        nameof(InstancePlan.PagePositions), nameof(InstancePlan.LogitTokens), nameof(InstancePlan.RemoteSequences),
        nameof(InstancePlan.RemoteRanks), nameof(InstancePlan.RemoteSendsKv), nameof(InstancePlan.ServedRanks),
        nameof(InstancePlan.ServedQStarts), nameof(InstancePlan.ServedPositions), nameof(InstancePlan.ServedKvLengths),
        nameof(InstancePlan.ServedPageStarts), nameof(InstancePlan.ServedPageIds), nameof(InstancePlan.ServedPagePositions),
        nameof(InstancePlan.ServedReceivesKv), nameof(InstancePlan.ServedAppendPages), SparseField, StreamingField,
    ];

    private static int[]?[] Arrays(InstancePlan p) =>
    [
        p.TokenIds, p.Positions, p.QStarts, p.KvLengths, p.PageStarts, p.PageIds, p.PagePositions, p.LogitTokens,
        p.RemoteSequences, p.RemoteRanks, p.RemoteSendsKv, p.ServedRanks, p.ServedQStarts, p.ServedPositions,
        p.ServedKvLengths, p.ServedPageStarts, p.ServedPageIds, p.ServedPagePositions, p.ServedReceivesKv,
        p.ServedAppendPages,
    ];
}
