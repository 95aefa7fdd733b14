using Infinite.Engine;

namespace Infinite.Simulation;

/// <summary>
/// One instance's continuous batching, the rule of the engine's <see cref="StepScheduler"/> applied to simulated
/// requests: running decodes first (one token each, oldest first), then prefill chunks of admitted prompts in
/// admission order, all within the per-step token budget; when a decode needs a page and none can be had, the most
/// recently admitted request on the instance gives back all its pages and returns to the front of the queue to
/// recompute later. The engine's scheduler itself is not reused: it batches the whole cluster as one step with one
/// token budget (the distributed executor steps every instance together), whereas the paper's instances, and this
/// simulator's, step independently with a budget each; it also carries real token lists, samplers and step plans
/// (a 2000K-token prompt would hold its token ids and copy its page table every step), whereas a simulated request
/// needs only lengths and its home in the cluster page space.
/// Admission differs in one way: the simulator admits through the page space (all of the prompt's pages at once),
/// so an admitted prompt never waits for pages mid-prefill.
/// </summary>
internal sealed class SimulatedBatcher
{
    /// <summary>A planned piece of work: <see cref="Count"/> tokens of a request starting at position
    /// <see cref="Start"/>; <see cref="Logits"/> when it produces a token.</summary>
    internal readonly record struct Chunk(SimRequest Request, long Start, int Count, bool Decode, bool Logits);

    /// <summary>The page operations the batcher needs from the simulator (which owns the page space).</summary>
    internal sealed record PageOps(
        Func<SimRequest, int, bool> TryGrow,
        Action<SimRequest> Preempt,
        Action<SimRequest, double> Reject,
        Func<int, bool> OthersRunning);

    private readonly int _maxBatchTokens;
    private readonly int _pageTokens;

    public SimulatedBatcher(int instance, int instances, int maxBatchTokens, int pageTokens)
    {
        Instance = instance;
        _maxBatchTokens = maxBatchTokens;
        _pageTokens = pageTokens;
        Work = new StepWork(instances);
    }

    public int Instance { get; }
    /// <summary>Requests homed here, in admission order.</summary>
    public List<SimRequest> Running { get; } = [];
    /// <summary>The step in flight (or last planned).</summary>
    public List<Chunk> Chunks { get; } = [];
    public StepWork Work { get; }
    public bool Busy { get; set; }
    /// <summary>Tokens of the last step (reported to the gManager as the batch size).</summary>
    public int LastBatchTokens { get; set; }

    /// <summary>Plans the next step into <see cref="Chunks"/> (empty when there is nothing to run).</summary>
    public void Plan(PageOps ops, double now)
    {
        Chunks.Clear();
        int budget = _maxBatchTokens;
        PlanDecodes(ops, now, ref budget);
        foreach (SimRequest r in Running)
        {
            if (budget <= 0)
                break;
            PlanPrefill(r, ref budget);
        }
    }

    /// <summary>Adds one decode per prefilled running request (oldest first) to <see cref="Chunks"/> while
    /// <paramref name="budget"/> lasts, growing pages and preempting as the engine does. The lockstep mode of a shared
    /// host (<see cref="SimulationOptions.SharedHost"/>) calls it for every instance with one cluster budget.</summary>
    public void PlanDecodes(PageOps ops, double now, ref int budget)
    {
        for (int k = 0; k < Running.Count && budget > 0; k++)
        {
            SimRequest r = Running[k];
            if (!r.Prefilled)
                continue;
            int pages = (int)((r.Computed + _pageTokens) / _pageTokens); // pages for Computed + 1 tokens
            bool scheduled = true;
            while (r.Table.Count < pages && !ops.TryGrow(r, pages))
            {
                // Victims are newer than every decode scheduled so far, so no scheduled chunk is lost.
                SimRequest victim = Running[^1];
                if (victim == r && Running.Count == 1 && !ops.OthersRunning(Instance))
                    ops.Reject(r, now);
                else
                    ops.Preempt(victim);
                if (victim == r)
                {
                    scheduled = false;
                    k--;
                    break;
                }
            }
            if (scheduled)
            {
                Chunks.Add(new Chunk(r, r.Computed, 1, Decode: true, Logits: true));
                budget--;
            }
        }
    }

    /// <summary>Adds the next prefill chunk of <paramref name="r"/> (homed here, not yet prefilled) within
    /// <paramref name="budget"/>.</summary>
    public void PlanPrefill(SimRequest r, ref int budget)
    {
        if (budget <= 0 || r.Prefilled)
            return;
        int count = (int)Math.Min(r.Pending, budget);
        Chunks.Add(new Chunk(r, r.Computed, count, Decode: false, Logits: count == r.Pending));
        budget -= count;
    }
}
