using System.Threading.Channels;

namespace Infinite.Engine;

/// <summary>
/// One request inside the engine: its tokens (prompt + output), how many of them are in the KV cache, its pages and
/// selection slot, and the output side (stream, UTF-8 decoder, stop strings). Touched by the step loop, and by
/// consumers only under the engine's lock.
/// </summary>
internal sealed class Sequence
{
    public Sequence(long id, int[] prompt, int maxTokens, GenerationRequest request, Sampler sampler,
        Utf8StreamDecoder decoder, StopStringMatcher stops)
    {
        Id = id;
        Tokens = [.. prompt];
        PromptLength = prompt.Length;
        MaxTokens = maxTokens;
        Request = request;
        Sampler = sampler;
        Decoder = decoder;
        Stops = stops;
    }

    public long Id { get; }
    public GenerationRequest Request { get; }
    public int PromptLength { get; }
    public int MaxTokens { get; }
    public Sampler Sampler { get; }
    public Utf8StreamDecoder Decoder { get; }
    public StopStringMatcher Stops { get; }

    /// <summary>Prompt then generated tokens; a preempted request re-prefills all of them.</summary>
    public List<int> Tokens { get; }
    public List<int> Pages { get; } = [];

    /// <summary>Leading tokens whose KV is in the cache.</summary>
    public int Computed { get; set; }
    /// <summary>True once the prefill since the last (re)admission produced logits; later steps are decodes.</summary>
    public bool Prefilled { get; set; }
    /// <summary>After a sparse preemption: tokens whose KV is rebuilt by prefilling the prompt and then replaying the
    /// generated tokens before this one as decodes that produce no token (0: a plain recompute).</summary>
    public int ReplayUntil { get; set; }
    /// <summary>Decode steps since the last prefill (drives sparse reselection).</summary>
    public int DecodeSteps { get; set; }
    public int Slot { get; set; } = -1;
    /// <summary>Its slot holds a page selection (stored by a decode past the budget), so later decodes may reuse it.</summary>
    public bool HasSelection { get; set; }
    /// <summary>Instance that runs this request's non-attention layers and holds its first KV pages (chosen at
    /// admission by <see cref="Cluster.IKvPageSpace.PlaceRequest"/>); -1 while waiting.</summary>
    public int Home { get; set; } = -1;
    /// <summary>Admission counter value; the largest is the first preemption victim.</summary>
    public long AdmitOrder { get; set; }
    public SequenceState State { get; set; } = SequenceState.Waiting;
    public bool CancelRequested { get; set; }
    public CancellationTokenRegistration Registration { get; set; }

    public Channel<GeneratedToken> Output { get; } =
        Channel.CreateUnbounded<GeneratedToken>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

    public int Generated => Tokens.Count - PromptLength;
    public int Pending => Tokens.Count - Computed;
}
