using System.Globalization;
using System.Text.Json;
using CommandLine;
using RLMServing.IO.Results;
using RLMServing.Metrics;
using RLMServing.Validation;
using Spectre.Console;

namespace RLMServing.Cli.Commands;

[Verb("validate", HelpText = "Compare a predicted run with a measured one (requests.parquet against requests.parquet).")]
public sealed class ValidateCommand : ICommand
{
    /// <summary>Exit code when the comparison ran but a metric is outside the tolerance.</summary>
    public const int OutsideTolerance = 1;

    [Option("measured", Required = true, Min = 1,
        HelpText = "requests.parquet of the measured run (ground truth); several files are pooled: repeats of one scenario against one --predicted (their run-to-run range is reported), or runs paired with as many --predicted files.")]
    public IEnumerable<string> Measured { get; set; } = [];

    [Option("predicted", Required = true, Min = 1,
        HelpText = "requests.parquet of the predicted (simulated) run: one, or one per --measured file (run i against run i, e.g. one seed each).")]
    public IEnumerable<string> Predicted { get; set; } = [];

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
        if (Json) Console.WriteLine(JsonSerializer.Serialize(report, ResultWriter.Json));
        else if (Quiet) Console.WriteLine($"validate: {report.Verdict}");
        else
        {
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
