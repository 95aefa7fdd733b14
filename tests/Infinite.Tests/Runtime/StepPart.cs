namespace Infinite.Tests.Runtime;

/// <summary>One sequence's part of a step: the tokens it feeds and whether every token gets logits (else the last).</summary>
internal readonly record struct StepPart(TestSequence Sequence, int[] Tokens, bool AllLogits = false);
