using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using CommandLine;
using RLMServing.Bench;
using Spectre.Console;

namespace RLMServing.Cli.Commands;

[Verb("bench", HelpText = "Measure an OpenAI-compatible (or TGI) server: reasoning-aware TTFT/TTFAT/TPOT/ITL/E2EL into the simulator's result files (flags as vllm bench serve).")]
public sealed class BenchCommand : ICommand
{
    [Option("base-url", HelpText = "Server root URL (default http://HOST:PORT).")]
    public string? BaseUrl { get; set; }

    [Option("host", Default = "127.0.0.1", HelpText = "Server host when --base-url is not given.")]
    public string Host { get; set; } = "127.0.0.1";

    [Option("port", Default = 8000, HelpText = "Server port when --base-url is not given.")]
    public int Port { get; set; } = 8000;

    [Option("endpoint", HelpText = "Request path (default by backend: /v1/chat/completions, /v1/completions, /v1/responses, /generate_stream).")]
    public string? Endpoint { get; set; }

    [Option("backend", Default = "openai-chat", HelpText = "openai-chat | openai (completions) | openai-responses | tgi.")]
    public string Backend { get; set; } = "openai-chat";

    [Option("model", Required = true, HelpText = "Model name (sent as the request's model unless --served-model-name).")]
    public string Model { get; set; } = "";

    [Option("served-model-name", HelpText = "The model name the server knows (default: --model).")]
    public string? ServedModelName { get; set; }

    [Option("header", HelpText = "Extra request headers KEY=VALUE (several allowed). OPENAI_API_KEY, when set, is sent as a bearer token.")]
    public IEnumerable<string> Header { get; set; } = [];

    [Option("dataset-name", Default = "random", HelpText = "random | sharegpt | custom | trace | gsm8k | math500 | aime24 | gpqa.")]
    public string DatasetName { get; set; } = "random";

    [Option("dataset-path", HelpText = "sharegpt: JSON file; custom: JSONL of {\"prompt\": ...}; trace: any file 'rlms trace import' reads; gsm8k: another test.jsonl.")]
    public string? DatasetPath { get; set; }

    [Option("num-prompts", Default = 1000, HelpText = "Number of requests.")]
    public int NumPrompts { get; set; } = 1000;

    [Option("seed", Default = 0, HelpText = "Seed for prompts, lengths and arrival times.")]
    public int Seed { get; set; }

    [Option("input-len", Default = 1024, HelpText = "random: prompt tokens.")]
    public int InputLen { get; set; } = 1024;

    [Option("output-len", Default = 128, HelpText = "random (and custom rows without max_tokens): output tokens.")]
    public int OutputLen { get; set; } = 128;

    [Option("max-tokens", HelpText = "max_tokens of every request (overrides the dataset's lengths).")]
    public int? MaxTokens { get; set; }

    [Option("request-rate", Default = "inf", HelpText = "Requests per second, or inf (all at time 0).")]
    public string RequestRate { get; set; } = "inf";

    [Option("burstiness", Default = 1.0, HelpText = "Gamma shape of inter-arrival times: 1 Poisson, <1 burstier, >1 more even.")]
    public double Burstiness { get; set; } = 1.0;

    [Option("max-concurrency", HelpText = "At most this many requests in flight.")]
    public int? MaxConcurrency { get; set; }

    [Option("ramp-up-strategy", HelpText = "linear | exponential: the rate moves from --ramp-up-start-rps to --ramp-up-end-rps over the run.")]
    public string? RampUpStrategy { get; set; }

    [Option("ramp-up-start-rps", HelpText = "Ramp start rate (req/s).")]
    public double? RampUpStartRps { get; set; }

    [Option("ramp-up-end-rps", HelpText = "Ramp end rate (req/s).")]
    public double? RampUpEndRps { get; set; }

    [Option("num-warmups", Default = 0, HelpText = "Warm-up requests before the measured run (not recorded).")]
    public int NumWarmups { get; set; }

    [Option("ready-check-timeout-sec", Default = 600, HelpText = "Wait up to this long for a first successful test request; 0 skips the check.")]
    public int ReadyCheckTimeoutSec { get; set; } = 600;

    [Option("request-timeout", Default = 21600.0, HelpText = "Seconds a request may take before it is a 'timeout' row.")]
    public double RequestTimeout { get; set; } = 21600;

    [Option("ignore-eos", HelpText = "Send ignore_eos (generate exactly max_tokens); on by default for --dataset-name random, as in vLLM.")]
    public bool IgnoreEos { get; set; }

    [Option("preset-lengths", Default = "reasoning", HelpText = "gsm8k, math500, aime24, gpqa: draw each request's max_tokens from the preset's reasoning (thinking + answer) or standard (answer only) lengths.")]
    public string PresetLengths { get; set; } = "reasoning";

    [Option("temperature", HelpText = "Sampling temperature (default 0, greedy, as vLLM's client).")]
    public double? Temperature { get; set; }

    [Option("top-p", HelpText = "Top-p sampling.")]
    public double? TopP { get; set; }

    [Option("extra-body", HelpText = "JSON object merged into every request body, e.g. '{\"chat_template_kwargs\":{\"enable_thinking\":false}}'.")]
    public string? ExtraBody { get; set; }

    [Option("goodput", HelpText = "SLOs for goodput, KEY:MS pairs: ttft, tpot, e2el, ttfat.")]
    public IEnumerable<string> Goodput { get; set; } = [];

    [Option("percentile-metrics", Default = "ttft,tpot,itl", HelpText = "Comma-separated metrics to report percentiles of: ttft, tpot, itl, e2el, ttfat.")]
    public string PercentileMetrics { get; set; } = "ttft,tpot,itl";

    [Option("metric-percentiles", Default = "99", HelpText = "Comma-separated percentiles, e.g. 50,90,99.")]
    public string MetricPercentiles { get; set; } = "99";

    [Option("result-dir", Default = "results/bench", HelpText = "Output folder.")]
    public string ResultDir { get; set; } = "results/bench";

    [Option("label", HelpText = "Name of the run (summary.json's scenario; vLLM's label).")]
    public string? Label { get; set; }

    [Option("metadata", HelpText = "KEY=VALUE pairs recorded in summary.json and the vLLM result file.")]
    public IEnumerable<string> Metadata { get; set; } = [];

    [Option("token-budgets", HelpText = "Comma-separated max_tokens budgets: the same prompts once per budget, each in RESULT_DIR/budget-N.")]
    public string? TokenBudgets { get; set; }

    [Option("closed-batches", HelpText = "Closed loop: send N requests, wait for all, repeat.")]
    public int? ClosedBatches { get; set; }

    [Option("evaluate", HelpText = "Grade each answer that has a reference (gsm8k; custom rows with \"answer\"): answer_extracted and correct per request, accuracy in summary.json.")]
    public bool Evaluate { get; set; }

    [Option("grader", HelpText = "The grading rule with --evaluate: gsm8k, math500, aime24 or gpqa (default: the dataset's own; required for custom).")]
    public string? Grader { get; set; }

    [Option("scrape-metrics", HelpText = "Read the server's Prometheus /metrics at this interval (e.g. 1s, 500ms) into timeseries.parquet.")]
    public string? ScrapeMetrics { get; set; }

    [Option("vllm-json", HelpText = "Also write vLLM's own result file (vllm-result.json).")]
    public bool VllmJson { get; set; }

    [Option("quiet", HelpText = "No progress bar or table.")]
    public bool Quiet { get; set; }

    public int Run()
    {
        var options = ToOptions();
        using var runner = new BenchRunner(options);
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; cts.Cancel(); });
        IReadOnlyList<BenchResult> results;
        try
        {
            results = WithProgress(runner, cts.Token);
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("interrupted before the measured run began; nothing written");
            return 130;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
        if (!Quiet) AnsiConsole.Write(Table(results, options));
        foreach (var r in results)
            if (r.Run.Interrupted)
                Console.Error.WriteLine($"interrupted: {r.Run.Outcomes.Count} requests sent ({r.Run.NotSent} not sent) written to {r.Directory}");
        if (options.Evaluate)
            foreach (var r in results)
                Console.WriteLine($"accuracy{(r.TokenBudget is { } b ? $" (budget {b})" : "")}: " + (r.Summary.Json["accuracy"]?.GetValue<double>() is { } a
                    ? $"{(100 * a).ToString("F1", CultureInfo.InvariantCulture)}% of {r.Summary.Json["graded"]} graded ({options.AnswerGrader!.Dataset} rule)"
                    : "no request was graded"));
        Console.WriteLine($"results: {options.ResultDir}");
        return results.Any(r => r.Run.Interrupted) ? 130 : 0;
    }

    /// <summary>The flags as <see cref="BenchOptions"/>, every value checked; the message names the flag.</summary>
    public BenchOptions ToOptions()
    {
        if (BaseUrl is null && (Port is < 1 or > 65535)) throw new UserInputException($"--port: must be 1-65535, got {Port}");
        var options = new BenchOptions
        {
            BaseUrl = BaseUrl ?? $"http://{(Host.Contains(':') ? $"[{Host}]" : Host)}:{Port}",
            Endpoint = Endpoint,
            Backend = Backend,
            Model = Model,
            ServedModelName = ServedModelName,
            Headers = Pairs("--header", Header, '='),
            ApiKey = Environment.GetEnvironmentVariable("OPENAI_API_KEY"),
            DatasetName = DatasetName,
            DatasetPath = DatasetPath,
            NumPrompts = NumPrompts,
            Seed = Seed,
            InputLen = InputLen,
            OutputLen = OutputLen,
            MaxTokens = MaxTokens,
            RequestRate = Rate(RequestRate),
            Burstiness = Burstiness,
            MaxConcurrency = MaxConcurrency,
            RampUpStrategy = RampUpStrategy,
            RampUpStartRps = RampUpStartRps,
            RampUpEndRps = RampUpEndRps,
            NumWarmups = NumWarmups,
            ReadyCheckTimeoutSec = ReadyCheckTimeoutSec,
            RequestTimeoutS = RequestTimeout,
            // vLLM sends ignore_eos for the random dataset so every request generates its full output length.
            IgnoreEos = IgnoreEos || (DatasetName == "random" && Backend != BenchBackends.Tgi),
            PresetLengths = PresetLengths,
            Temperature = Temperature,
            TopP = TopP,
            ExtraBody = ParseExtraBody(ExtraBody),
            Goodput = Pairs("--goodput", Goodput, ':').ToDictionary(kv => kv.Key, kv => Number("--goodput", kv.Value)),
            PercentileMetrics = List(PercentileMetrics),
            MetricPercentiles = List(MetricPercentiles).Select(x => Number("--metric-percentiles", x)).ToList(),
            ResultDir = ResultDir,
            Label = Label,
            Metadata = Pairs("--metadata", Metadata, '='),
            TokenBudgets = TokenBudgets is null ? null : List(TokenBudgets).Select(x => (int)Number("--token-budgets", x, integer: true)).ToList(),
            ClosedBatches = ClosedBatches,
            Evaluate = Evaluate,
            Grader = Grader,
            ScrapeMetricsIntervalS = ScrapeMetrics is null ? null : Interval(ScrapeMetrics),
            VllmJson = VllmJson,
            Command = "rlms bench " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
        };
        options.Validate();
        return options;
    }

    private IReadOnlyList<BenchResult> WithProgress(BenchRunner runner, CancellationToken stop)
    {
        Action<string>? log = Quiet ? null : line => Console.Error.WriteLine(line);
        if (Quiet) return runner.RunAllAsync(null, null, stop).GetAwaiter().GetResult();
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            // Without a terminal (scripts, CI): a line per tenth of the requests finished.
            var lines = new LineProgress();
            var task = runner.RunAllAsync(log, (budget, c) => lines.Start(budget, c), stop);
            while (!task.Wait(500)) lines.Tick();
            lines.Tick();
            return task.GetAwaiter().GetResult();
        }
        IReadOnlyList<BenchResult>? results = null;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<BenchCounters, ProgressTask>();
                BenchCounters? current = null;
                int? currentBudget = null;
                var run = runner.RunAllAsync(log, (budget, c) => { currentBudget = budget; Volatile.Write(ref current, c); }, stop);
                while (true)
                {
                    bool done = run.Wait(200);
                    if (Volatile.Read(ref current) is { } c)
                    {
                        if (!tasks.TryGetValue(c, out var bar))
                            tasks[c] = bar = ctx.AddTask("", maxValue: Math.Max(c.Total, 1));
                        bar.Value = c.Completed + c.Failed;
                        bar.Description = Markup.Escape(Describe(currentBudget, c));
                    }
                    if (done) break;
                }
                results = run.GetAwaiter().GetResult();
            });
        return results!;
    }

    internal static string Describe(int? budget, BenchCounters c)
    {
        double elapsed = Math.Max(c.ElapsedS, 1e-9);
        return string.Create(CultureInfo.InvariantCulture,
            $"{(budget is { } b ? $"budget {b}: " : "")}sent {c.Sent}/{c.Total}, completed {c.Completed}, failed {c.Failed}, {(c.Completed + c.Failed) / elapsed:F1} req/s");
    }

    private sealed class LineProgress
    {
        private BenchCounters? _counters;
        private int? _budget;
        private int _tenths;

        public void Start(int? budget, BenchCounters c) { _budget = budget; _tenths = 0; Volatile.Write(ref _counters, c); }

        public void Tick()
        {
            if (Volatile.Read(ref _counters) is not { } c || c.Total == 0) return;
            int tenths = (c.Completed + c.Failed) * 10 / c.Total;
            if (tenths <= _tenths) return;
            _tenths = tenths;
            Console.Error.WriteLine(Describe(_budget, c));
        }
    }

    private static Table Table(IReadOnlyList<BenchResult> results, BenchOptions o)
    {
        var table = new Table().Title(Markup.Escape($"rlms bench {o.RequestUri}")).AddColumn("metric");
        foreach (var r in results) table.AddColumn(new TableColumn(Markup.Escape(r.TokenBudget is { } b ? $"budget {b}" : o.Label ?? "result")).RightAligned());
        void Row(string name, Func<BenchResult, string> f) => table.AddRow([name, .. results.Select(r => Markup.Escape(f(r)))]);
        static string N(double v, string fmt = "F1") => v.ToString(fmt, CultureInfo.InvariantCulture);
        static double J(BenchResult r, string key) => r.Summary.Json[key]?.GetValue<double>() ?? 0;
        Row("completed / failed", r => $"{r.Summary.Summary.Completed} / {r.Summary.Summary.Failed}");
        Row("duration (s)", r => N(r.Run.DurationS, "F2"));
        Row("request throughput (req/s)", r => N(r.Summary.Summary.RequestThroughput, "F2"));
        if (o.Goodput.Count > 0) Row("request goodput (req/s)", r => N(r.Summary.Summary.RequestGoodput ?? 0, "F2"));
        Row("output throughput (tok/s)", r => N(r.Summary.Summary.OutputThroughput, "F0"));
        Row("mean TTFT / TTFAT (ms)", r => $"{N(r.Summary.Summary.MeanTtftMs)} / {N(r.Summary.Summary.MeanTtfatMs)}");
        Row("mean TPOT / ITL (ms)", r => $"{N(r.Summary.Summary.MeanTpotMs, "F2")} / {N(r.Summary.Summary.MeanItlMs, "F2")}");
        Row("mean E2EL (ms)", r => N(r.Summary.Summary.MeanE2elMs));
        foreach (var m in o.PercentileMetrics)
            foreach (var q in o.MetricPercentiles)
            {
                string key = $"p{BenchSummary.Word(q)}_{m}_ms";
                Row($"P{BenchSummary.Word(q)} {m.ToUpperInvariant()} (ms)", r => N(J(r, key), "F2"));
            }
        Row("mean output / thinking tokens", r => $"{N((double)r.Summary.Summary.TotalOutputTokens / Math.Max(1, r.Summary.Summary.Completed), "F0")} / {N(r.Summary.Summary.MeanThinkingTokens, "F0")}");
        Row("tokens counted from", r => string.Join(", ", (r.Summary.Json["token_count_source"] as JsonObject ?? []).Select(kv => $"{kv.Key} {kv.Value}")));
        if (o.Evaluate)
            Row("accuracy (correct / graded)", r => r.Summary.Json["accuracy"]?.GetValue<double>() is { } a
                ? $"{N(100 * a)}% ({r.Run.Outcomes.Count(x => x.Correct == true)} / {J(r, "graded")})" : "none graded");
        Row("mean / max send lag (ms)", r => $"{N(J(r, "mean_send_lag_ms"), "F2")} / {N(J(r, "max_send_lag_ms"), "F2")}");
        return table;
    }

    private static List<string> List(string text) => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();

    private static Dictionary<string, string> Pairs(string flag, IEnumerable<string> items, char separator)
    {
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            int at = item.IndexOf(separator);
            if (at <= 0) throw new UserInputException($"{flag}: expected KEY{separator}VALUE, got '{item}'");
            pairs[item[..at].Trim()] = item[(at + 1)..].Trim();
        }
        return pairs;
    }

    private static double Number(string flag, string text, bool integer = false)
    {
        if (integer)
        {
            if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i)) return i;
        }
        else if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d)) return d;
        throw new UserInputException($"{flag}: '{text}' is not {(integer ? "an integer" : "a number")}");
    }

    private static double Rate(string text) =>
        text.Trim().ToLowerInvariant() is "inf" or "infinity" ? double.PositiveInfinity : Number("--request-rate", text);

    /// <summary>An interval such as 1s, 500ms or 2 (seconds).</summary>
    internal static double Interval(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        double scale = 1;
        if (t.EndsWith("ms", StringComparison.Ordinal)) { scale = 0.001; t = t[..^2]; }
        else if (t.EndsWith('s')) t = t[..^1];
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !(v > 0) || double.IsInfinity(v))
            throw new UserInputException($"--scrape-metrics: expected an interval such as 1s or 500ms, got '{text}'");
        return v * scale;
    }

    private static JsonObject? ParseExtraBody(string? text)
    {
        if (text is null) return null;
        try
        {
            return JsonNode.Parse(text) as JsonObject ?? throw new UserInputException($"--extra-body: expected a JSON object, got '{text}'");
        }
        catch (JsonException e) { throw new UserInputException($"--extra-body: not valid JSON ({e.Message})"); }
    }
}
