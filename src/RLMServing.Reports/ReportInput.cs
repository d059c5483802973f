using System.Text.Json;
using RLMServing.IO.Results;
using RLMServing.Metrics;

namespace RLMServing.Reports;

/// <summary>One simulated (or measured) run: its summary, its requests and its time series.</summary>
public sealed record RunData(string Name, RunSummary Summary, IReadOnlyList<RequestRecord> Requests, IReadOnlyList<TimeseriesPoint> Timeseries);

/// <summary>What a report is drawn from: the runs of one scenario (one, or its variants side by side) or a sweep.</summary>
public abstract record ReportInput(string Title, string SourcePath);

/// <summary>A simulate output: one run, or the variants of one scenario (comparison.json).</summary>
public sealed record RunsInput(string Title, string SourcePath, IReadOnlyList<RunData> Runs) : ReportInput(Title, SourcePath);

/// <summary>A sweep: results.parquet with its axes (from sweep.json when present).</summary>
public sealed record SweepInput(string Title, string SourcePath, SweepResults Results) : ReportInput(Title, SourcePath);

/// <summary>Finds out what RESULTS is and reads it; anything else is a user error naming the path.</summary>
public static class ReportInputLoader
{
    public const string SummaryFile = "summary.json";
    public const string ComparisonFile = "comparison.json";
    public const string ResultsFile = "results.parquet";
    public const string SweepManifestFile = "sweep.json";

    public static async Task<ReportInput> LoadAsync(string path)
    {
        if (File.Exists(path))
        {
            if (Path.GetFileName(path) == ResultsFile) return await LoadSweepAsync(Path.GetDirectoryName(Path.GetFullPath(path))!, path);
            if (Path.GetFileName(path) == SummaryFile) return await LoadRunsAsync(Path.GetDirectoryName(Path.GetFullPath(path))!);
            if (Path.GetFileName(path) == ComparisonFile) return await LoadRunsAsync(Path.GetDirectoryName(Path.GetFullPath(path))!);
            throw new UserInputException($"{path}: not a results file (expected a folder with {SummaryFile}, {ComparisonFile} or {ResultsFile}, or {ResultsFile} itself)");
        }
        if (!Directory.Exists(path)) throw new UserInputException($"{path}: no such file or folder");
        if (File.Exists(Path.Combine(path, ResultsFile))) return await LoadSweepAsync(path, Path.Combine(path, ResultsFile));
        if (File.Exists(Path.Combine(path, ComparisonFile)) || File.Exists(Path.Combine(path, SummaryFile))) return await LoadRunsAsync(path);
        throw new UserInputException($"{path}: no {SummaryFile}, {ComparisonFile} or {ResultsFile} in this folder");
    }

    /// <summary>A run folder (summary.json, requests.parquet, timeseries.parquet) or a parent of variant folders.</summary>
    public static async Task<RunsInput> LoadRunsAsync(string dir)
    {
        var comparison = Path.Combine(dir, ComparisonFile);
        if (File.Exists(comparison))
        {
            var (scenario, variants) = ReadComparison(comparison);
            var runs = new List<RunData>();
            foreach (var v in variants) runs.Add(await LoadRunAsync(Path.Combine(dir, v), v));
            return new RunsInput(scenario, dir, runs);
        }
        var run = await LoadRunAsync(dir, null);
        return new RunsInput(run.Summary.Scenario.Length > 0 ? run.Summary.Scenario : Path.GetFileName(Path.GetFullPath(dir)), dir, [run]);
    }

    private static async Task<RunData> LoadRunAsync(string dir, string? variant)
    {
        var summaryPath = Path.Combine(dir, SummaryFile);
        if (!File.Exists(summaryPath)) throw new UserInputException($"{summaryPath}: file not found");
        RunSummary summary;
        try { summary = JsonSerializer.Deserialize<RunSummary>(RLMServing.IO.Files.InputFile.ReadAllText(summaryPath)) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new UserInputException($"{summaryPath}: not a summary.json ({e.Message})"); }
        var requests = await ResultWriter.ReadRequestsAsync(Path.Combine(dir, "requests.parquet"));
        var timeseries = await ResultWriter.ReadTimeseriesAsync(Path.Combine(dir, "timeseries.parquet"));
        return new RunData(variant ?? summary.Variant ?? summary.Scenario, summary, requests, timeseries);
    }

    private static (string Scenario, IReadOnlyList<string> Variants) ReadComparison(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(RLMServing.IO.Files.InputFile.ReadAllText(path));
            var scenario = doc.RootElement.TryGetProperty("scenario", out var s) ? s.GetString() ?? "" : "";
            if (!doc.RootElement.TryGetProperty("variants", out var v) || v.ValueKind != JsonValueKind.Array)
                throw new UserInputException($"{path}: key 'variants' missing or not a list");
            var names = v.EnumerateArray().Select(e => e.GetString() ?? "").ToList();
            if (names.Count == 0 || names.Any(n => n.Length == 0 || n.Contains('/') || n.Contains('\\') || n.Contains("..")))
                throw new UserInputException($"{path}: key 'variants' must list the variant folder names");
            return (scenario, names);
        }
        catch (JsonException e) { throw new UserInputException($"{path}: not valid JSON ({e.Message})"); }
    }

    private static async Task<SweepInput> LoadSweepAsync(string dir, string resultsPath)
    {
        var manifest = SweepManifestInfo.Read(Path.Combine(dir, SweepManifestFile));
        var results = await SweepResults.ReadAsync(resultsPath, manifest);
        var title = manifest?.Name is { Length: > 0 } n ? n : Path.GetFileName(Path.GetFullPath(dir));
        return new SweepInput(title, resultsPath, results);
    }
}
