using System.Text.Json;
using RLMServing.Profiling.Traces;

namespace RLMServing.Profiling;

/// <summary>
/// Turns ONNX Runtime's profiler JSON (Chrome trace events) into per-node rows. Node events (cat "Node", name
/// "..._kernel_time") are assigned to the session run (cat "Session", name "model_run") that contains them; runs are
/// grouped into configurations, <c>runsPerConfig</c> consecutive runs each, in the order they happened.
/// </summary>
public static class KernelTrace
{
    public static List<KernelRow> Parse(string jsonPath, string device, string model, string graph, IReadOnlyList<string> configs,
        int runsPerConfig)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(jsonPath));
        var runs = new List<(double Ts, double Dur)>();
        var nodes = new List<(double Ts, double Dur, string Node, string Op, string Provider)>();
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            var cat = e.TryGetProperty("cat", out var c) ? c.GetString() : null;
            var name = e.TryGetProperty("name", out var n) ? n.GetString() ?? "" : "";
            double ts = e.TryGetProperty("ts", out var t) ? t.GetDouble() : 0;
            double dur = e.TryGetProperty("dur", out var d) ? d.GetDouble() : 0;
            if (cat == "Session" && name == "model_run") runs.Add((ts, dur));
            else if (cat == "Node" && name.EndsWith("_kernel_time", StringComparison.Ordinal))
            {
                string op = "", provider = "";
                if (e.TryGetProperty("args", out var args))
                {
                    if (args.TryGetProperty("op_name", out var o)) op = o.GetString() ?? "";
                    if (args.TryGetProperty("provider", out var p)) provider = p.GetString() ?? "";
                }
                nodes.Add((ts, dur, name[..^"_kernel_time".Length], op, provider));
            }
        }
        runs.Sort();
        var rows = new List<KernelRow>();
        foreach (var node in nodes)
        {
            int run = runs.FindLastIndex(r => r.Ts <= node.Ts);
            if (run < 0) continue;
            int config = run / Math.Max(1, runsPerConfig);
            rows.Add(new KernelRow
            {
                Device = device,
                Model = model,
                Graph = graph,
                Config = config < configs.Count ? configs[config] : "",
                Run = run,
                Node = node.Node,
                OpType = node.Op,
                Provider = node.Provider,
                DurUs = node.Dur,
                TsUs = node.Ts,
            });
        }
        // One row per session run (OpType "model_run"): ONNX Runtime's own span of the whole run, so the harness's
        // overhead over the runtime can be read off (bench: harness-overhead).
        for (int run = 0; run < runs.Count; run++)
        {
            int config = run / Math.Max(1, runsPerConfig);
            rows.Add(new KernelRow
            {
                Device = device, Model = model, Graph = graph, Config = config < configs.Count ? configs[config] : "", Run = run,
                Node = "model_run", OpType = "model_run", Provider = "", DurUs = runs[run].Dur, TsUs = runs[run].Ts,
            });
        }
        return rows;
    }
}
