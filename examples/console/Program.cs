// A console app on the Infinite NuGet package: load a model, stream a completion.
//   dotnet run                         the built-in demo model (RANDOM weights: gibberish text)
//   dotnet run -- path/to/model.gguf   a GGUF file or a Hugging Face folder
using Infinite;
using Infinite.Engine;

var options = new InfiniteOptions { KvMemoryBytes = 256L << 20 };
await using InfiniteEngine engine = args.Length > 0
    ? await InfiniteEngine.LoadAsync(args[0], options)
    : await InfiniteEngine.LoadDemoAsync(options);
Console.WriteLine($"model: {engine.ModelPath}");

var request = new GenerationRequest
{
    Prompt = "Once upon a time",
    MaxTokens = 16,
    IgnoreEos = true, // the demo model may sample end-of-text at any point; keep going to show the full stream
    Sampling = new SamplingOptions { Temperature = 0.8f, Seed = 7 },
};
int count = 0;
await foreach (GeneratedToken token in engine.GenerateAsync(request))
{
    Console.Write(token.Text);
    count++;
}
Console.WriteLine();
Console.WriteLine($"generated {count} tokens");
