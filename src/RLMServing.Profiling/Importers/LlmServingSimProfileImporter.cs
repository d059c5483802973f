using System.Globalization;
using RLMServing.IO.Traces;
using RLMServing.Profiling.Traces;

namespace RLMServing.Profiling.Importers;

/// <summary>
/// An LLMServingSim profile bundle (profiler/perf/&lt;hw&gt;/&lt;model&gt;/&lt;variant&gt;/ with meta.yaml and tpN/):
/// dense.csv (per-layer token-parallel ops), per_sequence.csv (lm_head, sampler), attention.csv (mixed prefill+decode
/// batches) and skew.csv (decode attention with unequal KV lengths). Times are already µs per single layer.
/// Mixture-of-experts bundles add moe.csv (the sparse block against tokens and activated experts, in <c>batch</c>).
/// When meta.yaml's <c>skew_fit</c> is enabled, its fit of skew.csv is imported too, as <c>skew_fit</c> rows (the
/// simulator's correction for decode batches of unequal KV lengths, <see cref="SkewFitRows"/>): one row per bucket of
/// tpN/skew_fit.csv and one <c>default</c> row with the TP's pooled alpha and the bucket axes.
/// </summary>
internal sealed class LlmServingSimProfileImporter : GpuProfileImporterBase
{
    public const string Commit = "5daddb21a545658d5150b535712d0494584b5278";

    public override string Format => "llmservingsim-profile";
    public override string Description => "LLMServingSim bundle (meta.yaml + tpN/{dense,per_sequence,attention,skew[,moe]}.csv) -> operator rows (µs)";

    public static readonly IReadOnlyDictionary<string, string> OpNames = new Dictionary<string, string>
    {
        ["embedding"] = "embedding",
        ["layernorm"] = "rmsnorm",
        ["qkv_proj"] = "qkv_proj",
        ["rotary_emb"] = "rotary",
        ["o_proj"] = "o_proj",
        ["gate_up_proj"] = "gate_up_proj",
        ["act_fn"] = "act",
        ["down_proj"] = "down_proj",
        ["final_layernorm"] = "final_norm",
        ["lm_head"] = "lm_head",
        ["sampler"] = "sampler",
    };

    public override ImportResult Import(string inputPath, string outputPath, ImportOptions options)
    {
        Require(inputPath);
        if (!Directory.Exists(inputPath)) throw new UserInputException($"{inputPath}: expected the bundle folder holding meta.yaml and tpN/");
        var metaPath = Path.Combine(inputPath, "meta.yaml");
        if (!File.Exists(metaPath)) throw new UserInputException($"{metaPath}: not found (an LLMServingSim bundle has meta.yaml)");
        var meta = TopLevelYaml(metaPath);
        string gpu = meta.GetValueOrDefault("gpu", ""), model = meta.GetValueOrDefault("model", ""), dtype = meta.GetValueOrDefault("variant", "");
        var tpDirs = Directory.EnumerateDirectories(inputPath, "tp*").Order(StringComparer.Ordinal).ToList();
        if (tpDirs.Count == 0) throw new UserInputException($"{inputPath}: no tpN/ folders");
        var lines = new List<Func<IEnumerable<OperatorRow>>>();
        var files = new List<string> { "meta.yaml" };
        foreach (var dir in tpDirs)
        {
            var name = Path.GetFileName(dir);
            if (!int.TryParse(name[2..], NumberStyles.Integer, CultureInfo.InvariantCulture, out int tp))
                throw new UserInputException($"{dir}: folder name should be tp<N>");
            OperatorRow Base(string op, string sourceOp) => new()
            {
                Source = "llmservingsim", Device = gpu, Model = model, Dtype = dtype, Op = op, SourceOp = sourceOp, Tp = tp,
                Extra = "stat=reported time_us (vLLM eager, 3 iterations)",
            };
            foreach (var (file, reader) in new (string, Func<CsvTable, IEnumerable<Func<IEnumerable<OperatorRow>>>>)[]
            {
                ("dense.csv", t => Dense(t, Base)),
                ("per_sequence.csv", t => PerSequence(t, Base)),
                ("attention.csv", t => Attention(t, Base)),
                ("skew.csv", t => Skew(t, Base)),
            })
            {
                var path = Path.Combine(dir, file);
                if (!File.Exists(path)) throw new UserInputException($"{path}: not found");
                files.Add($"{name}/{file}");
                lines.AddRange(reader(new CsvTable(path)));
            }
            if (SkewFitRows(meta: metaPath, dir, tp, Base, files) is { } fit) lines.Add(fit);
            // Mixture-of-experts bundles add the sparse block, profiled at TP1 only (the simulator's _lookup_moe reads tp1).
            var moePath = Path.Combine(dir, "moe.csv");
            if (File.Exists(moePath))
            {
                files.Add($"{name}/moe.csv");
                lines.AddRange(Moe(new CsvTable(moePath), Base));
            }
        }
        var skipped = new List<long>();
        var rows = Collect(lines, options, skipped);
        var metadata = Metadata(CommandFor(inputPath, outputPath), "operator", "llmservingsim", Commit,
            "MIT (c) 2024 CASYS Lab at KAIST; https://github.com/casys-kaist/LLMServingSim", files, "none (source is µs per layer)",
            gpu, dtype, model);
        // The stack whose kernels were timed (meta.yaml: vllm_version, enforce_eager), recorded by calibrations.
        if (meta.GetValueOrDefault("vllm_version") is { Length: > 0 } vllm) metadata["rlms.engine_version"] = $"vLLM {vllm} (eager kernels)";
        WriteAtomically(outputPath, rows, metadata);
        return new ImportResult(rows.Count, skipped.Count, skipped, "operator");
    }

    /// <summary>
    /// The skew fit of one TP degree as LLMServingSim's simulator resolves it (trace_generator.py at 4a23e9f,
    /// <c>_hydrate_skew_fit_tables</c>, <c>_skew_alpha</c>): nothing when <c>skew_fit.enabled</c> is false (it applies no
    /// correction then); otherwise a <c>default</c> row (Skew = "default") whose Extra holds <c>alpha</c> (the TP's
    /// <c>alpha_default</c>, else the block's, else 0) and the bucket axes (<c>n_bins</c>, <c>n_labels</c>, ...,
    /// comma-separated), and one row per line of the TP's <c>bucket_table</c> (Skew = the bucket key, PrefillTokens =
    /// its pc, Extra <c>alpha</c> and <c>n_samples</c>). TimeUsMedian is 0: these rows are fitted factors, not times.
    /// </summary>
    private static Func<IEnumerable<OperatorRow>>? SkewFitRows(string meta, string dir, int tp, Func<string, string, OperatorRow> make, List<string> files)
    {
        var root = ReadYaml(meta);
        if (Child(root, "skew_fit") is not YamlDotNet.RepresentationModel.YamlMappingNode fit) return null;
        if (!string.Equals(Scalar(fit, "enabled"), "true", StringComparison.OrdinalIgnoreCase)) return null;
        var entry = Child(fit, "per_tp") is YamlDotNet.RepresentationModel.YamlMappingNode perTp ? Child(perTp, tp.ToString(CultureInfo.InvariantCulture)) as YamlDotNet.RepresentationModel.YamlMappingNode : null;
        var axes = (entry is null ? null : Child(entry, "bucket_axes")) ?? Child(fit, "bucket_axes");
        if (axes is not YamlDotNet.RepresentationModel.YamlMappingNode axesMap)
            throw new UserInputException($"{meta}: skew_fit.bucket_axes missing (needed to resolve the skew fit's buckets)");
        string alpha = (entry is null ? null : Scalar(entry, "alpha_default")) ?? Scalar(fit, "alpha_default") ?? "0";
        var extra = new List<string> { "alpha=" + alpha };
        foreach (var axis in new[] { "n_bins", "n_labels", "skew_rate_bins", "skew_rate_labels", "kv_big_bins", "kv_big_labels", "kp_bins", "kp_labels" })
        {
            if (Child(axesMap, axis) is not YamlDotNet.RepresentationModel.YamlSequenceNode seq)
                throw new UserInputException($"{meta}: skew_fit.bucket_axes.{axis} missing or not a list");
            extra.Add(axis + "=" + string.Join(",", seq.Children.Select(c => ((YamlDotNet.RepresentationModel.YamlScalarNode)c).Value)));
        }
        string? table = entry is null ? null : Scalar(entry, "bucket_table");
        string? tablePath = table is null ? null : Path.Combine(Path.GetDirectoryName(dir)!, table);
        // A bucket table named but missing: the simulator warns and uses alpha_default alone.
        if (tablePath is not null && File.Exists(tablePath)) files.Add(table!);
        return () =>
        {
            var rows = new List<OperatorRow>();
            var d = make("attention", "skew_fit");
            d.Skew = "default";
            d.Extra = string.Join(";", extra);
            rows.Add(d);
            if (tablePath is null || !File.Exists(tablePath)) return rows;
            var t = new CsvTable(tablePath);
            foreach (var (line, cells) in t.Rows())
            {
                var r = make("attention", "skew_fit");
                long pc = (long)Num(t, cells, "pc", line);
                r.PrefillTokens = pc;
                r.Skew = string.Create(CultureInfo.InvariantCulture,
                    $"pc={pc}|{Str(t, cells, "n_label")}|{Str(t, cells, "skew_rate_label")}|{Str(t, cells, "kv_big_label")}|{Str(t, cells, "kp_label")}");
                r.Extra = string.Create(CultureInfo.InvariantCulture, $"alpha={Num(t, cells, "alpha", line)};n_samples={Str(t, cells, "n_samples")}");
                rows.Add(r);
            }
            return rows;
        };
    }

    private static YamlDotNet.RepresentationModel.YamlMappingNode ReadYaml(string path)
    {
        var stream = new YamlDotNet.RepresentationModel.YamlStream();
        try
        {
            using var reader = new StreamReader(path);
            stream.Load(reader);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new UserInputException($"{path}: line {e.Start.Line}: {e.Message}");
        }
        return stream.Documents.Count > 0 && stream.Documents[0].RootNode is YamlDotNet.RepresentationModel.YamlMappingNode m
            ? m : throw new UserInputException($"{path}: not a YAML mapping");
    }

    private static YamlDotNet.RepresentationModel.YamlNode? Child(YamlDotNet.RepresentationModel.YamlMappingNode m, string key) =>
        m.Children.TryGetValue(new YamlDotNet.RepresentationModel.YamlScalarNode(key), out var v) ? v : null;

    private static string? Scalar(YamlDotNet.RepresentationModel.YamlMappingNode m, string key) =>
        Child(m, key) is YamlDotNet.RepresentationModel.YamlScalarNode s ? s.Value : null;

    /// <summary>Unindented "key: value" lines of a YAML file (all the bundle's identity fields are top-level scalars).</summary>
    private static Dictionary<string, string> TopLevelYaml(string path)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length == 0 || char.IsWhiteSpace(line[0]) || line[0] == '#') continue;
            int colon = line.IndexOf(':');
            if (colon <= 0) continue;
            result.TryAdd(line[..colon].Trim(), line[(colon + 1)..].Trim().Trim('\'', '"'));
        }
        return result;
    }

    private static IEnumerable<Func<IEnumerable<OperatorRow>>> Dense(CsvTable t, Func<string, string, OperatorRow> make)
    {
        foreach (var (line, cells) in t.Rows())
            yield return () =>
            {
                var src = Str(t, cells, "layer");
                var r = make(OpNames.GetValueOrDefault(src, src), src);
                r.Tokens = (long)Num(t, cells, "tokens", line);
                r.TimeUsMedian = Num(t, cells, "time_us", line);
                return [r];
            };
    }

    /// <summary>moe.csv: the whole sparse-MoE block of one layer against tokens and distinct activated experts.</summary>
    private static IEnumerable<Func<IEnumerable<OperatorRow>>> Moe(CsvTable t, Func<string, string, OperatorRow> make)
    {
        foreach (var (line, cells) in t.Rows())
            yield return () =>
            {
                var r = make("moe", "moe");
                r.Tokens = (long)Num(t, cells, "tokens", line);
                r.Batch = (int)Num(t, cells, "activated_experts", line);
                r.TimeUsMedian = Num(t, cells, "time_us", line);
                r.Extra = "batch=activated_experts";
                return [r];
            };
    }

    private static IEnumerable<Func<IEnumerable<OperatorRow>>> PerSequence(CsvTable t, Func<string, string, OperatorRow> make)
    {
        foreach (var (line, cells) in t.Rows())
            yield return () =>
            {
                var src = Str(t, cells, "layer");
                var r = make(OpNames.GetValueOrDefault(src, src), src);
                int seqs = (int)Num(t, cells, "sequences", line);
                r.Phase = "decode";
                r.Tokens = seqs;
                r.Batch = seqs;
                r.TimeUsMedian = Num(t, cells, "time_us", line);
                return [r];
            };
    }

    private static IEnumerable<Func<IEnumerable<OperatorRow>>> Attention(CsvTable t, Func<string, string, OperatorRow> make)
    {
        foreach (var (line, cells) in t.Rows())
            yield return () =>
            {
                long chunk = (long)Num(t, cells, "prefill_chunk", line);
                long kvPrefill = (long)Num(t, cells, "kv_prefill", line);
                int nDecode = (int)Num(t, cells, "n_decode", line);
                long kvDecode = (long)Num(t, cells, "kv_decode", line);
                var r = make("attention", "attention");
                r.Phase = chunk > 0 && nDecode > 0 ? "mixed" : chunk > 0 ? "prefill" : "decode";
                r.Tokens = chunk + nDecode;
                r.Batch = (chunk > 0 ? 1 : 0) + nDecode;
                r.PrefillTokens = chunk;
                r.PrefillContext = kvPrefill;
                r.DecodeSeqs = nDecode;
                r.DecodeContextSum = nDecode * kvDecode;
                r.DecodeContextMax = nDecode > 0 ? kvDecode : 0;
                r.Skew = "uniform";
                r.TimeUsMedian = Num(t, cells, "time_us", line);
                return [r];
            };
    }

    private static IEnumerable<Func<IEnumerable<OperatorRow>>> Skew(CsvTable t, Func<string, string, OperatorRow> make)
    {
        foreach (var (line, cells) in t.Rows())
            yield return () =>
            {
                int n = (int)Num(t, cells, "n", line);
                long pc = (long)Num(t, cells, "pc", line);
                var r = make("attention", "skew");
                r.Phase = pc > 0 ? "mixed" : "decode";
                r.Tokens = pc + n;
                r.Batch = (pc > 0 ? 1 : 0) + n;
                r.PrefillTokens = pc;
                r.PrefillContext = (long)Num(t, cells, "kp", line);
                r.DecodeSeqs = n;
                r.DecodeContextSum = (long)Math.Round(n * Num(t, cells, "kv_mean", line));
                r.DecodeContextMax = (long)Num(t, cells, "kv_big", line);
                r.Skew = "skewed:" + Str(t, cells, "regime");
                r.TimeUsMedian = Num(t, cells, "t_skew_us", line);
                r.Extra = string.Create(CultureInfo.InvariantCulture,
                    $"nb={Str(t, cells, "nb")};ratio={Str(t, cells, "ratio")};skew={Str(t, cells, "skew")};kvs={Str(t, cells, "kvs")};t_mean_us={Str(t, cells, "t_mean_us")};t_max_us={Str(t, cells, "t_max_us")};alpha={Str(t, cells, "alpha")}");
                return [r];
            };
    }
}
