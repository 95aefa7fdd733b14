using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Infinite.Benchmarks;
using Infinite.Engine;

namespace Infinite.Cli;

/// <summary><c>infinite bench</c>: prefill tokens/s and decode ms/token of a model over context lengths and batch sizes.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var flags = new ModelOptions();
        var contexts = new Option<string>("--contexts") { Description = "Context lengths, comma-separated (K = 1024).", DefaultValueFactory = _ => "4K,32K" };
        var batches = new Option<string>("--batches") { Description = "Decode batch sizes, comma-separated.", DefaultValueFactory = _ => "1" };
        var steps = new Option<int>("--decode-steps") { Description = "Timed decode steps per point.", DefaultValueFactory = _ => 16 };
        var prefill = new Option<string>("--prefill-contexts") { Description = "Prompt lengths to prefill (batch 1); empty: none.", DefaultValueFactory = _ => "4K" };
        var chunk = new Option<int>("--chunk") { Description = "Prefill chunk (tokens per step).", DefaultValueFactory = _ => 2048 };
        var json = new Option<string?>("--json") { Description = "Also write the results as JSON to this file ('-' = stdout, no table)." };

        var command = new Command("bench", "Measure prefill tokens/s and decode ms/token (KV filled synthetically for decode; with --instances N every sequence's pages are striped over the N instances).");
        flags.AddTo(command);
        foreach (Option option in new Option[] { contexts, batches, steps, prefill, chunk, json })
        {
            command.Options.Add(option);
        }
        command.SetAction(async (result, cancellationToken) =>
        {
            try
            {
                int[] contextList = ParseList(result.GetValue(contexts)!, "--contexts");
                int[] batchList = ParseList(result.GetValue(batches)!, "--batches");
                int[] prefillList = ParseList(result.GetValue(prefill)!, "--prefill-contexts");
                int stepCount = result.GetValue(steps);
                string? jsonPath = result.GetValue(json);
                TextWriter output = result.InvocationConfiguration.Output;
                TextWriter table = jsonPath == "-" ? TextWriter.Null : output;
                int chunkTokens = result.GetValue(chunk);
                if (result.GetValue(flags.Mpi))
                {
                    throw new ArgumentException("--mpi is for serve and generate; bench spreads the KV over in-process instances with --instances");
                }
                await using InfiniteEngine engine = await ModelLoading.LoadAsync(result, flags, result.InvocationConfiguration.Error, chunkTokens,
                    Math.Max(1, batchList.Max()), cancellationToken).ConfigureAwait(false);
                SparseOptions? sparse = engine.Options.Sparse;
                Func<int, BenchResult> prefillAt;
                Func<int, int, BenchResult> decodeAt;
                if (engine.DistributedExecutor is { } distributed)
                {
                    var striped = new DistributedBenchmark(distributed);
                    prefillAt = context => striped.Prefill(context, chunkTokens);
                    decodeAt = (batch, context) => striped.Decode(batch, context, stepCount);
                }
                else
                {
                    var bench = new ModelBenchmark(engine.NativeExecutor!);
                    prefillAt = context => bench.Prefill(context, chunkTokens, sparse);
                    decodeAt = (batch, context) => bench.Decode(batch, context, stepCount, sparse);
                }
                var results = new List<BenchResult>();
                table.WriteLine($"{"kind",-8} {"mode",-6} {"batch",5} {"context",8} {"tokens/s",10} {"ms/token",9} {"step ms",9}");
                void Add(BenchResult r)
                {
                    results.Add(r);
                    table.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{r.Kind,-8} {(r.Sparse ? "sparse" : "dense"),-6} {r.Batch,5} {r.Context,8} {r.TokensPerSecond,10:0.0} {r.MsPerToken,9:0.000} {r.StepMs,9:0.00}"));
                }
                foreach (int context in prefillList)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    Add(prefillAt(context));
                }
                foreach (int context in contextList)
                {
                    foreach (int batch in batchList)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        Add(decodeAt(batch, context));
                    }
                }
                if (jsonPath is not null)
                {
                    string text = JsonSerializer.Serialize(new
                    {
                        model = engine.ModelPath,
                        kvType = engine.Options.KvType.ToString(),
                        pageSize = engine.Executor.PageSize,
                        instances = engine.Options.Instances,
                        machine = $"{Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}",
                        results,
                    }, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase });
                    if (jsonPath == "-")
                    {
                        output.WriteLine(text);
                    }
                    else
                    {
                        await File.WriteAllTextAsync(jsonPath, text, cancellationToken).ConfigureAwait(false);
                    }
                }
                return 0;
            }
            catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or Native.InfiniteException)
            {
                result.InvocationConfiguration.Error.WriteLine($"error: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary>"4K,32K,1000" -> [4096, 32768, 1000]; empty -> [].</summary>
    internal static int[] ParseList(string text, string option)
    {
        var values = new List<int>();
        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string digits = part.TrimEnd('k', 'K', 'm', 'M');
            int scale = part.EndsWith('k') || part.EndsWith('K') ? 1024 : part.EndsWith('m') || part.EndsWith('M') ? 1024 * 1024 : 1;
            if (!int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < 1
                || (long)value * scale > int.MaxValue)
            {
                throw new ArgumentException($"{option}: '{part}' is not a positive count (e.g. 4096, 4K, 1M)");
            }
            values.Add(value * scale);
        }
        return [.. values];
    }
}
