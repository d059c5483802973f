using System.Globalization;
using RLMServing.IO.Traces;
using RLMServing.Profiling.Traces;

namespace RLMServing.Profiling.Importers;

/// <summary>
/// LLMServingSim's original layer profile (v0/&lt;hw&gt;/&lt;org&gt;/&lt;model&gt;/tpN/layers.csv, PyTorch profiler on vLLM V0):
/// <c>layer_name,input,kv_cache,tp_size,latency(ns)</c>, one layer's operators against the tokens they process.
/// <c>attn</c> rows are prefills of <c>input</c> tokens over <c>kv_cache</c> cached ones (the public files hold
/// only kv_cache 0), <c>lm_head</c> is per sampled sequence, Mixtral's <c>expert.w1/w2/w3</c> are one expert's
/// matrices at the tokens it receives. The device is the hardware folder's name; the model is the folder's org/name.
/// </summary>
internal sealed class LlmServingSimV0ProfileImporter : GpuProfileImporterBase
{
    public override string Format => "llmservingsim-v0-profile";
    public override string Description => "LLMServingSim v0 layer profile (<hw>/<org>/<model>/tpN/layers.csv, ns) -> operator rows (µs)";

    public override ImportResult Import(string inputPath, string outputPath, ImportOptions options)
    {
        Require(inputPath);
        if (!Directory.Exists(inputPath)) throw new UserInputException($"{inputPath}: expected the model folder holding tpN/layers.csv");
        var full = Path.GetFullPath(inputPath).TrimEnd(Path.DirectorySeparatorChar);
        string name = Path.GetFileName(full), org = Path.GetFileName(Path.GetDirectoryName(full)!),
            device = Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(full))!);
        var model = $"{org}/{name}";
        var tpDirs = Directory.EnumerateDirectories(inputPath, "tp*").Order(StringComparer.Ordinal).ToList();
        if (tpDirs.Count == 0) throw new UserInputException($"{inputPath}: no tpN/ folders");
        var lines = new List<Func<IEnumerable<OperatorRow>>>();
        var files = new List<string>();
        foreach (var dir in tpDirs)
        {
            var folder = Path.GetFileName(dir);
            if (!int.TryParse(folder[2..], NumberStyles.Integer, CultureInfo.InvariantCulture, out int tp))
                throw new UserInputException($"{dir}: folder name should be tp<N>");
            var path = Path.Combine(dir, "layers.csv");
            if (!File.Exists(path)) throw new UserInputException($"{path}: not found");
            files.Add($"{folder}/layers.csv");
            var t = new CsvTable(path);
            foreach (var (line, cells) in t.Rows())
                lines.Add(() =>
                {
                    var src = Str(t, cells, "layer_name");
                    long input = (long)Num(t, cells, "input", line), kv = (long)Num(t, cells, "kv_cache", line);
                    var r = new OperatorRow
                    {
                        Source = "llmservingsim-v0", Device = device, Model = model, Dtype = "bf16", Tp = tp, SourceOp = src,
                        Op = src switch { "attn" => "attention", "rope" => "rotary", "input_layernorm" or "post_layernorm" => "rmsnorm", _ => src },
                        Tokens = input, TimeUsMedian = Num(t, cells, "latency(ns)", line) / 1000.0,
                        Extra = "stat=reported latency(ns) (PyTorch profiler, vLLM V0)",
                    };
                    if (src == "attn")
                    {
                        r.SourceOp = "attention";
                        r.Phase = "prefill";
                        r.Batch = 1;
                        r.PrefillTokens = input;
                        r.PrefillContext = kv;
                        r.DecodeSeqs = 0;
                        r.DecodeContextSum = 0;
                        r.DecodeContextMax = 0;
                        r.Skew = "uniform";
                    }
                    else if (src == "lm_head")
                    {
                        r.Phase = "decode";
                        r.Batch = (int)input;
                    }
                    return [r];
                });
        }
        var skipped = new List<long>();
        var rows = Collect(lines, options, skipped);
        WriteAtomically(outputPath, rows, Metadata(CommandFor(inputPath, outputPath), "operator", "llmservingsim-v0", LlmServingSimProfileImporter.Commit,
            "MIT (c) 2024 CASYS Lab at KAIST; https://github.com/casys-kaist/LLMServingSim", files, "ns -> us (/1000)", device, "bf16", model));
        return new ImportResult(rows.Count, skipped.Count, skipped, "operator");
    }
}
