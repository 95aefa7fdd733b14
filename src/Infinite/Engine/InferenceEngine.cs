using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using Infinite.Cluster;
using Infinite.Tokenization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Infinite.Engine;

/// <summary>
/// Serves generation requests over one model executor. Requests are queued, then a single dedicated thread runs
/// steps: it plans a batch (<see cref="StepScheduler"/>), runs it on the executor, samples and streams the tokens.
/// Consumers and the loop share state only under one lock, which the loop never holds while the executor runs.
/// With an executor of several instances the pages come from a <see cref="ClusterPageSpace"/> (a home per request,
/// borrowing on creditors per <see cref="EngineOptions.Cluster"/>); between steps the loop applies the gManager's page
/// moves, and when an instance fails it fails only the requests that had pages there and re-runs the step without them.
/// </summary>
public sealed class InferenceEngine : IAsyncDisposable
{
    private readonly IModelExecutor _executor;
    private readonly ITokenizer _tokenizer;
    private readonly EngineOptions _options;
    private readonly ILogger _logger;
    private readonly StepScheduler _scheduler;
    private readonly IKvPageSpace _pages;
    private readonly ClusterPageSpace? _cluster;
    private readonly IPageMover? _mover;
    private readonly HashSet<int> _eos;
    private readonly int _vocab;
    private readonly object _gate = new();
    private readonly Thread _thread;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private float[] _logits = [];
    private bool _disposing;
    private int _executorDisposed;
    private Exception? _fault;
    private long _nextId;
    private long _steps;
    private long _tokensIn;
    private long _tokensOut;
    private int _failedInstances;

    public InferenceEngine(IModelExecutor executor, ITokenizer tokenizer, EngineOptions? options = null,
        ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(executor);
        ArgumentNullException.ThrowIfNull(tokenizer);
        _options = options ?? new EngineOptions();
        EngineOptionsValidator.Validate(_options, executor);
        _executor = executor;
        _tokenizer = tokenizer;
        _logger = logger ?? NullLogger.Instance;
        _vocab = executor.Config.VocabSize;
        _eos = [.. tokenizer.EosIds];
        if (executor.Instances > 1)
        {
            ClusterOptions cluster = _options.Cluster;
            _cluster = new ClusterPageSpace(executor.Instances, executor.PagesPerInstance, executor.PageSize,
                cluster.CreatePolicy(), cluster.RManager, cluster.GManager);
            _pages = _cluster;
            _mover = cluster.MovePages && cluster.MaxMovePagesPerStep > 0 ? executor as IPageMover : null;
        }
        else
        {
            _pages = new PageAllocator(executor.PageCount);
        }
        _scheduler = new StepScheduler(_pages, executor.PageSize, _options.MaxBatchTokens, _options.MaxRunningRequests,
            _options.Sparse, executor.SelectionSlots);
        _thread = new Thread(Loop) { IsBackground = true, Name = "Infinite engine loop" };
        _thread.Start();
    }

    /// <summary>Raised on the loop thread after every step; handlers must be quick and must not throw.</summary>
    public event EventHandler<StepCompletedEventArgs>? StepCompleted;

    public EngineStats Stats
    {
        get
        {
            lock (_gate)
            {
                IKvPageSpace pages = _pages;
                return new EngineStats(_scheduler.WaitingCount, _scheduler.RunningCount, pages.UsedPages,
                    pages.FreePages, pages.TotalPages, _steps, _tokensIn, _tokensOut, _scheduler.Preemptions)
                {
                    Instances = InstanceStatsLocked(),
                    PagesMoved = _cluster?.PagesMoved ?? 0,
                    FailedInstances = _failedInstances,
                    // A running sparse request holds its slot's ring; the rest are free.
                    RingPagesUsed = _options.Sparse is { StreamingStorage: StreamingStorage.Ring }
                        ? _scheduler.RunningCount * _executor.RingPagesPerSequence : 0,
                    RingPagesTotal = _options.Sparse is { StreamingStorage: StreamingStorage.Ring }
                        ? _executor.SelectionSlots * _executor.RingPagesPerSequence : 0,
                };
            }
        }
    }

    /// <summary>
    /// Queues a request and streams its tokens as they are sampled. Bad input throws <see cref="ArgumentException"/>
    /// and a full queue <see cref="EngineOverloadedException"/>, both here, before anything is queued. Cancelling
    /// <paramref name="cancellationToken"/> (or leaving the stream early) ends the request and frees its pages.
    /// </summary>
    public IAsyncEnumerable<GeneratedToken> GenerateAsync(GenerationRequest request,
        CancellationToken cancellationToken = default)
    {
        Sequence sequence = Submit(request, cancellationToken);
        return ReadAsync(sequence, cancellationToken);
    }

    /// <summary>Runs a request to the end and returns its text, tokens, finish reason and usage.</summary>
    public async Task<GenerationResult> CompleteAsync(GenerationRequest request,
        CancellationToken cancellationToken = default)
    {
        Sequence sequence = Submit(request, cancellationToken);
        var text = new StringBuilder();
        var tokens = new List<int>();
        FinishReason reason = FinishReason.Length;
        await foreach (GeneratedToken token in ReadAsync(sequence, cancellationToken).ConfigureAwait(false))
        {
            text.Append(token.Text);
            tokens.Add(token.TokenId);
            reason = token.FinishReason ?? reason;
        }
        return new GenerationResult(text.ToString(), tokens, reason, new GenerationUsage(sequence.PromptLength, tokens.Count));
    }

    /// <summary>Stops admitting, cancels (or with <see cref="EngineOptions.DrainOnDispose"/> finishes) in-flight
    /// requests and stops the loop. The executor is disposed only when <see cref="EngineOptions.OwnsExecutor"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (!_disposing)
            {
                _disposing = true;
                if (!_options.DrainOnDispose)
                {
                    foreach (Sequence s in _scheduler.Waiting.Concat(_scheduler.Running).ToList())
                        CancelLocked(s, new OperationCanceledException("The engine was disposed."));
                }
                Monitor.PulseAll(_gate);
            }
        }
        await _stopped.Task.ConfigureAwait(false);
        if (_options.OwnsExecutor && Interlocked.Exchange(ref _executorDisposed, 1) == 0)
            _executor.Dispose();
    }

    private Sequence Submit(GenerationRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        (int[] prompt, int maxTokens) = RequestValidator.Validate(request, _tokenizer, _executor, _options.MaxContext);
        var sampler = new Sampler(request.Sampling, prompt);
        var stops = new StopStringMatcher(request.Stop);
        Sequence sequence;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposing, this);
            if (_fault is not null)
                throw new InvalidOperationException($"The engine stopped after an internal error: {_fault.Message}", _fault);
            if (_cluster is not null)
                maxTokens = ClusterLimit(prompt.Length, maxTokens, request.MaxTokens is null);
            if (_scheduler.WaitingCount >= _options.MaxQueuedRequests)
                throw new EngineOverloadedException(
                    $"The engine's request queue is full ({_scheduler.WaitingCount} of {_options.MaxQueuedRequests} waiting).");
            sequence = new Sequence(++_nextId, prompt, maxTokens, request, sampler, new Utf8StreamDecoder(_tokenizer), stops);
            _scheduler.Enqueue(sequence);
            Monitor.PulseAll(_gate);
        }
        if (cancellationToken.CanBeCanceled)
        {
            sequence.Registration = cancellationToken.Register(
                static state =>
                {
                    var (engine, s, token) = ((InferenceEngine, Sequence, CancellationToken))state!;
                    engine.Cancel(s, new OperationCanceledException(token));
                },
                (this, sequence, cancellationToken));
        }
        return sequence;
    }

    private async IAsyncEnumerable<GeneratedToken> ReadAsync(Sequence sequence,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        bool finished = false;
        try
        {
            var reader = sequence.Output.Reader;
            while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (reader.TryRead(out GeneratedToken? token))
                {
                    // Tokens already buffered are not delivered after the consumer cancelled.
                    cancellationToken.ThrowIfCancellationRequested();
                    finished = token.FinishReason is not null;
                    yield return token;
                }
            }
        }
        finally
        {
            if (!finished)
                Cancel(sequence, new OperationCanceledException("The consumer stopped reading the stream."));
        }
    }

    private void Cancel(Sequence sequence, Exception reason)
    {
        lock (_gate)
            CancelLocked(sequence, reason);
    }

    /// <summary>The consumer sees the cancellation at once; a running request's pages are freed by the loop before
    /// its next step, never while the executor may still be writing them.</summary>
    private void CancelLocked(Sequence sequence, Exception reason)
    {
        if (sequence.State == SequenceState.Finished || sequence.CancelRequested)
            return;
        sequence.Output.Writer.TryComplete(reason);
        if (sequence.State == SequenceState.Waiting)
            _scheduler.Remove(sequence);
        else
            sequence.CancelRequested = true;
        sequence.Registration.Unregister();
        Monitor.PulseAll(_gate);
    }

    private void Loop()
    {
        try
        {
            var failures = new List<(Sequence Sequence, string Message)>();
            while (true)
            {
                (StepPlan Plan, ScheduledChunk[] Chunks) step;
                lock (_gate)
                {
                    while (true)
                    {
                        foreach (Sequence s in _scheduler.Running.Where(s => s.CancelRequested).ToList())
                            _scheduler.Remove(s);
                        failures.Clear();
                        var next = _scheduler.Next(failures);
                        foreach ((Sequence s, string message) in failures)
                            Fail(s, new InvalidOperationException(message));
                        if (next is { } planned)
                        {
                            step = planned;
                            break;
                        }
                        if (_disposing && _scheduler.IsIdle)
                            return;
                        Monitor.Wait(_gate);
                    }
                    _steps++;
                }
                RunStep(step.Plan, step.Chunks);
                if (_mover is not null)
                    MovePages();
            }
        }
        catch (Exception ex)
        {
            _logger.LogCritical(ex, "The engine loop stopped after an internal error.");
            lock (_gate)
            {
                _fault = ex;
                foreach (Sequence s in _scheduler.Waiting.Concat(_scheduler.Running).ToList())
                    Fail(s, new InvalidOperationException($"The engine stopped after an internal error: {ex.Message}", ex));
            }
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    private void RunStep(StepPlan plan, ScheduledChunk[] chunks)
    {
        int rows = plan.LogitTokens.Length;
        if (_logits.Length < rows * _vocab)
            _logits = new float[rows * _vocab];
        var watch = Stopwatch.StartNew();
        try
        {
            _executor.Step(plan, _logits.AsSpan(0, rows * _vocab));
        }
        catch (InstanceFailedException ex) when (_cluster is not null)
        {
            _logger.LogError(ex, "A model step over {Sequences} sequences lost instance(s) {Instances}.", chunks.Length,
                string.Join(", ", ex.Instances));
            bool handled;
            lock (_gate)
                handled = InstancesFailedLocked(ex);
            if (handled)
            {
                // The survivors keep their state, so the loop plans their chunks again and re-runs them: their K and V
                // go to the same pages and slots, so whatever the failed step appended is simply written again.
                RaiseStepCompleted(chunks, watch.Elapsed, succeeded: false);
                return;
            }
            FailChunks(chunks, ex);
            RaiseStepCompleted(chunks, watch.Elapsed, succeeded: false);
            return;
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "A model step over {Sequences} sequences failed; failing them.", chunks.Length);
            FailChunks(chunks, ex);
            RaiseStepCompleted(chunks, watch.Elapsed, succeeded: false);
            return;
        }

        if (_cluster is not null)
        {
            lock (_gate)
                ReportBatchesLocked(chunks);
        }

        // Samplers belong to the loop thread, so sampling needs no lock; results of requests cancelled meanwhile
        // are dropped below.
        var sampled = new int[rows];
        foreach (ScheduledChunk c in chunks)
        {
            if (c.LogitRow >= 0)
                sampled[c.LogitRow] = c.Sequence.Sampler.Sample(_logits.AsSpan(c.LogitRow * _vocab, _vocab));
        }
        lock (_gate)
        {
            foreach (ScheduledChunk c in chunks)
            {
                Sequence s = c.Sequence;
                if (s.State != SequenceState.Running || s.CancelRequested)
                    continue;
                s.Computed += c.Count;
                _tokensIn += c.Count;
                if (c.IsDecode)
                    s.DecodeSteps++;
                else if (s.ReplayUntil > 0 && s.Computed == s.PromptLength)
                    s.Prefilled = true; // a replay's prompt is in: its generated tokens follow as decodes
                if (c.LogitRow >= 0)
                {
                    s.Prefilled = true;
                    Emit(s, sampled[c.LogitRow]);
                }
            }
        }
        RaiseStepCompleted(chunks, watch.Elapsed, succeeded: true);
    }

    private void FailChunks(ScheduledChunk[] chunks, Exception ex)
    {
        lock (_gate)
        {
            foreach (ScheduledChunk c in chunks)
            {
                if (c.Sequence.State == SequenceState.Running)
                    Fail(c.Sequence, new InvalidOperationException($"The model step failed: {ex.Message}", ex));
            }
        }
    }

    /// <summary>Marks the failed instances in the page space and fails the requests that had pages there or were
    /// homed there, each with an <see cref="InstanceFailedException"/> naming the instance. False when nothing new
    /// was learnt (the instances were already marked and no request was failed): the caller then fails the step's
    /// requests rather than re-running a step that cannot succeed.</summary>
    private bool InstancesFailedLocked(InstanceFailedException failure)
    {
        ClusterPageSpace cluster = _cluster!;
        bool learnt = false;
        foreach (int instance in failure.Instances)
        {
            if ((uint)instance >= (uint)cluster.Instances || cluster.RManagers[instance].IsFailed)
                continue;
            learnt = true;
            _failedInstances++;
            var lost = cluster.MarkFailed(instance).ToHashSet();
            _logger.LogWarning("Instance {Instance} failed; failing the {Count} request(s) with KV pages there.", instance, lost.Count);
            foreach (Sequence s in _scheduler.Running.Where(s => lost.Contains(s.Id)).ToList())
                Fail(s, new InstanceFailedException(instance, failure.Reason, failure));
        }
        if (cluster.RManagers.All(r => r.IsFailed))
        {
            foreach (Sequence s in _scheduler.Waiting.Concat(_scheduler.Running).ToList())
                Fail(s, new InstanceFailedException(failure.Instances, $"every instance has failed; {failure.Reason}", failure));
        }
        return learnt;
    }

    /// <summary>Tells each rManager the tokens its instance ran this step (the cost model's batch size).</summary>
    private void ReportBatchesLocked(ScheduledChunk[] chunks)
    {
        ClusterPageSpace cluster = _cluster!;
        var tokens = new int[cluster.Instances];
        foreach (ScheduledChunk c in chunks)
        {
            if (c.Sequence.Home >= 0)
                tokens[c.Sequence.Home] += c.Count;
        }
        for (int i = 0; i < tokens.Length; i++)
        {
            if (!cluster.RManagers[i].IsFailed)
                cluster.RManagers[i].BatchTokens = tokens[i];
        }
    }

    /// <summary>
    /// Applies the gManager's planned page moves, in two phases: reserve the destination pages (prepare), copy the
    /// pages with the executor, then commit (the page tables switch) or abort (the reservations are freed). At most
    /// <see cref="ClusterOptions.MaxMovePagesPerStep"/> pages per call. The copy runs outside the lock like a step:
    /// only this thread grows or releases page tables, so no page of a pending move changes hands meanwhile.
    /// </summary>
    private void MovePages()
    {
        ClusterPageSpace cluster = _cluster!;
        var prepared = new List<PreparedMove>();
        lock (_gate)
        {
            if (_scheduler.RunningCount == 0)
                return;
            int budget = _options.Cluster.MaxMovePagesPerStep;
            foreach (PageMove move in cluster.PlanMoves(WaitingDemandLocked()))
            {
                if (budget <= 0)
                    break;
                PreparedMove? ready = cluster.PrepareMove(move with { Pages = Math.Min(move.Pages, budget) });
                if (ready is null)
                    continue;
                prepared.Add(ready);
                budget -= ready.Copies.Count;
            }
        }
        if (prepared.Count == 0)
            return;
        try
        {
            _mover!.MovePages(prepared.SelectMany(m => m.Copies).Select(c => (c.OldPage, c.NewPage)).ToList());
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Moving {Count} KV page(s) failed; the moves are aborted.", prepared.Sum(m => m.Copies.Count));
            lock (_gate)
            {
                foreach (PreparedMove m in prepared)
                    cluster.AbortMove(m);
                if (ex is InstanceFailedException failure)
                    InstancesFailedLocked(failure);
            }
            return;
        }
        lock (_gate)
        {
            foreach (PreparedMove m in prepared)
                cluster.CommitMove(m);
        }
    }

    /// <summary>The queue as the move planner models it: waiting requests and their average prompt pages.</summary>
    private Demand WaitingDemandLocked()
    {
        int count = 0;
        long pages = 0;
        foreach (Sequence s in _scheduler.Waiting)
        {
            count++;
            pages += PageAllocator.PagesFor(s.Tokens.Count + 1, _executor.PageSize);
        }
        return count == 0 ? Demand.None : new Demand(count, (int)Math.Max(1, pages / count));
    }

    /// <summary>Checks a request against what one request can hold in the cluster (its home's pool, plus what the
    /// others may lend when the policy borrows) and caps an unspecified max_tokens to it.</summary>
    private int ClusterLimit(int prompt, int maxTokens, bool defaultMaxTokens)
    {
        ClusterPageSpace cluster = _cluster!;
        if (cluster.RManagers.All(r => r.IsFailed))
            throw new InvalidOperationException($"Every instance of the engine has failed ({cluster.Instances} of {cluster.Instances}); no request can be served.");
        long capacity = (long)cluster.MaxPagesPerRequest * _executor.PageSize;
        if (defaultMaxTokens && prompt + (long)maxTokens > capacity)
            maxTokens = (int)Math.Max(1, capacity - prompt);
        long total = prompt + (long)maxTokens;
        if (total <= capacity)
            return maxTokens;
        string why = cluster.Policy.AllowsBorrowing
            ? $"its home's pool plus what the other instances may lend ({cluster.MaxPagesPerRequest} pages)"
            : $"one instance's pool ({cluster.PagesPerInstance} pages), because the {cluster.Policy.GetType().Name} never borrows pages on other instances";
        string size = defaultMaxTokens
            ? $"The prompt ({prompt} tokens) plus one generated token"
            : $"The prompt ({prompt} tokens) plus max_tokens ({maxTokens}) is {total} tokens,";
        throw new ArgumentException(
            $"{size} beyond the {capacity} tokens one request can hold on {cluster.Instances} instances of {cluster.PagesPerInstance} pages of {_executor.PageSize} tokens: {why}.",
            "request");
    }

    private IReadOnlyList<InstancePageStats> InstanceStatsLocked()
    {
        if (_cluster is null)
            return [new InstancePageStats(0, _pages.TotalPages, _pages.UsedPages, 0, _pages.FreePages, 0, false)];
        return _cluster.RManagers
            .Select(r => new InstancePageStats(r.Instance, r.TotalPages, r.Own, r.Lent, r.Free, r.Borrowed, r.IsFailed))
            .ToArray();
    }

    private void Emit(Sequence s, int token)
    {
        s.Tokens.Add(token);
        s.Sampler.Accept(token);
        _tokensOut++;
        if (!s.Request.IgnoreEos && _eos.Contains(token))
        {
            FinishWithFlush(s, token, "", FinishReason.Stop);
            return;
        }
        string piece = token < _tokenizer.VocabSize ? s.Decoder.Append(token) : "";
        string text = s.Stops.Append(piece, out bool stopped);
        if (stopped)
            Finish(s, new GeneratedToken(token, text, FinishReason.Stop));
        else if (s.Generated >= s.MaxTokens)
            FinishWithFlush(s, token, text, FinishReason.Length);
        else
            s.Output.Writer.TryWrite(new GeneratedToken(token, text));
    }

    /// <summary>Releases held text at the end of the stream; it may still complete a stop string.</summary>
    private void FinishWithFlush(Sequence s, int token, string text, FinishReason reason)
    {
        string tail = s.Stops.Append(s.Decoder.Flush(), out bool stopped);
        if (stopped)
            reason = FinishReason.Stop;
        else
            tail += s.Stops.Flush();
        Finish(s, new GeneratedToken(token, text + tail, reason));
    }

    private void Finish(Sequence s, GeneratedToken last)
    {
        s.Output.Writer.TryWrite(last);
        s.Output.Writer.TryComplete();
        s.Registration.Unregister();
        _scheduler.Remove(s);
    }

    private void Fail(Sequence s, Exception error)
    {
        s.Output.Writer.TryComplete(error);
        s.Registration.Unregister();
        _scheduler.Remove(s);
    }

    private void RaiseStepCompleted(ScheduledChunk[] chunks, TimeSpan duration, bool succeeded)
    {
        EventHandler<StepCompletedEventArgs>? handler = StepCompleted;
        if (handler is null)
            return;
        int decode = chunks.Count(c => c.IsDecode);
        int tokens = chunks.Sum(c => c.Count);
        try
        {
            handler(this, new StepCompletedEventArgs
            {
                BatchSize = chunks.Length,
                Tokens = tokens,
                PrefillTokens = tokens - decode,
                DecodeTokens = decode,
                Duration = duration,
                Succeeded = succeeded,
            });
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "A StepCompleted handler threw; ignored.");
        }
    }
}
