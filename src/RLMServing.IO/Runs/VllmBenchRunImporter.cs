using System.Text.Json;

namespace RLMServing.IO.Runs;

/// <summary>
/// The result file of <c>vllm bench serve --save-result --save-detailed</c> (vllm/benchmarks/serve.py): one JSON
/// object whose per-request lists, in the order the requests were sent, are input_lens, output_lens, ttfts (s),
/// itls (lists of s), start_times (s, the client's perf_counter when the request was sent) and errors. A request's
/// first token comes ttft after its start and its last one after the inter-token latencies that follow, as the
/// benchmark computes E2EL. Failed requests (a non-empty error) are bad input: the run did not measure them.
/// </summary>
public sealed class VllmBenchRunImporter : MeasuredRunImporter
{
    public override string Format => "vllm-bench";
    public override string Description => "vllm bench serve --save-result --save-detailed JSON -> trace.parquet + requests.parquet";

    public override (MeasuredRun Run, string Source) Read(string inputPath)
    {
        if (!File.Exists(inputPath)) throw new UserInputException($"{inputPath}: expected the JSON file vllm bench serve --save-result wrote");
        using var doc = ParseJson(inputPath, File.ReadAllText(inputPath));
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new UserInputException($"{inputPath}: expected a JSON object");
        JsonElement List(string field)
        {
            if (!root.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
                throw new UserInputException($"{inputPath}: {field}: missing (run vllm bench serve with --save-result --save-detailed)");
            if (v.ValueKind != JsonValueKind.Array) throw new UserInputException($"{inputPath}: {field}: expected a list");
            return v;
        }
        var inputs = List("input_lens").EnumerateArray().ToList();
        var outputs = List("output_lens").EnumerateArray().ToList();
        var ttfts = List("ttfts").EnumerateArray().ToList();
        var itls = List("itls").EnumerateArray().ToList();
        var starts = List("start_times").EnumerateArray().ToList();
        var errors = root.TryGetProperty("errors", out var e) && e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().ToList() : [];
        int n = inputs.Count;
        foreach (var (name, list) in new[] { ("output_lens", outputs), ("ttfts", ttfts), ("itls", itls), ("start_times", starts) })
            if (list.Count != n) throw new UserInputException($"{inputPath}: {name}: {list.Count} entries, but input_lens has {n}");
        if (n == 0) throw new UserInputException($"{inputPath}: input_lens: no requests");

        double Item(List<JsonElement> list, string field, int i)
        {
            var v = list[i];
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d) || !double.IsFinite(d))
                throw new UserInputException($"{inputPath}: {field}[{i}]: not a number: {Shorten(v.GetRawText())}");
            return d;
        }
        var requests = new List<MeasuredRequest>(n);
        double? previous = null;
        for (int i = 0; i < n; i++)
        {
            string where = $"{inputPath}: request [{i}]";
            if (i < errors.Count && errors[i].ValueKind == JsonValueKind.String && errors[i].GetString() is { Length: > 0 } error)
                throw new UserInputException($"{inputPath}: errors[{i}]: the request failed ({Shorten(error)}); a measured run must hold only completed requests");
            double prompt = Item(inputs, "input_lens", i), output = Item(outputs, "output_lens", i);
            if (prompt != Math.Floor(prompt) || output != Math.Floor(output)) throw new UserInputException($"{where}: input_lens/output_lens: not token counts");
            double start = Item(starts, "start_times", i), ttft = Item(ttfts, "ttfts", i);
            if (itls[i].ValueKind != JsonValueKind.Array) throw new UserInputException($"{inputPath}: itls[{i}]: expected a list of inter-token latencies");
            double decode = 0;
            int k = 0;
            foreach (var gap in itls[i].EnumerateArray())
            {
                if (gap.ValueKind != JsonValueKind.Number || !gap.TryGetDouble(out var g) || !double.IsFinite(g))
                    throw new UserInputException($"{inputPath}: itls[{i}][{k}]: not a number: {Shorten(gap.GetRawText())}");
                decode += g;
                k++;
            }
            var r = Checked(where, new MeasuredRequest(start, (int)prompt, (int)output, start + ttft, start + ttft + decode), previous, "start_times", "output_lens");
            previous = start;
            requests.Add(r);
        }
        var metadata = new Dictionary<string, string> { ["rlms.run.engine"] = "vllm" };
        foreach (var key in new[] { "backend", "model_id", "date", "request_rate", "burstiness", "max_concurrency", "num_prompts" })
            if (root.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.String or JsonValueKind.Number)
                metadata["rlms.run." + key] = v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText();
        return (new MeasuredRun(requests, metadata), inputPath);
    }
}
