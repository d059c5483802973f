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

    [Option("measured", Required = true, HelpText = "requests.parquet of the measured run (ground truth).")]
    public string Measured { get; set; } = "";

    [Option("predicted", Required = true, HelpText = "requests.parquet of the predicted (simulated) run.")]
    public string Predicted { get; set; } = "";

    [Option("tolerance", Default = 0.10, HelpText = "Largest |mean relative error| per metric that passes (0.10 = 10%).")]
    public double Tolerance { get; set; } = 0.10;

    [Option("json", HelpText = "Print the report as JSON instead of a table.")]
    public bool Json { get; set; }

    public int Run()
    {
        if (!(Tolerance > 0) || double.IsInfinity(Tolerance)) throw new UserInputException($"--tolerance: must be a positive number, got {Tolerance.ToString(CultureInfo.InvariantCulture)}");
        var measured = ResultWriter.ReadRequestsAsync(Measured).GetAwaiter().GetResult();
        var predicted = ResultWriter.ReadRequestsAsync(Predicted).GetAwaiter().GetResult();
        if (!measured.Any(r => r.Status == RequestStatus.Completed)) throw new UserInputException($"{Measured}: no completed requests");
        if (!predicted.Any(r => r.Status == RequestStatus.Completed)) throw new UserInputException($"{Predicted}: no completed requests");
        var report = Validator.Compare(measured, predicted, Tolerance, SummaryBeside(Measured), SummaryBeside(Predicted));
        if (Json) Console.WriteLine(JsonSerializer.Serialize(report, ResultWriter.Json));
        else AnsiConsole.Write(Table(report));
        return report.Verdict == "pass" ? 0 : OutsideTolerance;
    }

    /// <summary>summary.json in the same folder, for ITL (which has no per-request column); null when absent.</summary>
    private static RunSummary? SummaryBeside(string requestsPath)
    {
        var path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(requestsPath)) ?? ".", "summary.json");
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<RunSummary>(File.ReadAllText(path)); }
        catch (JsonException e) { throw new UserInputException($"{path}: not a summary.json: {e.Message}"); }
    }

    private static Table Table(ValidationReport report)
    {
        static string Pct(double e) => double.IsFinite(e) ? (e * 100).ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) + "%" : "n/a";
        static string Ms(double v) => v.ToString(v >= 1000 ? "F0" : "F1", CultureInfo.InvariantCulture);
        var t = new Table().Title($"validate (tolerance {Pct(report.Tolerance).TrimStart('+')}): [bold]{report.Verdict.ToUpperInvariant()}[/]")
            .Caption("means in ms; errors = (predicted - measured) / measured of the mean and percentiles; MAPE per matched request")
            .AddColumns("metric", "measured", "predicted", "mean", "p50", "p90", "p99", "MAPE", "verdict");
        foreach (var (name, c) in report.Metrics())
            t.AddRow(name, Ms(c.MeasuredMeanMs), Ms(c.PredictedMeanMs), Pct(c.MeanError), Pct(c.P50Error), Pct(c.P90Error),
                Pct(c.P99Error), c.Mape is { } m ? Pct(m).TrimStart('+') : "-", c.Verdict);
        return t;
    }
}
