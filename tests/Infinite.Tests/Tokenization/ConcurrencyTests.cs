using Infinite.Tokenization;

namespace Infinite.Tests.Tokenization;

public class ConcurrencyTests
{
    [Fact]
    public void Parallel_encode_on_one_instance_matches_sequential_results()
    {
        var data = TestVocabularies.ByteLevel(TestVocabularies.HelloWorldMerges, "llama3");
        var random = new Random(99);
        string[] words = ["hello", " world", "中文", "😀", "12345", "!!", "\n", "world's", "helloworld"];
        var texts = Enumerable.Range(0, 2000)
            .Select(_ => string.Concat(Enumerable.Range(0, random.Next(1, 20)).Select(_ => words[random.Next(words.Length)])))
            .ToArray();
        var reference = Tokenizer.Create(data);
        var expected = texts.Select(t => reference.Encode(t)).ToArray();

        var shared = Tokenizer.Create(data);
        var actual = new int[texts.Length][];
        Parallel.For(0, texts.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => actual[i] = shared.Encode(texts[i]));
        for (int i = 0; i < texts.Length; i++) Assert.Equal(expected[i], actual[i]);
    }
}
