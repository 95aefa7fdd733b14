using Infinite.Engine;

namespace Infinite.Tests.Runtime;

/// <summary>
/// Page tables spread over instances by a rule (entry index -> instance), with each instance's local ids handed
/// out in a seeded shuffled order; global ids are <c>instance * pagesPerInstance + local</c>. One instance with a
/// big pool gives the single-device baseline of the same sequences.
/// </summary>
internal sealed class DistributedLayout
{
    private readonly Queue<int>[] _free;

    public DistributedLayout(int instances, int pagesPerInstance, int pageSize, int seed)
    {
        Instances = instances;
        PagesPerInstance = pagesPerInstance;
        PageSize = pageSize;
        var random = new Random(seed);
        _free = new Queue<int>[instances];
        for (int i = 0; i < instances; i++)
        {
            int[] ids = Enumerable.Range(0, pagesPerInstance).ToArray();
            random.Shuffle(ids);
            _free[i] = new Queue<int>(ids);
        }
    }

    public int Instances { get; }
    public int PagesPerInstance { get; }
    public int PageSize { get; }

    public int Take(int instance) => instance * PagesPerInstance + _free[instance].Dequeue();

    public void Give(int page) => _free[page / PagesPerInstance].Enqueue(page % PagesPerInstance);

    /// <summary>A sequence homed on <paramref name="home"/> whose entry e lives on <paramref name="placement"/>(e).</summary>
    public Sequence Add(int home, Func<int, int> placement) => new(this, home, placement);

    /// <summary>The plan feeding each part's tokens (logits for every token when AllLogits, else the last).</summary>
    public StepPlan Build(params (Sequence Sequence, int[] Tokens, bool AllLogits)[] parts)
    {
        var tokens = new List<int>();
        var positions = new List<int>();
        var qStarts = new List<int> { 0 };
        var kvLengths = new List<int>();
        var pageStarts = new List<int> { 0 };
        var pageIds = new List<int>();
        var logitTokens = new List<int>();
        var homes = new List<int>();
        foreach ((Sequence s, int[] feed, bool all) in parts)
        {
            s.Reserve(s.Length + feed.Length);
            for (int i = 0; i < feed.Length; i++)
            {
                if (all || i == feed.Length - 1)
                {
                    logitTokens.Add(tokens.Count);
                }
                tokens.Add(feed[i]);
                positions.Add(s.Length + i);
            }
            s.Length += feed.Length;
            qStarts.Add(tokens.Count);
            kvLengths.Add(s.Length);
            pageIds.AddRange(s.Pages);
            pageStarts.Add(pageIds.Count);
            homes.Add(s.Home);
        }
        return new StepPlan
        {
            TokenIds = [.. tokens],
            Positions = [.. positions],
            QStarts = [.. qStarts],
            KvLengths = [.. kvLengths],
            PageStarts = [.. pageStarts],
            PageIds = [.. pageIds],
            LogitTokens = [.. logitTokens],
            Homes = Instances > 1 ? [.. homes] : null,
        };
    }

    internal sealed class Sequence(DistributedLayout layout, int home, Func<int, int> placement)
    {
        public int Home { get; } = home;
        public List<int> Pages { get; } = [];
        public int Length { get; set; }

        public void Reserve(int length)
        {
            while (Pages.Count * layout.PageSize < length)
            {
                Pages.Add(layout.Take(layout.Instances == 1 ? 0 : placement(Pages.Count)));
            }
        }
    }
}
