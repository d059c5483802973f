using System.Globalization;
using MathNet.Numerics.Interpolation;
using RLMServing.Calibration;
using RLMServing.Catalog;
using RLMServing.Profiling.Traces;

namespace RLMServing.Profiling.Calibration;

/// <summary>Iterations composed from operator profiles, each operator's own fit quality, and the terms the profiles lacked.</summary>
public sealed record ComposedCalibration(
    IReadOnlyList<CalibrationSample> Samples,
    IReadOnlyDictionary<string, OperatorFitQuality> Operators,
    IReadOnlyDictionary<string, string> Derived);

/// <summary>
/// Operator-level calibration: whole iterations are composed from per-layer operator measurements (Vidur mlp.csv,
/// LLMServingSim dense/per_sequence/attention), so the iteration fit and residual grid see times of the whole model:
/// <c>layers × (Σ per-layer token ops(tokens) + attention(shape) + 2 all-reduces(tokens × hidden × bytes))
/// + embedding and final norm(tokens) + lm_head and sampler(sequences)</c>. Token ops between measured token counts
/// are interpolated linearly; attention is used only at measured shapes. What a source does not measure (Vidur's
/// attention and lm_head, collectives on a GPU without a network profile) comes from the roofline at its default
/// efficiencies and is listed in <see cref="ComposedCalibration.Derived"/>.
/// </summary>
public static class OperatorComposer
{
    public const double ComputeEfficiency = 0.6;
    public const double BandwidthEfficiency = 0.85;
    public const double AllReduceLatencyUs = 10;

    /// <summary>Ops that run once per iteration rather than once per layer.</summary>
    private static readonly HashSet<string> OncePerIteration = ["emb", "embedding", "final_layernorm"];
    /// <summary>
    /// LLMServingSim measures vLLM's RMSNorm once as "layernorm"; a Llama layer runs two of them (input and
    /// post-attention norms, same shape). Vidur lists both norms as separate columns, so they count once each.
    /// </summary>
    private static readonly Dictionary<string, int> TimesPerLayer = new() { ["layernorm"] = 2 };
    private static readonly HashSet<string> NotTokenOps = ["attention", "skew", "skew_fit", "lm_head", "sampler", "all_reduce", "send_recv", "moe"];

    /// <summary>LLMServingSim v0 profiles measure each expert's matrices alone (expert.w1, w2, w3), at the tokens one expert receives.</summary>
    private static bool IsExpertOp(string op) => op.StartsWith("expert.", StringComparison.Ordinal);

    public static ComposedCalibration Compose(IReadOnlyList<OperatorRow> compute, IReadOnlyList<OperatorRow> network,
        ModelArchitecture model, GpuSpec gpu, int tp)
    {
        var derived = new Dictionary<string, string>();
        var quality = new Dictionary<string, OperatorFitQuality>();
        int bytes = model.BytesPerParam;
        double bw = gpu.MemoryBandwidthBytesPerS * BandwidthEfficiency / 1e6;   // bytes per µs
        double flops = gpu.PeakFlops(model.Dtype) * ComputeEfficiency / 1e6;   // FLOP per µs

        var tokenOps = compute.Where(r => !NotTokenOps.Contains(r.SourceOp)).GroupBy(r => r.SourceOp)
            .ToDictionary(g => g.Key, g => new MeasuredCurve(g.Select(r => ((double)r.Tokens, r.TimeUsMedian))));
        if (tokenOps.Count == 0) throw new UserInputException("the operator rows hold no token-parallel operators (linear layers, norms)");
        foreach (var (op, curve) in tokenOps) quality[op] = curve.Quality();
        double maxTokens = tokenOps.Values.Min(c => c.MaxX);

        var perSequence = compute.Where(r => r.SourceOp is "lm_head" or "sampler").GroupBy(r => r.SourceOp)
            .ToDictionary(g => g.Key, g => new MeasuredCurve(g.Select(r => ((double)r.Batch, r.TimeUsMedian))));
        foreach (var (op, curve) in perSequence) quality[op] = curve.Quality();
        Func<double, double> lmHead;
        if (perSequence.Count > 0) lmHead = s => perSequence.Values.Sum(c => c.At(s));
        else
        {
            double weights = (double)model.Vocab * model.Hidden * bytes / tp;
            lmHead = s => weights / bw + 2.0 * model.Vocab * model.Hidden / tp * s / flops;
            derived["lm_head"] = "not in the profile: roofline (vocab × hidden weights read once, 2 × vocab × hidden FLOPs per sampled sequence, per GPU)";
        }

        var attentionRows = compute.Where(r => r.SourceOp == "attention").ToList();
        var attention = attentionRows
            .GroupBy(r => (r.PrefillTokens ?? 0, r.PrefillContext ?? 0, r.DecodeSeqs ?? 0, r.DecodeContextMax ?? 0))
            .ToDictionary(g => g.Key, g => g.Average(r => r.TimeUsMedian));
        double kvBytesPerTokenLayer = 2.0 * model.KvHeads * model.HeadDim * bytes / tp;
        double pairFlopsLayer = 4.0 * model.Heads * model.HeadDim / tp;
        if (attention.Count > 0) quality["attention"] = AttentionQuality(attentionRows);
        else derived["attention"] = "not in the profile: roofline (decode reads 2 × kv_heads × head_dim × bytes per KV entry per layer; prefill 4 × heads × head_dim FLOPs per causal pair per layer, per GPU)";

        Func<double, double> allReduce = _ => 0;
        if (tp > 1)
        {
            // Vidur also measured the same worker counts spread over nodes (devices_per_node < workers, a network
            // hop): tensor parallelism runs inside one node, so only the single-node rows apply.
            var ar = network.Where(r => r.SourceOp == "all_reduce" && r.Workers == tp
                && r.Extra.Split(';').Contains(string.Create(CultureInfo.InvariantCulture, $"devices_per_node={tp}"))).ToList();
            if (ar.Count > 0)
            {
                var curve = new MeasuredCurve(ar.Select(r => ((double)r.SizeBytes!.Value, r.TimeUsMedian)));
                quality["all_reduce"] = curve.Quality();
                allReduce = curve.At;
            }
            else
            {
                double link = gpu.InterconnectBytesPerS / 1e6;
                allReduce = size => AllReduceLatencyUs + 2.0 * (tp - 1) / tp * size / link;
                derived["all_reduce"] = $"no collective profile for this GPU and TP{tp}: ring all-reduce over {gpu.Interconnect} ({gpu.InterconnectBandwidthGBps} GB/s per direction) plus {AllReduceLatencyUs} µs";
            }
        }

        // Experts measured one at a time run one after another over the experts a step activates, each on an even
        // share of the routed tokens (LLMServingSim's BALANCED gate: min(tokens × k, experts) experts touched).
        double Experts(double tokens)
        {
            var experts = tokenOps.Where(o => IsExpertOp(o.Key)).ToList();
            if (experts.Count == 0) return 0;
            if (!model.IsMoe) throw new UserInputException($"the profile has expert operators ({experts[0].Key}) but {model.Name} has no experts in the catalog");
            double touched = Math.Max(1, model.ExpertsTouched(tokens));
            double each = tokens * model.ExpertsPerToken / touched;
            return touched * experts.Sum(o => o.Value.At(each));
        }
        if (tokenOps.Keys.Any(IsExpertOp))
            derived["experts"] = "expert matrices measured for one expert: the activated experts (min(tokens × k, experts)) run one after another, tokens spread evenly";
        double Layer(double tokens) => tokenOps.Where(o => !OncePerIteration.Contains(o.Key) && !IsExpertOp(o.Key)).Sum(o => TimesPerLayer.GetValueOrDefault(o.Key, 1) * o.Value.At(tokens)) + Experts(tokens);
        double Once(double tokens) => tokenOps.Where(o => OncePerIteration.Contains(o.Key)).Sum(o => o.Value.At(tokens));
        double Comm(double tokens) => 2 * allReduce(tokens * model.Hidden * bytes);
        double Iteration(double tokens, double sampled, double attn) =>
            model.Layers * (Layer(tokens) + attn + Comm(tokens)) + Once(tokens) + lmHead(sampled);

        var samples = new List<CalibrationSample>();
        // Prefill: batch prompts of L tokens from scratch.
        var measuredPrefills = attention.Keys.Where(k => k.Item1 >= 16 && k.Item2 == 0 && k.Item3 == 0).Select(k => (double)k.Item1).Distinct().Order().ToList();
        // A profile measured at every length (LLMServingSim v0: 1..2048) is thinned to a log grid of measured lengths.
        var prefillLengths = measuredPrefills.Count > 48
            ? LogSpaced(16, measuredPrefills[^1], 24).Select(l => measuredPrefills.MinBy(m => Math.Abs(Math.Log(m / l))))
            : measuredPrefills.Count > 0 ? measuredPrefills : LogSpaced(16, maxTokens, 24);
        foreach (var len in prefillLengths.Distinct().Order())
            foreach (int b in new[] { 1, 2, 4, 8 })
            {
                if (b * len > maxTokens) continue;
                double attn = measuredPrefills.Count > 0 ? b * attention[((long)len, 0, 0, 0)] : b * len * (len + 1) / 2 * pairFlopsLayer / flops;
                samples.Add(CalibrationSample.Prefill(b, (long)len, Iteration(b * len, b, attn)));
            }
        // Decode: batch sequences at KV length c each.
        bool decodeMeasured = attention.Keys.Any(k => k.Item1 == 0 && k.Item3 > 0 && k.Item4 > 0);
        if (attention.Count > 0 && !decodeMeasured)
            derived["decode_attention"] = "the profile measures attention only for prefills from scratch: decode attention from the roofline (2 × kv_heads × head_dim × bytes per KV entry per layer, per GPU)";
        var decodeShapes = decodeMeasured
            ? attention.Keys.Where(k => k.Item1 == 0 && k.Item3 > 0 && k.Item4 > 0).Select(k => ((double)k.Item3, (double)k.Item4))
            : from b in LogSpaced(1, Math.Min(256, maxTokens), 9) from c in LogSpaced(128, model.MaxContext, 6) select (b, c);
        foreach (var (b, c) in decodeShapes.Distinct().Where(s => s.Item1 <= maxTokens).OrderBy(s => s.Item1).ThenBy(s => s.Item2))
        {
            double attn = decodeMeasured ? attention[(0, 0, (int)b, (long)c)] : b * c * kvBytesPerTokenLayer / bw;
            samples.Add(CalibrationSample.Decode((int)b, c, Iteration(b, b, attn)));
        }
        return new ComposedCalibration(samples, quality, derived);
    }

    /// <summary>
    /// LLMServingSim's layer sequence for the model (llmservingsim/profiler/models/{llama,qwen3,qwen3_moe}.yaml at
    /// 4a23e9f): embedding, then per layer layernorm, qkv_proj, [qk_norm,] rotary_emb, attention, o_proj, layernorm and
    /// the MLP (gate_up_proj, act_fn, down_proj) or the MoE block, then final_layernorm, lm_head and sampler. Every
    /// operator the bundle measured is kept as its own table; the cost model composes them per iteration.
    /// </summary>
    public static OperatorTables LlmServingSimTables(IReadOnlyList<OperatorRow> compute, IReadOnlyList<OperatorRow> moe,
        ModelArchitecture model, GpuSpec gpu, int tp, IReadOnlyList<OperatorRow>? skewFit = null)
    {
        static MeasuredSeries Series(IEnumerable<(double X, double Y)> points)
        {
            // The simulator keeps the last row of a repeated key; the bundles have none (trace_generator._build_1d_table).
            var byX = new SortedDictionary<double, double>();
            foreach (var (x, y) in points) byX[x] = y;
            return new MeasuredSeries { X = [.. byX.Keys], Us = [.. byX.Values] };
        }
        var dense = compute.Where(r => !NotTokenOps.Contains(r.SourceOp)).GroupBy(r => r.SourceOp)
            .ToDictionary(g => g.Key, g => Series(g.Select(r => ((double)r.Tokens, r.TimeUsMedian))));
        if (dense.Count == 0) throw new UserInputException("the operator rows hold no token-parallel operators (linear layers, norms)");
        var perSequence = compute.Where(r => r.SourceOp is "lm_head" or "sampler").GroupBy(r => r.SourceOp)
            .ToDictionary(g => g.Key, g => Series(g.Select(r => ((double)r.Batch, r.TimeUsMedian))));
        var att = compute.Where(r => r.SourceOp == "attention").ToList();
        if (att.Count == 0) throw new UserInputException("an LLMServingSim bundle without attention.csv rows cannot be composed per iteration");
        int bytes = model.BytesPerParam;
        if (moe.Count > 0 && !model.IsMoe) throw new UserInputException($"the profile has moe.csv rows but {model.Name} has no experts in the catalog (experts, experts_per_token)");
        if (model.IsMoe && moe.Count == 0) throw new UserInputException($"{model.Name} is a mixture of experts but the profile has no moe.csv rows");
        return new OperatorTables
        {
            Layers = model.Layers,
            PerLayer = dense.Keys.Where(k => !OncePerIteration.Contains(k)).ToDictionary(k => k, k => TimesPerLayer.GetValueOrDefault(k, 1)),
            PerIteration = [.. dense.Keys.Where(OncePerIteration.Contains).Order(StringComparer.Ordinal)],
            TokenOps = dense,
            SequenceOps = perSequence,
            Attention = new AttentionTable
            {
                PrefillChunk = [.. att.Select(r => (int)(r.PrefillTokens ?? 0))],
                KvPrefill = [.. att.Select(r => (int)(r.PrefillContext ?? 0))],
                NDecode = [.. att.Select(r => r.DecodeSeqs ?? 0)],
                KvDecode = [.. att.Select(r => (int)(r.DecodeContextMax ?? 0))],
                Us = [.. att.Select(r => r.TimeUsMedian)],
            },
            Moe = moe.Count == 0 ? null : new MoeTable
            {
                Experts = model.Experts, ExpertsPerToken = model.ExpertsPerToken,
                Tokens = [.. moe.Select(r => (int)r.Tokens)], ActivatedExperts = [.. moe.Select(r => r.Batch)], Us = [.. moe.Select(r => r.TimeUsMedian)],
            },
            AttentionSkew = skewFit is { Count: > 0 } ? SkewFit(skewFit) : null,
            // The profile is of one GPU's shard; the simulator adds the TP all-reduce after o_proj and down_proj.
            AllReduce = tp > 1 ? new AllReduceLink { LatencyUs = AllReduceLatencyUs, BytesPerUs = gpu.InterconnectBytesPerS / 1e6, Ranks = tp } : null,
            HiddenBytesPerToken = (double)model.Hidden * bytes,
        };
    }

    /// <summary>The importer's <c>skew_fit</c> rows of one TP degree (LlmServingSimProfileImporter.SkewFitRows) as the calibration's fit.</summary>
    private static AttentionSkewFit SkewFit(IReadOnlyList<OperatorRow> rows)
    {
        static Dictionary<string, string> Pairs(string extra) => extra.Split(';', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
        static double Number(Dictionary<string, string> kv, string key) =>
            kv.TryGetValue(key, out var v) && double.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double x)
                ? x : throw new UserInputException($"skew_fit row: '{key}' missing or not a number");
        var defaults = rows.Where(r => r.Skew == "default").ToList();
        if (defaults.Count != 1) throw new UserInputException($"skew_fit rows: expected one 'default' row (alpha and bucket axes), found {defaults.Count}");
        var d = Pairs(defaults[0].Extra);
        string[] Labels(string key) => d.TryGetValue(key, out var v) ? v.Split(',') : throw new UserInputException($"skew_fit default row: '{key}' missing");
        double[] Bins(string key) => [.. Labels(key).Select(x => double.Parse(x, System.Globalization.CultureInfo.InvariantCulture))];
        var buckets = rows.Where(r => r.Skew != "default").Select(r => (Parts: r.Skew.Split('|'), Alpha: Number(Pairs(r.Extra), "alpha"))).ToList();
        if (buckets.FirstOrDefault(b => b.Parts.Length != 5 || !b.Parts[0].StartsWith("pc=", StringComparison.Ordinal)) is { Parts: not null } bad)
            throw new UserInputException($"skew_fit row: bucket '{string.Join("|", bad.Parts)}' is not pc=N|n|skew rate|kv big|kp");
        return new AttentionSkewFit
        {
            AlphaDefault = Number(d, "alpha"),
            NBins = Bins("n_bins"), NLabels = Labels("n_labels"),
            SkewRateBins = Bins("skew_rate_bins"), SkewRateLabels = Labels("skew_rate_labels"),
            KvBigBins = Bins("kv_big_bins"), KvBigLabels = Labels("kv_big_labels"),
            KpBins = Bins("kp_bins"), KpLabels = Labels("kp_labels"),
            Pc = [.. buckets.Select(b => int.Parse(b.Parts[0][3..], System.Globalization.CultureInfo.InvariantCulture))],
            N = [.. buckets.Select(b => b.Parts[1])],
            SkewRate = [.. buckets.Select(b => b.Parts[2])],
            KvBig = [.. buckets.Select(b => b.Parts[3])],
            Kp = [.. buckets.Select(b => b.Parts[4])],
            Alpha = [.. buckets.Select(b => b.Alpha)],
        };
    }

    /// <summary>The grid the regression and residuals are fitted on, priced by the operator tables themselves.</summary>
    public static List<CalibrationSample> SamplesFrom(OperatorTables tables, IReadOnlyList<CalibrationSample> grid)
    {
        var cost = new Costs.OperatorTableCostModel(tables, null!);
        return grid.Select(g => g.Phase == "prefill"
            ? CalibrationSample.Prefill((int)g.Batch, (long)g.Length,
                cost.PredictUs((long)(g.Batch * g.Length), (long)(g.Batch * g.Length), 0, 0, 0, (int)g.Batch))
            : CalibrationSample.Decode((int)g.Batch, g.Length, cost.PredictUs((long)g.Batch, 0, 0, (int)g.Batch, (long)g.Length, (int)g.Batch))).ToList();
    }

    /// <summary>Powers-of-two-like points from lo to hi (inclusive), rounded to integers.</summary>
    internal static IEnumerable<double> LogSpaced(double lo, double hi, int count) =>
        Enumerable.Range(0, count).Select(i => Math.Round(lo * Math.Pow(hi / lo, i / (double)(count - 1)))).Distinct();

    /// <summary>How well a per-layer attention fit (base, tokens, KV entries read, causal pairs) reproduces the measured attention rows.</summary>
    private static OperatorFitQuality AttentionQuality(IReadOnlyList<OperatorRow> rows)
    {
        var samples = Thin(rows, 240).Select(r =>
        {
            long chunk = r.PrefillTokens ?? 0, ctx = r.PrefillContext ?? 0;
            var f = new IterationFeatures(chunk + (r.DecodeSeqs ?? 0), 0, (r.DecodeContextSum ?? 0) + (chunk > 0 ? ctx : 0),
                chunk * (double)ctx + chunk * (chunk + 1) / 2.0);
            return new CalibrationSample(f, r.TimeUsMedian, "attention");
        }).ToList();
        var fit = IterationFitter.Fit(samples);
        return new OperatorFitQuality { Samples = samples.Count, Mape = fit.Quality.Mape, LeaveOneOutMape = fit.Quality.LeaveOneOutMape };
    }

    /// <summary>An evenly strided subset of at most <paramref name="max"/> items (keeps leave-one-out affordable).</summary>
    internal static IEnumerable<T> Thin<T>(IReadOnlyList<T> items, int max) =>
        items.Count <= max ? items : Enumerable.Range(0, max).Select(i => items[(int)((long)i * items.Count / max)]);

    /// <summary>One operator's measured time against one size (tokens, sequences or bytes): linear between measured points.</summary>
    private sealed class MeasuredCurve
    {
        private readonly double[] _x;
        private readonly double[] _y;
        private readonly LinearSpline? _spline;

        public MeasuredCurve(IEnumerable<(double X, double Y)> points)
        {
            var merged = points.Where(p => p.X > 0 && p.Y > 0).GroupBy(p => p.X).Select(g => (X: g.Key, Y: g.Average(p => p.Y))).OrderBy(p => p.X).ToList();
            if (merged.Count == 0) throw new UserInputException("an operator has no positive measurements");
            _x = merged.Select(p => p.X).ToArray();
            _y = merged.Select(p => p.Y).ToArray();
            if (_x.Length > 1) _spline = LinearSpline.InterpolateSorted(_x, _y);
        }

        public double MaxX => _x[^1];

        public double At(double x) => _spline?.Interpolate(Math.Clamp(x, _x[0], _x[^1])) ?? _y[0];

        /// <summary>A straight line (fixed cost + cost per unit, non-negative) through the measurements: its error in and out of sample.</summary>
        public OperatorFitQuality Quality()
        {
            var samples = Thin(_x.Zip(_y).ToList(), 64).Select(p => new CalibrationSample(new IterationFeatures(p.First, 0, 0, 0), p.Second, "op")).ToList();
            if (samples.Count < 3) return new OperatorFitQuality { Samples = samples.Count };
            var fit = IterationFitter.Fit(samples);
            return new OperatorFitQuality
            {
                Samples = samples.Count, Mape = fit.Quality.Mape,
                LeaveOneOutMape = double.IsNaN(fit.Quality.LeaveOneOutMape) ? null : fit.Quality.LeaveOneOutMape,
            };
        }
    }
}
