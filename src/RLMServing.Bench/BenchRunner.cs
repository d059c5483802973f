using System.Diagnostics;
using System.Net;

namespace RLMServing.Bench;

/// <summary>Live counts of the current run, read by the progress bar while requests are in flight.</summary>
public sealed class BenchCounters(int total)
{
    private int _sent, _completed, _failed;

    public int Total { get; } = total;
    public int Sent => Volatile.Read(ref _sent);
    public int Completed => Volatile.Read(ref _completed);
    public int Failed => Volatile.Read(ref _failed);
    public int InFlight => Sent - Completed - Failed;
    public long StartTimestamp { get; } = Stopwatch.GetTimestamp();
    public double ElapsedS => Stopwatch.GetElapsedTime(StartTimestamp).TotalSeconds;

    internal void OnSent() => Interlocked.Increment(ref _sent);
    internal void OnFinished(bool completed)
    {
        if (completed) Interlocked.Increment(ref _completed);
        else Interlocked.Increment(ref _failed);
    }
}

/// <summary>One measured run: every request that was sent (in send order), the timeseries, and what was cut short.</summary>
public sealed record BenchRun(
    IReadOnlyList<RequestOutcome> Outcomes,
    IReadOnlyList<ServerSample> Timeseries,
    int NotSent,
    bool Interrupted,
    double DurationS,
    DateTimeOffset StartedUtc,
    int? TokenBudget);

/// <summary>A run written to its folder, with the summary that went into summary.json.</summary>
public sealed record BenchResult(string Directory, int? TokenBudget, BenchRun Run, BenchSummary Summary);

/// <summary>
/// Drives a server: a ready check, warm-ups, then the prompts at their scheduled send times (open loop, at absolute
/// deadlines computed up front), under --max-concurrency, or in closed batches; one <see cref="HttpClient"/> over
/// <see cref="SocketsHttpHandler"/> for everything.
/// </summary>
public sealed class BenchRunner : IDisposable
{
    private readonly BenchOptions _options;
    private readonly IBenchBackend _backend;
    private readonly HttpClient _http;
    private BenchCounters _counters = new(0);

    public BenchRunner(BenchOptions options, HttpMessageHandler? handler = null)
    {
        options.Validate();
        _options = options;
        _backend = BenchBackends.Get(options.Backend);
        _http = new HttpClient(handler ?? CreateHandler(options), disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>The handler every request goes through: pooled connections, no cap per server, no decompression.</summary>
    public static SocketsHttpHandler CreateHandler(BenchOptions options) => new()
    {
        MaxConnectionsPerServer = options.MaxConcurrency ?? int.MaxValue,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        AutomaticDecompression = DecompressionMethods.None,
        ConnectTimeout = TimeSpan.FromSeconds(30),
        UseProxy = false,
    };

    /// <summary>The counts of the run in progress (a new object per run).</summary>
    public BenchCounters Counters => Volatile.Read(ref _counters);

    public BenchOptions Options => _options;

    /// <summary>
    /// The whole command: dataset, ready check, warm-ups, one run (or one per --token-budgets entry, each in
    /// RESULT_DIR/budget-N), results written. <paramref name="onRunStart"/> sees each run's counters as it begins.
    /// </summary>
    public async Task<IReadOnlyList<BenchResult>> RunAllAsync(Action<string>? log = null, Action<int?, BenchCounters>? onRunStart = null,
        CancellationToken stop = default)
    {
        var prompts = BenchDatasets.Load(_options);
        if (_options.ReadyCheckTimeoutSec > 0)
        {
            log?.Invoke($"ready check: waiting up to {_options.ReadyCheckTimeoutSec} s for {_options.RequestUri} to answer a test request");
            await ReadyCheckAsync(prompts[0], stop).ConfigureAwait(false);
        }
        if (_options.NumWarmups > 0)
        {
            log?.Invoke($"warming up with {_options.NumWarmups} requests");
            await WarmupAsync(prompts[0], stop).ConfigureAwait(false);
        }
        var results = new List<BenchResult>();
        int?[] budgets = _options.TokenBudgets is { } b ? b.Select(x => (int?)x).ToArray() : [null];
        foreach (var budget in budgets)
        {
            if (stop.IsCancellationRequested) break;
            string dir = budget is { } n ? Path.Combine(_options.ResultDir, $"budget-{n}") : _options.ResultDir;
            var run = await RunAsync(prompts, budget, c => onRunStart?.Invoke(budget, c), stop).ConfigureAwait(false);
            if (_options.AnswerGrader is { } grader) Grading.OutcomeGrading.Apply(run.Outcomes, grader);
            var summary = BenchSummary.Build(run, _options);
            await BenchResultWriter.WriteAsync(dir, run, summary, _options).ConfigureAwait(false);
            results.Add(new BenchResult(dir, budget, run, summary));
        }
        if (budgets.Length > 1 && results.Count > 0) await BenchResultWriter.WriteComparisonAsync(_options.ResultDir, _options.Label ?? "bench", results).ConfigureAwait(false);
        return results;
    }

    /// <summary>Sends the test prompt until it completes or the timeout passes (vLLM's wait_for_endpoint); not recorded.</summary>
    public async Task ReadyCheckAsync(BenchPrompt prompt, CancellationToken stop)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(_options.ReadyCheckTimeoutSec * (double)Stopwatch.Frequency);
        var client = new StreamingClient(_http, _backend, _options, Stopwatch.GetTimestamp());
        string? last = null;
        while (true)
        {
            var outcome = new RequestOutcome(prompt, Math.Min(_options.MaxTokens ?? prompt.MaxTokens, 16), 0);
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(stop);
            attempt.CancelAfter(TimeSpan.FromSeconds(Math.Max(1, _options.ReadyCheckTimeoutSec)));
            await client.SendAsync(outcome, attempt.Token).ConfigureAwait(false);
            stop.ThrowIfCancellationRequested();
            if (outcome.IsCompleted) return;
            last = outcome.Error;
            // A server that answers with a client error will not change its mind: say so at once.
            if (outcome.HttpStatus is >= 400 and < 500 and not 408 and not 429)
                throw new UserInputException($"--base-url: {_options.RequestUri} refused the test request: {last}");
            if (Stopwatch.GetTimestamp() >= deadline)
                throw new UserInputException($"--ready-check-timeout-sec: {_options.RequestUri} did not complete a test request within {_options.ReadyCheckTimeoutSec} s (last error: {last})");
            await Task.Delay(TimeSpan.FromSeconds(1), stop).ConfigureAwait(false);
        }
    }

    /// <summary>Sends the first prompt --num-warmups times under --max-concurrency; nothing is recorded.</summary>
    public async Task WarmupAsync(BenchPrompt prompt, CancellationToken stop)
    {
        var client = new StreamingClient(_http, _backend, _options, Stopwatch.GetTimestamp());
        using var gate = new SemaphoreSlim(_options.MaxConcurrency ?? _options.NumWarmups);
        var tasks = Enumerable.Range(0, _options.NumWarmups).Select(async _ =>
        {
            await gate.WaitAsync(stop).ConfigureAwait(false);
            try { await client.SendAsync(new RequestOutcome(prompt, _options.MaxTokens ?? prompt.MaxTokens, 0), stop).ConfigureAwait(false); }
            finally { gate.Release(); }
        }).ToArray();
        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    /// <summary>
    /// One measured run of <paramref name="prompts"/> (max_tokens = <paramref name="tokenBudget"/> when given).
    /// Cancelling <paramref name="stop"/> stops sending and cancels what is in flight; the run returns what it measured.
    /// </summary>
    public async Task<BenchRun> RunAsync(IReadOnlyList<BenchPrompt> prompts, int? tokenBudget = null, Action<BenchCounters>? onStart = null,
        CancellationToken stop = default)
    {
        var counters = new BenchCounters(prompts.Count);
        Volatile.Write(ref _counters, counters);
        onStart?.Invoke(counters);
        var started = DateTimeOffset.UtcNow;
        var client = new StreamingClient(_http, _backend, _options, counters.StartTimestamp);
        var outcomes = new List<RequestOutcome>(prompts.Count);
        var tasks = new List<Task>(prompts.Count);
        using var finished = new CancellationTokenSource();
        var samples = new List<ServerSample>();
        var sampler = SampleAsync(client, counters, samples, finished.Token);
        using var gate = _options.MaxConcurrency is { } k ? new SemaphoreSlim(k) : null;

        async Task Send(RequestOutcome outcome)
        {
            try
            {
                counters.OnSent();
                await client.SendAsync(outcome, stop).ConfigureAwait(false);
                counters.OnFinished(outcome.IsCompleted);
            }
            finally { gate?.Release(); }
        }

        // With ignore_eos the server generates exactly max_tokens, so a budget that replaced the request's own length
        // would make every request the same length; it caps it instead (BenchOptions.TokenBudgets).
        int Max(BenchPrompt p) => tokenBudget is { } b ? (_options.IgnoreEos ? Math.Min(b, p.MaxTokens) : b) : p.MaxTokens;
        try
        {
            if (_options.ClosedBatches is { } batch)
            {
                for (int i = 0; i < prompts.Count && !stop.IsCancellationRequested; i += batch)
                {
                    double at = client.NowS;
                    var wave = new List<Task>(batch);
                    for (int j = i; j < Math.Min(i + batch, prompts.Count); j++)
                    {
                        if (gate is not null) await gate.WaitAsync(stop).ConfigureAwait(false);
                        var outcome = new RequestOutcome(prompts[j], Max(prompts[j]), at);
                        outcomes.Add(outcome);
                        var sent = Send(outcome);
                        wave.Add(sent);
                        // Tracked at once, so an interruption mid-batch still waits for every request it sent.
                        tasks.Add(sent);
                    }
                    await Task.WhenAll(wave).ConfigureAwait(false);
                }
            }
            else
            {
                var deadlines = prompts.All(p => p.ArrivalS is not null)
                    ? prompts.Select(p => p.ArrivalS!.Value).ToArray()
                    : ArrivalSchedule.Compute(prompts.Count, _options, new Random(_options.Seed));
                for (int i = 0; i < prompts.Count && !stop.IsCancellationRequested; i++)
                {
                    await UntilAsync(client, deadlines[i], stop).ConfigureAwait(false);
                    if (gate is not null) await gate.WaitAsync(stop).ConfigureAwait(false);
                    var outcome = new RequestOutcome(prompts[i], Max(prompts[i]), deadlines[i]);
                    outcomes.Add(outcome);
                    tasks.Add(Send(outcome));
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Ctrl-C: nothing more is sent; requests in flight see the same token and end as cancelled rows.
        }
        await Task.WhenAll(tasks).ConfigureAwait(false);
        double duration = client.NowS;
        await finished.CancelAsync().ConfigureAwait(false);
        await sampler.ConfigureAwait(false);
        return new BenchRun(outcomes, samples, prompts.Count - outcomes.Count, stop.IsCancellationRequested, duration, started, tokenBudget);
    }

    /// <summary>
    /// Waits until the absolute deadline: a timer for all but the last millisecond (timers round to whole
    /// milliseconds and may fire early), then yields until it has passed, so no request goes out before its time.
    /// </summary>
    private static async Task UntilAsync(StreamingClient client, double deadlineS, CancellationToken stop)
    {
        double wait;
        while ((wait = deadlineS - client.NowS) > 0)
        {
            if (wait > 0.002) await Task.Delay(TimeSpan.FromSeconds(wait - 0.001), stop).ConfigureAwait(false);
            else
            {
                stop.ThrowIfCancellationRequested();
                await Task.Yield();
            }
        }
    }

    /// <summary>Samples the client's counts, and with --scrape-metrics the server's /metrics, every interval until the run ends.</summary>
    private async Task SampleAsync(StreamingClient client, BenchCounters counters, List<ServerSample> samples, CancellationToken finished)
    {
        double interval = _options.ScrapeMetricsIntervalS ?? 1.0;
        var metricsUri = new Uri(_options.BaseUrl.TrimEnd('/') + "/metrics");
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(interval));
        while (true)
        {
            IReadOnlyDictionary<string, double>? metrics = null;
            string? error = null;
            if (_options.ScrapeMetricsIntervalS is not null)
            {
                try
                {
                    using var cts = CancellationTokenSource.CreateLinkedTokenSource(finished);
                    cts.CancelAfter(TimeSpan.FromSeconds(Math.Max(interval, 1)));
                    metrics = PrometheusText.Parse(await _http.GetStringAsync(metricsUri, cts.Token).ConfigureAwait(false));
                }
                catch (OperationCanceledException) when (finished.IsCancellationRequested) { return; }
                catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException) { error = e.Message; }
            }
            int finishedCount = counters.Completed + counters.Failed;
            lock (samples) samples.Add(ServerSample.From(client.NowS, counters.Sent - finishedCount, counters.Sent, finishedCount, metrics, error));
            try
            {
                if (!await timer.WaitForNextTickAsync(finished).ConfigureAwait(false)) return;
            }
            catch (OperationCanceledException) { return; }
        }
    }

    public void Dispose() => _http.Dispose();
}
