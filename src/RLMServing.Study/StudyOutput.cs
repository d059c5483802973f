using System.Text.Json;
using System.Text.Json.Nodes;
using RLMServing.IO.Results;
using RLMServing.Reports;

namespace RLMServing.Study;

/// <summary>
/// Writes a study's results: DIR/findings.json, DIR/report.html and (simulated) DIR/scenarios/*.yaml, all staged
/// and moved into place together, so an interrupted study leaves none of them.
/// </summary>
public static class StudyOutput
{
    public const string FindingsFile = "findings.json";
    public const string ReportFile = "report.html";

    public static JsonObject FindingsJson(StudyFile study, StudyResults results, StudyAnalysis analysis, string command)
    {
        var findings = new JsonArray();
        foreach (var f in analysis.Findings) findings.Add(JsonSerializer.SerializeToNode(f));
        var server = new JsonObject();
        foreach (var (k, v) in results.Server.OrderBy(kv => kv.Key, StringComparer.Ordinal)) server[k] = v;
        var json = new JsonObject
        {
            ["study"] = study.Name,
            ["source"] = results.Source,
            ["command"] = command,
            ["reasoning_model"] = study.Primary.Reasoning,
            ["standard_model"] = study.Primary.Standard,
            ["gpu"] = study.Gpu,
            ["tensor_parallel"] = study.TensorParallel,
            ["requests_per_run"] = study.Requests,
            ["load"] = study.Load.Describe(),
            ["seed"] = study.Seed,
            ["findings"] = findings,
        };
        if (server.Count > 0) json["server"] = server;
        return json;
    }

    public static async Task WriteAsync(string outDir, StudyFile study, StudyResults results, StudyAnalysis analysis, string command,
        IReadOnlyList<ExperimentScenario> scenarios)
    {
        using var staged = new StagedFiles();
        var options = new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        var json = FindingsJson(study, results, analysis, command).ToJsonString(options) + "\n";
        await staged.StageAsync(outDir, FindingsFile, tmp => File.WriteAllTextAsync(tmp, json));
        var html = ReportPage.Render(StudyReport.Build(study, results, analysis));
        await staged.StageAsync(outDir, ReportFile, tmp => File.WriteAllTextAsync(tmp, html));
        foreach (var sc in scenarios)
            await staged.StageAsync(Path.Combine(outDir, "scenarios"), sc.FileName, tmp => File.WriteAllTextAsync(tmp, sc.Yaml));
        staged.Commit();
    }
}
