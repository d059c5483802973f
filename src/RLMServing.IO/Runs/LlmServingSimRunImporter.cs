using System.Text.Json;

namespace RLMServing.IO.Runs;

/// <summary>
/// A run recorded by LLMServingSim's bench harness (casys-kaist/LLMServingSim, llmservingsim/bench): a folder with
/// requests.jsonl (one request a line: input_toks, output_toks, arrival_time, queued_ts, scheduled_ts,
/// first_token_ts, last_token_ts — vLLM's RequestStateStats) and meta.json (vllm_version, engine_kwargs). RUN is that
/// folder or one holding it as vllm/. Latencies as LLMServingSim's bench/core/validate.py defines them: arrival is
/// arrival_time when it shares the engine timestamps' clock, else queued_ts (vLLM records arrival_time on the wall
/// clock and the rest on a monotonic one; two clocks are told apart by more than 100,000 s between them).
/// </summary>
public sealed class LlmServingSimRunImporter : MeasuredRunImporter
{
    public override string Format => "llmservingsim-run";
    public override string Description => "LLMServingSim bench run (requests.jsonl + meta.json) -> trace.parquet + requests.parquet";

    private const double OtherClockS = 100_000;

    public override (MeasuredRun Run, string Source) Read(string inputPath)
    {
        string dir = Directory.Exists(inputPath) ? inputPath : Path.GetDirectoryName(Path.GetFullPath(inputPath))!;
        if (!File.Exists(Path.Combine(dir, "requests.jsonl")) && File.Exists(Path.Combine(dir, "vllm", "requests.jsonl"))) dir = Path.Combine(dir, "vllm");
        var requestsPath = Path.Combine(dir, "requests.jsonl");
        var metaPath = Path.Combine(dir, "meta.json");
        if (!File.Exists(requestsPath)) throw new UserInputException($"{requestsPath}: not found (an LLMServingSim bench run holds requests.jsonl and meta.json)");
        if (!File.Exists(metaPath)) throw new UserInputException($"{metaPath}: not found (an LLMServingSim bench run holds requests.jsonl and meta.json)");

        var metadata = new Dictionary<string, string> { ["rlms.run.engine"] = "vllm" };
        using (var meta = ParseJson(metaPath, File.ReadAllText(metaPath)))
        {
            var root = meta.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new UserInputException($"{metaPath}: expected a JSON object");
            if (!root.TryGetProperty("vllm_version", out var version) || version.ValueKind != JsonValueKind.String)
                throw new UserInputException($"{metaPath}: vllm_version: missing");
            metadata["rlms.run.engine_version"] = version.GetString()!;
            if (root.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.String) metadata["rlms.run.model"] = model.GetString()!;
            if (root.TryGetProperty("engine_kwargs", out var kwargs) && kwargs.ValueKind == JsonValueKind.Object)
                foreach (var p in kwargs.EnumerateObject())
                    if (p.Value.ValueKind is JsonValueKind.Number or JsonValueKind.String or JsonValueKind.True or JsonValueKind.False)
                        metadata["rlms.run." + p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
        }

        var requests = new List<MeasuredRequest>();
        int lineNo = 0;
        double? previous = null;
        string? arrivalField = null;
        foreach (var text in File.ReadLines(requestsPath))
        {
            lineNo++;
            if (text.Trim().Length == 0) continue;
            string where = $"{requestsPath}: line {lineNo}";
            using var doc = ParseJson(requestsPath, text, lineNo);
            var o = doc.RootElement;
            int input = Tokens(o, "input_toks", where), output = Tokens(o, "output_toks", where);
            double first = Number(o, "first_token_ts", where), last = Number(o, "last_token_ts", where);
            double? arrivalTime = OptionalNumber(o, "arrival_time", where), queued = OptionalNumber(o, "queued_ts", where);
            if (arrivalTime is null && queued is null) throw new UserInputException($"{where}: queued_ts: missing (and no arrival_time)");
            // One anchor for the whole run, chosen on its first request, so arrivals stay on one clock.
            arrivalField ??= queued is null || arrivalTime is double a && Math.Abs(a - first) < OtherClockS ? "arrival_time" : "queued_ts";
            double arrival = arrivalField == "arrival_time"
                ? arrivalTime ?? throw new UserInputException($"{where}: arrival_time: missing")
                : queued ?? throw new UserInputException($"{where}: queued_ts: missing");
            var r = Checked(where, new MeasuredRequest(arrival, input, output, first, last, OptionalNumber(o, "scheduled_ts", where)),
                previous, arrivalField, "output_toks");
            previous = arrival;
            requests.Add(r);
        }
        if (requests.Count == 0) throw new UserInputException($"{requestsPath}: no requests");
        metadata["rlms.run.arrival_field"] = arrivalField!;
        return (new MeasuredRun(requests, metadata), requestsPath);
    }
}
