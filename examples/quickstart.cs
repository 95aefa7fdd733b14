#:package Infinite@0.1.0
#:property PublishAot=false
// Infinite quickstart, a .NET 10 file-based app: stream a completion, then a chat reply.
//   dotnet run quickstart.cs                          the built-in demo model (RANDOM weights: gibberish text)
//   dotnet run quickstart.cs -- --model llama.gguf    a GGUF file or a Hugging Face folder (config.json + *.safetensors)
// Before the package is on a public feed: `./build.sh pack`, then a nuget.config beside this file that adds
// artifacts/packages as a source (see the README's "Serving" section).
using Infinite;
using Infinite.Engine;
using Infinite.Tokenization;

string? model = args switch
{
    [] => null,
    ["--model", string path] => path,
    _ => null,
};
if (args.Length != 0 && model is null)
{
    Console.Error.WriteLine("usage: dotnet run quickstart.cs [-- --model FILE_OR_FOLDER]");
    return 1;
}

// 512 MiB of KV cache, reserved once at load; raise it for long contexts or many concurrent requests.
var options = new InfiniteOptions { KvMemoryBytes = 512L << 20 };
await using InfiniteEngine engine = model is null
    ? await InfiniteEngine.LoadDemoAsync(options)
    : await InfiniteEngine.LoadAsync(model, options);
Console.WriteLine($"loaded {engine.ModelPath} ({engine.Config.ParameterCount / 1e6:0.#}M parameters)");
if (model is null)
{
    Console.WriteLine("the demo model has RANDOM weights, so the text below is gibberish");
}

// A fixed seed makes the sampled text repeatable.
var sampling = new SamplingOptions { Temperature = 0.7f, TopP = 0.95f, Seed = 42 };

const string prompt = "The capital of France is";
Console.Write($"completion: {prompt}");
int completionTokens = 0;
await foreach (GeneratedToken token in engine.GenerateAsync(prompt, maxTokens: 24, sampling))
{
    Console.Write(token.Text);
    completionTokens++;
}
Console.WriteLine($"\n[{completionTokens} tokens]");

ChatMessage[] conversation = [new("system", "You answer in one sentence."), new("user", "Why is the sky blue?")];
Console.Write("chat: ");
int chatTokens = 0;
await foreach (GeneratedToken token in engine.ChatAsync(conversation, maxTokens: 48, sampling))
{
    Console.Write(token.Text);
    chatTokens++;
}
Console.WriteLine($"\n[{chatTokens} tokens]");
return 0;
