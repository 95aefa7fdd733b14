namespace Infinite.Engine;

/// <summary>
/// How the next token is drawn from the logits. Order: repetition penalty, frequency and presence penalties, then
/// (unless greedy) temperature, top-k and min-p, then top-p over what survives.
/// </summary>
public sealed record SamplingOptions
{
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0f };

    /// <summary>0 = greedy (argmax); otherwise logits are divided by it.</summary>
    public float Temperature { get; init; } = 1f;
    /// <summary>Keep the k most likely tokens; 0 = off.</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of most likely tokens whose probability reaches p; in (0, 1], 1 = off.</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>Drop tokens less likely than MinP times the most likely one; in [0, 1], 0 = off.</summary>
    public float MinP { get; init; }
    /// <summary>CTRL / Hugging Face penalty on tokens of prompt and output: positive logits divided by it, negative
    /// ones multiplied; 1 = off.</summary>
    public float RepetitionPenalty { get; init; } = 1f;
    /// <summary>OpenAI: subtracted from a logit once per occurrence in the output; in [-2, 2].</summary>
    public float FrequencyPenalty { get; init; }
    /// <summary>OpenAI: subtracted once from the logit of every token present in the output; in [-2, 2].</summary>
    public float PresencePenalty { get; init; }
    /// <summary>Same seed, same request => same output; null = random.</summary>
    public int? Seed { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad value.</summary>
    public void Validate()
    {
        if (!float.IsFinite(Temperature) || Temperature < 0f)
            throw new ArgumentException($"temperature must be a finite number >= 0, got {Temperature}.");
        if (TopK < 0)
            throw new ArgumentException($"top_k must be >= 0 (0 = off), got {TopK}.");
        if (!(TopP > 0f && TopP <= 1f))
            throw new ArgumentException($"top_p must be in (0, 1], got {TopP}.");
        if (!(MinP >= 0f && MinP <= 1f))
            throw new ArgumentException($"min_p must be in [0, 1], got {MinP}.");
        if (!float.IsFinite(RepetitionPenalty) || RepetitionPenalty <= 0f)
            throw new ArgumentException($"repetition_penalty must be a finite number > 0, got {RepetitionPenalty}.");
        if (!(FrequencyPenalty >= -2f && FrequencyPenalty <= 2f))
            throw new ArgumentException($"frequency_penalty must be in [-2, 2], got {FrequencyPenalty}.");
        if (!(PresencePenalty >= -2f && PresencePenalty <= 2f))
            throw new ArgumentException($"presence_penalty must be in [-2, 2], got {PresencePenalty}.");
    }
}
