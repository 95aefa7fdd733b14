using System.CommandLine;
using Infinite.Models;

namespace Infinite.Cli;

/// <summary>Resolves --model (or the demo model) and loads it with a progress line on stderr.</summary>
internal static class ModelLoading
{
    public static async Task<InfiniteEngine> LoadAsync(ParseResult result, ModelOptions flags, TextWriter status,
        int maxBatchTokens, int maxRunningRequests, CancellationToken cancellationToken)
    {
        var progress = new ProgressLine(status, rewrite: ReferenceEquals(status, Console.Error) && !Console.IsErrorRedirected);
        string? model = result.GetValue(flags.Model);
        if (model is null)
        {
            status.WriteLine("no --model given: using the built-in demo model (12M parameters, RANDOM weights: its text is gibberish)");
        }
        string path = model ?? DemoModel.EnsureWritten(progress);
        LlamaConfig config;
        using (ModelFile file = ModelFile.Open(path))
        {
            config = file.Config;
        }
        InfiniteOptions options = flags.Read(result, maxBatchTokens) with
        {
            Sparse = flags.ReadSparse(result, config),
            MaxRunningRequests = maxRunningRequests,
        };
        InfiniteEngine engine = await InfiniteEngine.LoadAsync(path, options, progress, cancellationToken).ConfigureAwait(false);
        progress.Finish();
        status.WriteLine($"loaded {path}: {config.ParameterCount / 1e6:0.#}M parameters, {config.Layers} layers, " +
            $"{config.QHeads}/{config.KvHeads} heads, vocab {config.VocabSize}; KV cache {engine.Executor.PageCount} pages x " +
            $"{engine.Executor.PageSize} tokens ({options.KvType}){(options.Sparse is null ? "" : ", sparse attention")}" +
            (engine.Executor.Instances > 1 ? $" over {engine.Executor.Instances} instances of {engine.Executor.PagesPerInstance} pages" : "") +
            (engine.Executor.RingPagesPerSequence > 0
                ? $"; streaming heads in rings of {engine.Executor.RingPagesPerSequence} pages per request" : ""));
        return engine;
    }

    /// <summary>A rewritten line ("weights 45%") on a terminal; one line per finished stage otherwise.</summary>
    private sealed class ProgressLine(TextWriter output, bool rewrite) : IProgress<LoadProgress>
    {
        private string _stage = "";
        private int _percent = -1;

        public void Report(LoadProgress value)
        {
            int percent = value.Total > 0 ? (int)(100 * value.Done / value.Total) : 100;
            if (value.Stage == _stage && percent == _percent)
            {
                return;
            }
            _stage = value.Stage;
            _percent = percent;
            if (rewrite)
            {
                output.Write($"\r{value.Stage} {percent,3}%   ");
            }
            else if (percent == 100)
            {
                output.WriteLine($"{value.Stage}: done");
            }
        }

        public void Finish()
        {
            if (rewrite && _percent >= 0)
            {
                output.WriteLine();
            }
        }
    }
}
