using System.Globalization;
using CommandLine;
using RLMServing.IO.Catalog;
using RLMServing.IO.Results;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Metrics;
using RLMServing.Reports;
using Spectre.Console;

namespace RLMServing.Cli.Commands;

[Verb("simulate", HelpText = "Run a scenario file through the discrete-event simulator.")]
public sealed class SimulateCommand : ICommand
{
    [Value(0, MetaName = "FILE", Required = true, HelpText = "Scenario YAML file.")]
    public string File { get; set; } = "";

    [Option("out", HelpText = "Output folder (default: results/<scenario name>).")]
    public string? Out { get; set; }

    [Option("seed", HelpText = "Override the scenario seed.")]
    public int? Seed { get; set; }

    [Option("set", HelpText = "Override a scenario key: dotted.key=value (repeatable).")]
    public IEnumerable<string> Set { get; set; } = [];

    [Option("catalog", HelpText = "Extra catalog folders or files (GPUs, models) added to the bundled catalog.")]
    public IEnumerable<string> Catalog { get; set; } = [];

    [Option("metric-percentiles", HelpText = MetricPercentilesOption.HelpText)]
    public string? MetricPercentiles { get; set; }

    [Option("quiet", HelpText = "No progress bar or tables; only errors and the output path.")]
    public bool Quiet { get; set; }

    [Option("report", HelpText = "Also write the HTML report: --report (OUT/report.html) or --report PATH.html.")]
    public string? Report { get; set; }

    /// <summary>What <c>--report</c> with no path becomes (CommandLineParser has no options with an optional value).</summary>
    public const string DefaultReport = "@default";

    /// <summary>
    /// <c>--report</c> takes a path only when the next argument ends in .html or .htm (so <c>--report FILE.yaml</c>
    /// still reads the scenario); otherwise it means the default path beside the results.
    /// </summary>
    public static string[] NormalizeReportOption(string[] args)
    {
        if (args.Length == 0 || args[0] is not ("simulate" or "sweep")) return args;
        var result = new List<string>(args.Length + 1);
        for (int i = 0; i < args.Length; i++)
        {
            result.Add(args[i]);
            if (args[i] != "--report") continue;
            bool hasPath = i + 1 < args.Length && (args[i + 1].EndsWith(".html", StringComparison.OrdinalIgnoreCase) || args[i + 1].EndsWith(".htm", StringComparison.OrdinalIgnoreCase));
            if (!hasPath) result.Add(DefaultReport);
        }
        return result.ToArray();
    }

    public int Run()
    {
        using var cancel = CancelScope.Start();
        var catalog = CatalogLoader.LoadDefault(Catalog);
        var file = ScenarioLoader.Load(File, Set.Concat(MetricPercentilesOption.AsSet(MetricPercentiles)), Seed);
        var runs = ScenarioRunner.Prepare(file, new ScenarioInputs(catalog, Catalog));   // every variant is validated before anything runs
        var outDir = Out ?? Path.Combine("results", file.Name);
        ReportOption.Check(Report);
        using var folder = OutputFolder.Open(outDir, Out is null ? "results folder" : "--out", "simulate");
        cancel.Kept = $"nothing was written to {outDir}";
        var command = "rlms simulate " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));
        var summaries = new List<RunSummary>();
        // Every variant's files and comparison.json are staged and moved into place together: a run that fails part
        // way leaves no variant without the others.
        var printed = new HashSet<string>();   // a warning every variant shares is said once
        using (var staged = new StagedFiles())
        {
            foreach (var run in runs)
            {
                string? variant = file.HasVariants ? run.Name : null;
                var dir = variant is null ? outDir : Path.Combine(outDir, variant);
                var result = WithProgress(run, variant);
                var warnings = ScenarioRunner.CalibrationWarnings(run, result);
                if (warnings.Count > 0) result = result with { Summary = result.Summary with { CalibrationWarnings = [.. warnings] } };
                ResultWriter.StageRunAsync(staged, dir, result, ScenarioRunner.Metadata(run, variant, command)).GetAwaiter().GetResult();
                summaries.Add(result.Summary);
                foreach (var w in warnings)
                    if (printed.Add(w)) Console.Error.WriteLine($"warning: {variant ?? file.Name}: {w}");
                if (result.Summary.Unstable)
                    Console.Error.WriteLine($"warning: {variant ?? file.Name}: the system was unstable: {result.Summary.UnstableReason}");
            }
            if (file.HasVariants) ScenarioRunner.StageComparisonAsync(staged, outDir, file.Name, summaries).GetAwaiter().GetResult();
            staged.Commit();
        }
        folder.Commit();
        cancel.Kept = $"the results in {outDir} are complete";
        if (!Quiet) AnsiConsole.Write(SummaryTable(file.Name, summaries));
        Console.WriteLine($"results: {outDir}");
        ReportOption.Write(Report, outDir);
        return 0;
    }

    private Simulation.SimulationResult WithProgress(PreparedRun run, string? variant)
    {
        // Small runs finish in a blink; a bar would only flicker.
        int requests = run.Scenario.ReplayRequests?.Count ?? run.Scenario.Workload!.Requests;
        return ProgressDisplay.Run($"simulating {variant ?? run.Name}", Quiet || requests < 5000, p => ScenarioRunner.Simulate(run, variant, p));
    }

    /// <summary>
    /// The metrics a capacity planner looks at first, one column per variant. The rows the HTML report's key table
    /// also has (RunReport) carry the same statistics (median and p99) in the same units, formatted alike.
    /// </summary>
    public static Table SummaryTable(string title, IReadOnlyList<RunSummary> summaries)
    {
        var table = new Table().Title(Markup.Escape(title)).AddColumn("metric");
        foreach (var s in summaries) table.AddColumn(new TableColumn(Markup.Escape(s.Variant ?? "result")).RightAligned());
        void Row(string name, Func<RunSummary, string> f) => table.AddRow([name, .. summaries.Select(s => Markup.Escape(f(s)))]);
        static string N(double v, string fmt = "F1") => v.ToString(fmt, CultureInfo.InvariantCulture);
        Row("model", s => s.Model);
        Row("hardware", s => $"{s.Replicas} x {s.TensorParallel} x {s.Gpu}");
        Row("batching", s => s.Batching);
        Row("completed / rejected", s => $"{s.Completed} / {s.Rejected}");
        Row("duration (s)", s => N(s.Duration));
        Row("request throughput (req/s)", s => N(s.RequestThroughput, "F2"));
        Row("output throughput (tok/s)", s => N(s.OutputThroughput, "F0"));
        if (summaries.Any(s => s.RequestGoodput is not null)) Row("request goodput (req/s)", s => s.RequestGoodput is { } g ? N(g, "F2") : "-");
        Row("TTFT median / p99 (s)", s => $"{N(s.MedianTtftMs / 1000, "F2")} / {N(s.P99TtftMs / 1000, "F2")}");
        Row("TTFAT median / p99 (s)", s => $"{N(s.MedianTtfatMs / 1000, "F2")} / {N(s.P99TtfatMs / 1000, "F2")}");
        Row("TPOT median / p99 (ms)", s => $"{N(s.MedianTpotMs, "F1")} / {N(s.P99TpotMs, "F1")}");
        Row("ITL median / p99 (ms)", s => $"{N(s.MedianItlMs, "F1")} / {N(s.P99ItlMs, "F1")}");
        Row("E2EL median / p99 (s)", s => $"{N(s.MedianE2elMs / 1000)} / {N(s.P99E2elMs / 1000)}");
        Row("mean thinking tokens", s => N(s.MeanThinkingTokens, "F0"));
        Row("mean batch size", s => N(s.MeanBatchSize));
        Row("peak / mean KV usage", s => $"{N(s.PeakKvCacheUsage * 100, "F0")}% / {N(s.MeanKvCacheUsage * 100, "F0")}%");
        Row("mean KV (GiB)", s => N(s.MeanKvCacheGib, "F2"));
        // Serving policies, only when some variant uses them.
        if (summaries.Any(s => s.KvTokensEvicted > 0 || s.EstimatedAccuracyRetention is not null))
        {
            Row("mean KV uncompressed (GiB)", s => N(s.MeanKvCacheUncompressedGib, "F2"));
            Row("KV tokens evicted", s => s.KvTokensEvicted.ToString("N0", CultureInfo.InvariantCulture));
            Row("est. accuracy retention", s => s.EstimatedAccuracyRetention is { } r ? N(r, "F3") : "-");
        }
        if (summaries.Any(s => s.MeanAcceptedTokensPerStep is not null))
        {
            Row("spec. tokens/step / acceptance", s => s.MeanAcceptedTokensPerStep is { } m ? $"{N(m, "F2")} / {N(s.SpecDecodeAcceptanceRate!.Value, "F2")}" : "-");
            Row("spec. reserved GiB / KV tokens", s => $"{(s.SpeculativeReservedGib is { } g ? N(g, "F2") : "-")} / {s.KvCacheCapacityTokens.ToString("N0", CultureInfo.InvariantCulture)}");
        }
        if (summaries.Any(s => s.EstimatedAccuracy is not null || s.ThinkingTruncated > 0))
        {
            Row("thinking truncated", s => s.ThinkingTruncated.ToString(CultureInfo.InvariantCulture));
            if (summaries.Any(s => s.MeanThinkingBudget is not null)) Row("mean thinking budget", s => s.MeanThinkingBudget is { } b ? N(b, "F0") : "-");
            Row("est. accuracy", s => s.EstimatedAccuracy is { } a ? N(a, "F3") : "-");
        }
        Row("preemptions", s => s.Preemptions.ToString(CultureInfo.InvariantCulture));
        Row("GPU busy", s => $"{N(s.GpuBusyFraction * 100, "F0")}%");
        Row("est. bandwidth / compute util", s => $"{N(s.EstBandwidthUtilization * 100, "F0")}% / {N(s.EstComputeUtilization * 100, "F0")}%");
        Row("stable", s => s.Unstable ? "NO" : "yes");
        return table;
    }
}
