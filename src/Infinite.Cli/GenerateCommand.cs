using System.CommandLine;
using System.Diagnostics;
using Infinite.Engine;
using Infinite.Tokenization;

namespace Infinite.Cli;

/// <summary><c>infinite generate</c>: loads a model and streams one completion to stdout.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var flags = new ModelOptions();
        var prompt = new Option<string>("--prompt", "-p") { Description = "The prompt text.", Required = true };
        var chat = new Option<bool>("--chat") { Description = "Send the prompt as a user message through the model's chat template." };
        var system = new Option<string?>("--system") { Description = "With --chat: a system message." };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Tokens to generate at most.", DefaultValueFactory = _ => 128 };
        var temperature = new Option<float>("--temperature", "-t") { Description = "0 = greedy.", DefaultValueFactory = _ => 0.8f };
        var topK = new Option<int>("--top-k") { Description = "0 = off.", DefaultValueFactory = _ => 40 };
        var topP = new Option<float>("--top-p") { Description = "1 = off.", DefaultValueFactory = _ => 0.95f };
        var minP = new Option<float>("--min-p") { Description = "0 = off.", DefaultValueFactory = _ => 0.05f };
        var repetition = new Option<float>("--repetition-penalty") { Description = "1 = off.", DefaultValueFactory = _ => 1f };
        var seed = new Option<int?>("--seed") { Description = "Same seed, same output." };
        var stop = new Option<string[]>("--stop") { Description = "A string that ends generation (repeatable).", AllowMultipleArgumentsPerToken = false };
        var ignoreEos = new Option<bool>("--ignore-eos") { Description = "Keep generating past end-of-sequence tokens." };

        var command = new Command("generate", "Load a model and stream a completion of --prompt to stdout.");
        flags.AddTo(command);
        foreach (Option option in new Option[] { prompt, chat, system, maxTokens, temperature, topK, topP, minP, repetition, seed, stop, ignoreEos })
        {
            command.Options.Add(option);
        }
        command.SetAction(async (result, cancellationToken) =>
        {
            var sampling = new SamplingOptions
            {
                Temperature = result.GetValue(temperature),
                TopK = result.GetValue(topK),
                TopP = result.GetValue(topP),
                MinP = result.GetValue(minP),
                RepetitionPenalty = result.GetValue(repetition),
                Seed = result.GetValue(seed),
            };
            return await RunAsync(result, flags, result.InvocationConfiguration.Output, result.InvocationConfiguration.Error, cancellationToken, engine =>
            {
                string text = result.GetValue(prompt)!;
                string[]? stops = result.GetValue(stop) is { Length: > 0 } s ? s : null;
                if (!result.GetValue(chat))
                {
                    return new GenerationRequest
                    {
                        Prompt = text,
                        MaxTokens = result.GetValue(maxTokens),
                        Sampling = sampling,
                        Stop = stops,
                        IgnoreEos = result.GetValue(ignoreEos),
                    };
                }
                var messages = new List<ChatMessage>();
                if (result.GetValue(system) is { } systemText)
                {
                    messages.Add(new ChatMessage("system", systemText));
                }
                messages.Add(new ChatMessage("user", text));
                return engine.ChatRequest(messages, result.GetValue(maxTokens), sampling, stops) with
                {
                    IgnoreEos = result.GetValue(ignoreEos),
                };
            }).ConfigureAwait(false);
        });
        return command;
    }

    internal static async Task<int> RunAsync(ParseResult result, ModelOptions flags, TextWriter output, TextWriter status,
        CancellationToken cancellationToken, Func<InfiniteEngine, GenerationRequest> request)
    {
        try
        {
            if (flags.IsMpiWorker(result))
            {
                return await flags.RunMpiWorkerAsync(result, status, cancellationToken).ConfigureAwait(false);
            }
            await using InfiniteEngine engine = await ModelLoading.LoadAsync(result, flags, status, 2048, 1, cancellationToken)
                .ConfigureAwait(false);
            GenerationRequest generation = request(engine);
            var clock = Stopwatch.StartNew();
            TimeSpan firstToken = TimeSpan.Zero;
            int count = 0;
            FinishReason? finish = null;
            await foreach (GeneratedToken token in engine.GenerateAsync(generation, cancellationToken).ConfigureAwait(false))
            {
                if (count++ == 0)
                {
                    firstToken = clock.Elapsed;
                }
                output.Write(token.Text);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                finish = token.FinishReason ?? finish;
            }
            output.WriteLine();
            double decodeSeconds = (clock.Elapsed - firstToken).TotalSeconds;
            string rate = count > 1 ? $", {(count - 1) / decodeSeconds:0.0} tokens/s after the first" : "";
            status.WriteLine($"[{count} tokens, first after {firstToken.TotalMilliseconds:0} ms{rate}; finish: {finish?.ToString().ToLowerInvariant() ?? "none"}]");
            return 0;
        }
        catch (OperationCanceledException)
        {
            status.WriteLine("cancelled");
            return 130;
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException
                                      or Native.InfiniteException or NotSupportedException)
        {
            status.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
