using System.Globalization;
using CommandLine;
using RLMServing.IO.Traces;
using RLMServing.Workloads;
using Spectre.Console;

namespace RLMServing.Cli.Commands;

[Verb("trace", HelpText = "Request traces: 'trace import FILE --format F --out OUT.parquet' or 'trace stats FILE [--format F] [--json]'.")]
public sealed class TraceCommand : ICommand
{
    [Value(0, MetaName = "ACTION", Required = true, HelpText = "import | stats")]
    public string Action { get; set; } = "";

    [Value(1, MetaName = "FILE", Required = true, HelpText = "Trace file (or ServeGen folder / chunk file; a measured run's file or folder for llmservingsim-run, distserve-run, vllm-bench).")]
    public string File { get; set; } = "";

    [Option("format", HelpText = "Input format. Request traces: azure, burstgpt, mooncake, servegen, vidur, csv, parquet (stats: detected when omitted). " +
        "Measured runs (import only; --out is then a folder: trace.parquet, requests.parquet): llmservingsim-run, distserve-run, vllm-bench. " +
        "GPU profiles (import only): vidur-profile, llmservingsim-profile, llmservingsim-v0-profile, splitwise-perf, distserve-profile.")]
    public string? Format { get; set; }

    [Option("out", HelpText = "import: output Parquet file (a folder for measured runs).")]
    public string? Out { get; set; }

    [Option("skip-bad-rows", HelpText = "Skip invalid rows (reporting how many and which lines) instead of stopping at the first.")]
    public bool SkipBadRows { get; set; }

    [Option("limit", HelpText = "Keep at most N requests.")]
    public long? Limit { get; set; }

    [Option("seed", Default = 0, HelpText = "Seed for generator formats (servegen).")]
    public int Seed { get; set; }

    [Option("duration", HelpText = "servegen: seconds of traffic to generate (default 3600).")]
    public double? Duration { get; set; }

    [Option("start", Default = 0.0, HelpText = "servegen: time of day in seconds where generation starts (default 0).")]
    public double Start { get; set; }

    [Option("session-context", HelpText = "Multi-turn sessions: 'grow' (prompt = new input + earlier turns) or 'as-is'. Default: grow for csv, as-is for burstgpt.")]
    public string? SessionContext { get; set; }

    [Option("json", HelpText = "stats: print JSON instead of a table.")]
    public bool Json { get; set; }

    /// <summary>The formats <c>import</c> knows: request traces, measured runs and GPU profiles (<see cref="CliImporters"/>).</summary>
    public TraceImporterRegistry Importers { get; set; } = CliImporters.Create();

    [Option("quiet", HelpText = "import: no progress lines; only errors and the result line.")]
    public bool Quiet { get; set; }

    /// <summary>Most seconds of ServeGen traffic one import generates: a week (the data describes one day, repeated).</summary>
    public const double MaxServeGenDurationS = 7 * 86_400.0;

    public int Run()
    {
        bool? grow = SessionContext switch
        {
            null => null,
            "grow" => true,
            "as-is" => false,
            _ => throw new UserInputException($"--session-context: expected 'grow' or 'as-is', got '{SessionContext}'"),
        };
        if (Limit is < 0) throw new UserInputException($"--limit: must be zero or positive, got {Limit}");
        return Action switch
        {
            "import" => Import(grow),
            "stats" => Stats(grow),
            _ => throw new UserInputException($"trace: unknown action '{Action}'; expected 'import' or 'stats'"),
        };
    }

    private int Import(bool? grow)
    {
        if (string.IsNullOrEmpty(Format)) throw new UserInputException("trace import: --format is required");
        if (string.IsNullOrEmpty(Out)) throw new UserInputException("trace import: --out is required");
        var importer = Importers.Get(Format);
        CheckInput();
        if (Duration is { } d && !(d > 0 && d <= MaxServeGenDurationS))
            throw new UserInputException(string.Create(CultureInfo.InvariantCulture,
                $"--duration {d:G4}: must be more than 0 and at most {MaxServeGenDurationS:N0} s (a week; docs/limits.md)"));
        RLMServing.IO.Results.OutputPath.CheckFile(Out, "--out");
        using var cancel = CancelScope.Start();
        cancel.Kept = $"{Out} was not written";
        var progress = Quiet ? null : new SynchronousProgress(rows => Console.Error.WriteLine($"  {rows.ToString("N0", CultureInfo.InvariantCulture)} rows ..."));
        var options = new ImportOptions(SkipBadRows, Limit, progress, Seed, Duration, Start, grow);
        var started = System.Diagnostics.Stopwatch.StartNew();
        var result = importer.Import(File, Out, options);
        double seconds = started.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"imported {result.Rows:N0} rows from {File} ({importer.Format}) into {Out} in {seconds:F2} s"));
        ReportSkipped(result.SkippedRows, result.SkippedLines);
        return 0;
    }

    /// <summary>A file input must be a regular file (a FIFO would hang, /dev/zero would never end); folders are read by their importers.</summary>
    private void CheckInput()
    {
        if (!Directory.Exists(File)) RLMServing.IO.Files.InputFile.CheckRegular(File);
    }

    private int Stats(bool? grow)
    {
        CheckInput();
        var (stats, bad) = RequestTraceStats.Compute(File, Format, new SourceOptions(Seed, Duration, Start, grow), SkipBadRows, Limit);
        if (Json) Console.WriteLine(RequestTraceStats.ToJson(stats));
        else PrintTable(stats);
        ReportSkipped(bad.Count, bad.Lines);
        return 0;
    }

    private static void ReportSkipped(long count, IReadOnlyList<long> lines)
    {
        if (count == 0) return;
        string shown = string.Join(", ", lines.Take(20));
        string more = count > 20 ? $", ... ({count - 20} more)" : "";
        Console.Error.WriteLine($"skipped {count} bad rows at lines {shown}{more}");
    }

    private void PrintTable(TraceStats s)
    {
        static string F(double v) => v.ToString("#,0.###", CultureInfo.InvariantCulture);
        var summary = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(File));
        summary.AddColumn("rows").AddColumn("duration_s").AddColumn("mean_rate").AddColumn("interarrival_cv");
        summary.AddRow(F(s.Rows), F(s.DurationS), F(s.MeanRate), F(s.InterarrivalCv));
        var tokens = new Table().Border(TableBorder.Rounded);
        tokens.AddColumn("tokens");
        foreach (var c in new[] { "mean", "p50", "p90", "p99", "max" }) tokens.AddColumn(new TableColumn(c).RightAligned());
        void Row(string name, TokenSummary t) => tokens.AddRow(name, F(t.Mean), F(t.P50), F(t.P90), F(t.P99), F(t.Max));
        Row("prompt_tokens", s.PromptTokens);
        Row("output_tokens", s.OutputTokens);
        if (s.ThinkingTokens is { } thinking) Row("thinking_tokens", thinking);
        AnsiConsole.Write(summary);
        AnsiConsole.Write(tokens);
    }

    /// <summary>Reports on the calling thread (System.Progress would post to the thread pool and print out of order).</summary>
    private sealed class SynchronousProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
