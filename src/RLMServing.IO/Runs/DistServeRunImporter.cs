using System.Text.Json;
using System.Text.RegularExpressions;

namespace RLMServing.IO.Runs;

/// <summary>
/// A run measured by DistServe's benchmark (LLMServe/DistServe, simdistserve/benchmarks/alignment/data-ground-truth):
/// RUN is the measured .exp file, whose first line is a Python-literal list of per-request dicts (prompt_len,
/// output_len, issue_time, first_token_time, complete_time in seconds, in completion order) and whose next lines a
/// summary. Its input, <c>&lt;folder&gt;-workload/&lt;same name&gt;</c> beside it (JSON [{prompt_len, output_len,
/// start_time}]), is read when present and must hold the same requests in arrival order.
/// </summary>
public sealed partial class DistServeRunImporter : MeasuredRunImporter
{
    public override string Format => "distserve-run";
    public override string Description => "DistServe measured run (.exp, with its -workload/.exp input) -> trace.parquet + requests.parquet";

    // Python's single-quoted strings (the keys, and a value that is not a number) and None, as JSON.
    [GeneratedRegex(@"'([^'""\\]*)'")]
    private static partial Regex PythonString();

    [GeneratedRegex(@"\bNone\b")]
    private static partial Regex PythonNone();

    public override (MeasuredRun Run, string Source) Read(string inputPath)
    {
        if (!File.Exists(inputPath)) throw new UserInputException($"{inputPath}: expected DistServe's measured .exp file");
        string first;
        using (var reader = new StreamReader(inputPath)) first = reader.ReadLine() ?? "";
        // The list holds numbers under quoted keys; with its strings double-quoted and None as null it is JSON, so a
        // value that is not a number is named by its field rather than failing the whole line.
        var json = PythonNone().Replace(PythonString().Replace(first, "\"$1\""), "null");
        using var doc = ParseJson(inputPath, json, 1);
        if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new UserInputException($"{inputPath}: line 1: expected a list of per-request dicts");
        var rows = new List<(int Index, MeasuredRequest Request)>();
        int i = 0;
        foreach (var o in doc.RootElement.EnumerateArray())
        {
            string where = $"{inputPath}: line 1: request [{i}]";
            var r = new MeasuredRequest(Number(o, "issue_time", where), Tokens(o, "prompt_len", where), Tokens(o, "output_len", where),
                Number(o, "first_token_time", where), Number(o, "complete_time", where));
            rows.Add((i++, Checked(where, r, null, "issue_time", "output_len")));
        }
        if (rows.Count == 0) throw new UserInputException($"{inputPath}: line 1: no requests");
        // The list is in completion order; the trace is the arrival order (ties keep the file's order).
        var requests = rows.OrderBy(r => r.Request.ArrivalS).ThenBy(r => r.Index).Select(r => r.Request).ToList();

        var metadata = new Dictionary<string, string>
        {
            ["rlms.run.engine"] = "vllm",
            ["rlms.run.engine_version"] = "DistServe ground truth (vLLM before chunked prefill, 2023-24)",
        };
        var workload = WorkloadBeside(inputPath);
        if (workload is not null)
        {
            CheckWorkload(workload, requests);
            metadata["rlms.run.workload"] = workload;
        }
        return (new MeasuredRun(requests, metadata), inputPath);
    }

    /// <summary>The input DistServe sent: the same file name in the folder named like this one plus "-workload".</summary>
    private static string? WorkloadBeside(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var candidate = Path.Combine(Path.GetDirectoryName(dir) ?? dir, Path.GetFileName(dir) + "-workload", Path.GetFileName(full));
        return File.Exists(candidate) ? candidate : null;
    }

    private static void CheckWorkload(string path, IReadOnlyList<MeasuredRequest> measured)
    {
        using var doc = ParseJson(path, File.ReadAllText(path));
        if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new UserInputException($"{path}: expected a list of {{prompt_len, output_len, start_time}}");
        var items = doc.RootElement.EnumerateArray().ToList();
        if (items.Count != measured.Count)
            throw new UserInputException($"{path}: {items.Count} requests, but the measured run has {measured.Count}");
        double? previous = null;
        for (int i = 0; i < items.Count; i++)
        {
            string where = $"{path}: request [{i}]";
            double start = Number(items[i], "start_time", where);
            if (previous is double p && start < p)
                throw new UserInputException($"{where}: start_time: {Invariant(start)} is earlier than the previous request's ({Invariant(p)}); requests must be in arrival order");
            previous = start;
            int prompt = Tokens(items[i], "prompt_len", where), output = Tokens(items[i], "output_len", where);
            if (prompt != measured[i].PromptTokens || output != measured[i].OutputTokens)
                throw new UserInputException($"{where}: prompt_len/output_len {prompt}/{output} differ from the measured request at that arrival ({measured[i].PromptTokens}/{measured[i].OutputTokens})");
        }
    }
}
