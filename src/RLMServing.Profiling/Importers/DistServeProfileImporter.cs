using System.Globalization;
using System.Text.Json;
using RLMServing.IO.Traces;
using RLMServing.Profiling.Traces;

namespace RLMServing.Profiling.Importers;

/// <summary>
/// DistServe's fitted latency coefficients (profiler-a100-80g.&lt;engine&gt;.json: per model and TP, prefill
/// a + b·Σlen + c·Σlen², decode a + b·(context tokens) + c·batch, small/large-batch variants) and max_num_tokens.csv
/// (KV capacity per model, TP, PP). Coefficients ms -> µs (×1000); they are fits, not samples.
/// </summary>
internal sealed class DistServeProfileImporter : GpuProfileImporterBase
{
    public const string Commit = "82831f1604cc6b10bebd360f6c437a07790dde9f";

    public override string Format => "distserve-profile";
    public override string Description => "DistServe fitted coefficients (profiler-*.json, max_num_tokens.csv) -> coefficient rows (µs)";

    public override ImportResult Import(string inputPath, string outputPath, ImportOptions options)
    {
        Require(inputPath);
        var files = Directory.Exists(inputPath)
            ? Directory.EnumerateFiles(inputPath).Where(f => f.EndsWith(".json", StringComparison.Ordinal) || Path.GetFileName(f) == "max_num_tokens.csv")
                .Order(StringComparer.Ordinal).ToList()
            : [inputPath];
        var rows = new List<CoefficientRow>();
        var skipped = new List<long>();
        foreach (var file in files)
        {
            if (file.EndsWith(".json", StringComparison.Ordinal)) rows.AddRange(Fits(file));
            else
            {
                var t = new CsvTable(file);
                rows.AddRange(Collect(t.Rows().Select(x => (Func<IEnumerable<CoefficientRow>>)(() =>
                [
                    new CoefficientRow
                    {
                        Source = "distserve", Device = "A100-80GB", Model = Str(t, x.Cells, "model"),
                        Tp = (int)Num(t, x.Cells, "tp", x.Line), Pp = (int)Num(t, x.Cells, "pp", x.Line), Kind = "kv_capacity",
                        Formula = "max_kv_tokens = a", A = Num(t, x.Cells, "max_num_tokens", x.Line),
                    },
                ])), options, skipped));
            }
        }
        if (options.Limit is long l && rows.Count > l) rows.RemoveRange((int)l, rows.Count - (int)l);
        WriteAtomically(outputPath, rows, Metadata(CommandFor(inputPath, outputPath), "coefficients", "distserve", Commit,
            "Apache-2.0 (c) the DistServe authors (LLMServe); https://github.com/LLMServe/DistServe",
            files.Select(Path.GetFileName).OfType<string>(), "coefficients ms->us (x1000)", "A100-80GB", "fp16"));
        return new ImportResult(rows.Count, skipped.Count, skipped, "coefficients");
    }

    private static IEnumerable<CoefficientRow> Fits(string file)
    {
        // profiler-a100-80g.<engine>.json
        var parts = Path.GetFileName(file).Split('.');
        var engine = parts.Length >= 3 ? parts[^2] : "";
        using var doc = JsonDocument.Parse(File.ReadAllText(file));
        var rows = new List<CoefficientRow>();
        foreach (var model in doc.RootElement.EnumerateObject())
        {
            foreach (var tp in model.Value.EnumerateObject())
            {
                double? threshold = tp.Value.TryGetProperty("decoding_large_small_bs_threshold", out var th) ? th.GetDouble() : null;
                foreach (var kind in new[] { "prefill", "decoding_smallbs", "decoding_largebs" })
                {
                    if (!tp.Value.TryGetProperty(kind, out var c)) continue;
                    var v = c.EnumerateArray().Select(x => x.GetDouble() * UsPerMs).ToArray();
                    if (v.Length != 3) throw new UserInputException($"{file}: {model.Name}.{tp.Name}.{kind}: expected 3 coefficients");
                    rows.Add(new CoefficientRow
                    {
                        Source = "distserve", Device = "A100-80GB", Engine = engine, Model = model.Name,
                        Tp = int.Parse(tp.Name, CultureInfo.InvariantCulture), Kind = kind,
                        Formula = kind == "prefill" ? "time_us = a + b*sum_len + c*sum_len^2" : "time_us = a + b*context_tokens + c*batch_size",
                        A = v[0], B = v[1], C = v[2], Threshold = kind == "prefill" ? null : threshold,
                    });
                }
            }
        }
        return rows;
    }
}
