using Infinite.Runtime;
using Infinite.Runtime.Mpi;

namespace Infinite.Tests.Runtime;

public sealed class InstancePlanCodecTests
{
    private static InstancePlan RandomPlan(Random random, bool withAppend, bool sparse = false)
    {
        int[] R(int n) => Enumerable.Range(0, n).Select(_ => random.Next(-5, 100_000)).ToArray();
        return new InstancePlan
        {
            StepId = random.NextInt64(),
            TokenIds = R(7), Positions = R(7), QStarts = R(3), KvLengths = R(2), PageStarts = R(3), PageIds = R(11),
            PagePositions = R(11), LogitTokens = R(2), RemoteSequences = R(1), RemoteRanks = R(1), RemoteSendsKv = R(1),
            ServedRanks = R(2), ServedQStarts = R(3), ServedPositions = R(4), ServedKvLengths = R(2),
            ServedPageStarts = R(3), ServedPageIds = R(5), ServedPagePositions = R(5), ServedReceivesKv = R(2),
            ServedAppendPages = withAppend ? R(4) : null,
            Sparse = !sparse ? null : new Infinite.Engine.SparseStep
            {
                DecodeSinkTokens = random.Next(1000), DecodeLocalTokens = random.Next(1000), PrefillSinkTokens = random.Next(1000),
                PrefillLocalTokens = random.Next(1000), BudgetTokens = random.Next(10000), PerQueryHead = random.Next(2) == 1,
                StreamingHeads = withAppend ? [true, false, false, true, true] : null,
            },
        };
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public void RoundTripKeepsEveryField(bool withAppend, bool sparse)
    {
        InstancePlan plan = RandomPlan(new Random(withAppend ? 1 : 2), withAppend, sparse);
        InstancePlan back = InstancePlanCodec.Decode(InstancePlanCodec.Encode(plan));
        foreach (var property in typeof(InstancePlan).GetProperties().Where(p => p.CanWrite))
        {
            object? a = property.GetValue(plan), b = property.GetValue(back);
            if (a is int[] x)
                Assert.Equal(x, (int[])b!);
            else if (a is Infinite.Engine.SparseStep s)
            {
                var t = Assert.IsType<Infinite.Engine.SparseStep>(b);
                Assert.Equal((s.DecodeSinkTokens, s.DecodeLocalTokens, s.PrefillSinkTokens, s.PrefillLocalTokens, s.BudgetTokens, s.PerQueryHead),
                    (t.DecodeSinkTokens, t.DecodeLocalTokens, t.PrefillSinkTokens, t.PrefillLocalTokens, t.BudgetTokens, t.PerQueryHead));
                Assert.Equal(s.StreamingHeads, t.StreamingHeads);
            }
            else
                Assert.Equal(a, b);
        }
    }

    [Fact]
    public void EveryTruncationIsRejectedWithAMessage()
    {
        byte[] bytes = InstancePlanCodec.Encode(RandomPlan(new Random(3), withAppend: true, sparse: true));
        for (int n = 0; n < bytes.Length; n++)
        {
            var ex = Assert.Throws<InvalidDataException>(() => InstancePlanCodec.Decode(bytes.AsSpan(0, n)));
            Assert.False(string.IsNullOrWhiteSpace(ex.Message));
        }
    }

    [Fact]
    public void ForeignAndCorruptMessagesAreRejected()
    {
        byte[] bytes = InstancePlanCodec.Encode(RandomPlan(new Random(4), withAppend: false));
        var foreign = (byte[])bytes.Clone();
        foreign[0] ^= 0xFF;
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => InstancePlanCodec.Decode(foreign)).Message);
        var huge = (byte[])bytes.Clone();
        BitConverter.TryWriteBytes(huge.AsSpan(16), int.MaxValue);
        Assert.Contains(nameof(InstancePlan.TokenIds), Assert.Throws<InvalidDataException>(() => InstancePlanCodec.Decode(huge)).Message);
        Assert.Contains("trailing", Assert.Throws<InvalidDataException>(() => InstancePlanCodec.Decode([.. bytes, 0])).Message);
    }
}
