using System.Globalization;
using System.Text.Json;
using CommandLine;
using RLMServing.IO.Catalog;
using RLMServing.IO.Results;
using RLMServing.IO.Runs;
using RLMServing.Metrics;
using RLMServing.Validation;
using Spectre.Console;

namespace RLMServing.Cli.Commands;

[Verb("validate", HelpText = "Compare a predicted run with a measured one: --measured A/requests.parquet --predicted B/requests.parquet, or --measured RUN --scenario S.yaml (simulates the run's own requests under S).")]
public sealed class ValidateCommand : ICommand
{
    /// <summary>Exit code when the comparison ran but a metric is outside the tolerance.</summary>
    public const int OutsideTolerance = 1;

    [Option("measured", Required = true, Min = 1,
        HelpText = "requests.parquet of the measured run (ground truth); several files are pooled: repeats of one scenario against one --predicted (their run-to-run range is reported), or runs paired with as many --predicted files.")]
    public IEnumerable<string> Measured { get; set; } = [];

    [Option("predicted",
        HelpText = "requests.parquet of the predicted (simulated) run: one, or one per --measured file (run i against run i, e.g. one seed each).")]
    public IEnumerable<string> Predicted { get; set; } = [];

    [Option("scenario",
        HelpText = "Scenario to predict the measured run with (instead of --predicted): its engine, hardware and cost model, its workload replaced by the run's trace. --measured is then one folder from 'rlms trace import RUN --format llmservingsim-run|distserve-run|vllm-bench --out DIR'.")]
    public string? Scenario { get; set; }

    [Option("set", HelpText = "With --scenario: override a scenario key, dotted.key=value (repeatable; not the workload).")]
    public IEnumerable<string> Set { get; set; } = [];

    [Option("catalog", HelpText = "With --scenario: extra catalog folders or files.")]
    public IEnumerable<string> Catalog { get; set; } = [];

    [Option("out", HelpText = "With --scenario: also write the prediction (summary.json, requests.parquet, timeseries.parquet) to this folder.")]
    public string? Out { get; set; }

    [Option("tolerance", Default = 0.10, HelpText = "Largest |mean relative error| per metric that passes (0.10 = 10%).")]
    public double Tolerance { get; set; } = 0.10;

    [Option("json", HelpText = "Print the report as JSON instead of a table.")]
    public bool Json { get; set; }

    [Option("quiet", HelpText = "No table: only the verdict line (and the exit code: 0 pass, 1 outside the tolerance).")]
    public bool Quiet { get; set; }

    public int Run()
    {
        if (!(Tolerance > 0) || double.IsInfinity(Tolerance)) throw new UserInputException($"--tolerance: must be a positive number, got {Tolerance.ToString(CultureInfo.InvariantCulture)}");
        var files = Measured.ToList();
        var predictedFiles = Predicted.ToList();
        if (Scenario is not null) return AgainstScenario(files, predictedFiles);
        if (predictedFiles.Count == 0) throw new UserInputException("validate: give --predicted FILE (a simulated requests.parquet) or --scenario S.yaml");
        if (predictedFiles.Count != 1 && predictedFiles.Count != files.Count)
            throw new UserInputException($"--predicted: {predictedFiles.Count} files for {files.Count} --measured files: give one, or one per measured file");
        var measured = files.Select(Completed).ToList();
        var predicted = predictedFiles.Select(Completed).ToList();
        if (predicted.Count == 1)
        {
            if (Validator.FirstIdMismatch(measured) is { } bad)
                throw new UserInputException($"--measured: {files[bad.Run]} {(bad.Missing ? "lacks" : "has")} request_id {bad.RequestId}, which " +
                    $"{files[0]} {(bad.Missing ? "has" : "lacks")}: repeats must be runs of the same scenario and seed (or give one --predicted per --measured)");
        }
        else
        {
            for (int i = 0; i < files.Count; i++)
                if (Validator.FirstIdMismatch([measured[i], predicted[i]]) is { } bad)
                    throw new UserInputException($"--predicted: {predictedFiles[i]} {(bad.Missing ? "lacks" : "has")} request_id {bad.RequestId}, which " +
                        $"{files[i]} {(bad.Missing ? "has" : "lacks")}: the i-th --predicted must simulate the scenario and seed of the i-th --measured");
        }
        for (int i = 0; i < files.Count; i++)
        {
            int p = predicted.Count == 1 ? 0 : i;
            if (OverlapWarning(files[i], measured[i], predictedFiles[p], predicted[p]) is { } warning) Console.Error.WriteLine($"warning: {warning}");
        }
        var measuredSummaries = files.Select(SummaryBeside).ToList();
        var predictedSummaries = predictedFiles.Select(SummaryBeside).ToList();
        var report = Validator.Compare(measured, predicted, Tolerance,
            measuredSummaries.All(x => x is not null) ? measuredSummaries.Select(x => x!).ToList() : null,
            predictedSummaries.All(x => x is not null) ? predictedSummaries.Select(x => x!).ToList() : null);
        return Print(report, null);
    }

    /// <summary>
    /// Simulates the measured run's own requests (its trace, arrival times kept) under each run of the scenario
    /// file and compares each prediction with the measurement.
    /// </summary>
    private int AgainstScenario(List<string> files, List<string> predictedFiles)
    {
        if (predictedFiles.Count > 0) throw new UserInputException("--scenario: give either --predicted or --scenario, not both");
        if (files.Count != 1) throw new UserInputException($"--scenario: give one --measured run folder, got {files.Count}");
        var runDir = MeasuredRunScenario.RunFolder(files[0]);
        var measured = Completed(Path.Combine(runDir, MeasuredRun.RequestsFile));
        var catalog = CatalogLoader.LoadDefault(Catalog);
        var file = MeasuredRunScenario.Load(Scenario!, runDir, Set);
        var runs = ScenarioRunner.Prepare(file, catalog);
        var runEngine = RequestMetadata(Path.Combine(runDir, MeasuredRun.RequestsFile));
        int code = 0;
        foreach (var run in runs)
        {
            string? variant = file.HasVariants ? run.Name : null;
            var result = ScenarioRunner.Simulate(run, variant);
            var warnings = ScenarioRunner.CalibrationWarnings(run, result);
            foreach (var w in warnings) Console.Error.WriteLine($"warning: {variant ?? file.Name}: {w}");
            if (Out is not null)
            {
                var summary = warnings.Count > 0 ? result.Summary with { CalibrationWarnings = [.. warnings] } : result.Summary;
                var command = "rlms validate " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));
                ResultWriter.WriteRunAsync(variant is null ? Out : Path.Combine(Out, variant), result with { Summary = summary },
                    ScenarioRunner.Metadata(run, variant, command)).GetAwaiter().GetResult();
            }
            if (Validator.FirstIdMismatch([measured, result.Requests]) is { } bad)
                throw new UserInputException($"--scenario: the simulation {(bad.Missing ? "lacks" : "has")} request_id {bad.RequestId}, which the measured run {(bad.Missing ? "has" : "lacks")}");
            var report = Validator.Compare(measured, result.Requests, Tolerance);
            string title = $"{runEngine} measured vs {variant ?? file.Name}";
            code = Math.Max(code, Print(report, title));
        }
        return code;
    }

    /// <summary>Which engine measured the run, from the metadata the importer wrote (rlms.run.engine, engine_version).</summary>
    private static string RequestMetadata(string path)
    {
        var meta = Profiling.Traces.TraceReader.Metadata(path);
        return string.Join(' ', new[] { meta.GetValueOrDefault("rlms.run.engine"), meta.GetValueOrDefault("rlms.run.engine_version") }
            .Where(s => !string.IsNullOrEmpty(s))) is { Length: > 0 } e ? e : "the run";
    }

    private int Print(ValidationReport report, string? title)
    {
        if (Json) Console.WriteLine(JsonSerializer.Serialize(report, ResultWriter.Json));
        else if (Quiet) Console.WriteLine($"validate: {report.Verdict}");
        else
        {
            if (title is not null) AnsiConsole.MarkupLine(Markup.Escape(title));
            AnsiConsole.Write(Table(report));
            foreach (var (name, c) in report.Metrics())
                if (c.MeasuredRepeatRange > report.Tolerance)
                    AnsiConsole.MarkupLine($"[yellow]note:[/] {name}: the {c.MeasuredRuns} measured repeats are {c.MeasuredRepeatRange * 100:F1}% apart, " +
                        $"more than the {report.Tolerance * 100:F0}% tolerance: the measurement does not repeat to the tolerance on this machine");
        }
        return report.Verdict == "pass" ? 0 : OutsideTolerance;
    }

    /// <summary>Below this share of the larger run's request ids found in the other, the runs are not of one workload.</summary>
    public const double MinIdOverlap = 0.9;

    /// <summary>
    /// A warning when a measured and a predicted run share few request ids (a run of 20,000 requests against one of
    /// 50): the statistics still compare, but not the same requests, and the per-request MAPE covers only the shared ones.
    /// </summary>
    public static string? OverlapWarning(string measuredFile, IReadOnlyList<RequestRecord> measured, string predictedFile, IReadOnlyList<RequestRecord> predicted)
    {
        var ids = measured.Select(r => r.RequestId).ToHashSet();
        int shared = predicted.Select(r => r.RequestId).Distinct().Count(ids.Contains);
        int larger = Math.Max(ids.Count, predicted.Select(r => r.RequestId).Distinct().Count());
        if (larger == 0 || shared >= MinIdOverlap * larger) return null;
        return string.Create(CultureInfo.InvariantCulture,
            $"{measuredFile} has {measured.Count:N0} requests and {predictedFile} {predicted.Count:N0}; only {shared:N0} request ids are in both " +
            $"({100.0 * shared / larger:F1}% of the larger run): they are probably not runs of the same scenario and seed");
    }

    /// <summary>A run's requests; one clear line when it has no completed request.</summary>
    private static IReadOnlyList<RequestRecord> Completed(string file)
    {
        var run = ResultWriter.ReadRequestsAsync(file).GetAwaiter().GetResult();
        if (!run.Any(r => r.Status == RequestStatus.Completed)) throw new UserInputException($"{file}: no completed requests");
        return run;
    }

    /// <summary>summary.json in the same folder, for ITL (which has no per-request column); null when absent.</summary>
    private static RunSummary? SummaryBeside(string requestsPath)
    {
        var path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(requestsPath)) ?? ".", "summary.json");
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<RunSummary>(RLMServing.IO.Files.InputFile.ReadAllText(path)); }
        catch (JsonException e) { throw new UserInputException($"{path}: not a summary.json: {e.Message}"); }
    }

    private static Table Table(ValidationReport report)
    {
        static string Pct(double e) => double.IsFinite(e) ? (e * 100).ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) + "%" : "n/a";
        static string Ms(double v) => v.ToString(v >= 1000 ? "F0" : v >= 10 ? "F1" : "F3", CultureInfo.InvariantCulture);
        int runs = report.Metrics().Select(x => x.Comparison.MeasuredRuns).DefaultIfEmpty(1).Max();
        bool repeats = report.Metrics().Any(x => x.Comparison.MeasuredRepeatRange is not null);
        var t = new Table().Title($"validate (tolerance {Pct(report.Tolerance).TrimStart('+')}): [bold]{report.Verdict.ToUpperInvariant()}[/]")
            .Caption("means in ms; errors = (predicted - measured) / measured of the mean and percentiles; MAPE per matched request" +
                (runs > 1 ? $"; {runs} measured runs pooled{(repeats ? " (repeats of one run)" : " (each against its own prediction)")}, per run = each run's mean error" : "") +
                (repeats ? ", range = (largest - smallest repeat mean) / pooled mean" : ""))
            .AddColumns("metric", "measured", "predicted", "mean", "p50", "p90", "p99", "MAPE");
        if (runs > 1) t.AddColumn("per run");
        if (repeats) t.AddColumn("range");
        t.AddColumn("verdict");
        foreach (var (name, c) in report.Metrics())
        {
            var cells = new List<string> { name, Ms(c.MeasuredMeanMs), Ms(c.PredictedMeanMs), Pct(c.MeanError), Pct(c.P50Error), Pct(c.P90Error),
                Pct(c.P99Error), c.Mape is { } m ? Pct(m).TrimStart('+') : "-" };
            if (runs > 1) cells.Add(c.RunMeanErrors.Count > 0 ? $"{Pct(c.RunMeanErrors.Min())}..{Pct(c.RunMeanErrors.Max())}" : "-");
            if (repeats) cells.Add(c.MeasuredRepeatRange is { } r ? Pct(r).TrimStart('+') : "-");
            cells.Add(c.Verdict);
            t.AddRow(cells.ToArray());
        }
        return t;
    }
}
