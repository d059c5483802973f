using RLMServing.Calibration;

namespace RLMServing.Costs;

/// <summary>
/// Iteration time composed from measured per-layer operator tables the way LLMServingSim's simulator composes its
/// profile (casys-kaist/LLMServingSim, llmservingsim/serving/core/trace_generator.py at 4a23e9f): the once-per-step
/// operators (embedding, final norm) at the step's tokens; per layer, every token-parallel operator at the step's
/// tokens, one attention lookup at (sum of prefill chunks, sum of their cached context, decodes, mean decode KV),
/// the MoE block at the tokens and distinct experts routed to this GPU, and a ring all-reduce of the activations
/// after o_proj and down_proj under tensor parallelism; the LM head and sampler once per sequence in the batch.
/// Lookups interpolate linearly between measured points on every axis, clamp below the grid and extrapolate
/// linearly above it, as the simulator does — except that above the grid a falling last segment (measurement noise
/// between the two largest points) is held flat instead of extrapolated downwards, so more work never costs less.
/// Decode batches of unequal KV lengths get the profile's skew correction where the calibration carries it
/// (<see cref="AttentionSkewFit"/>, trace_generator._lookup_attention_with_skew): the attention lookup at the mean KV
/// moved by the bucket's alpha towards the lookup at the longest KV, from the batch's <see cref="KvSpread"/>.
/// </summary>
public sealed class OperatorTableCostModel : ICostModel
{
    private readonly OperatorTables _t;
    private readonly RooflineCostModel _work;
    private readonly (double[] X, double[] Y, int Times)[] _perLayer;
    private readonly (double[] X, double[] Y)[] _perIteration;
    private readonly (double[] X, double[] Y)[] _perSequence;
    private readonly AttentionGrid? _attention;
    private readonly MoeGrid? _moe;
    private readonly SkewAlphas? _skew;
    private readonly int _expertParallel;

    /// <param name="expertParallel">Ranks the experts are spread over (data-parallel replicas with expert parallelism; 1 otherwise).</param>
    public OperatorTableCostModel(OperatorTables tables, RooflineCostModel work, int expertParallel = 1)
    {
        _t = tables;
        _work = work;
        _expertParallel = Math.Max(1, expertParallel);
        _perLayer = tables.PerLayer.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (tables.TokenOps[p.Key].X, tables.TokenOps[p.Key].Us, p.Value)).ToArray();
        _perIteration = tables.PerIteration.Select(op => (tables.TokenOps[op].X, tables.TokenOps[op].Us)).ToArray();
        _perSequence = tables.SequenceOps.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Value.X, p.Value.Us)).ToArray();
        if (tables.Attention is { } a) _attention = new AttentionGrid(a);
        if (tables.Moe is { } m) _moe = new MoeGrid(m);
        if (tables.AttentionSkew is { } k && _attention is not null) _skew = new SkewAlphas(k);
    }

    /// <summary>The decode batch's longest and shortest KV change the price when the profile carries a skew fit.</summary>
    public bool UsesKvSpread => _skew is not null;

    public double PeakFlops => _work.PeakFlops;
    public double PeakBandwidth => _work.PeakBandwidth;
    public double FixedStepS => PredictUs(1, 0, 0, 1, 1, 1) / 1e6;

    public IterationCost Iteration(in BatchShape shape)
    {
        var w = _work.Iteration(shape);
        if (shape.TotalTokens == 0) return w with { TimeS = 0 };
        long chunk = 0, kvPrefill = 0;
        foreach (var c in shape.Prefills.Span) { chunk += c.Tokens; kvPrefill += c.ContextTokens; }
        int decodes = shape.DecodeCount * (1 + shape.SpeculativeTokens);
        long kvMean = shape.DecodeCount > 0 ? shape.DecodeKvSum / shape.DecodeCount : 0;
        var spread = shape.DecodeKvSpread;
        double us = PredictUs(shape.TotalTokens, chunk, kvPrefill, decodes, kvMean, shape.Prefills.Length + shape.DecodeCount, spread.Longest, spread.Shortest);
        return w with { TimeS = us / 1e6 + _work.Scoring(shape).TimeS };
    }

    public IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default)
    {
        var w = _work.Decode(decodeCount, kvSum);
        return w with { TimeS = decodeCount == 0 ? 0 : PredictUs(decodeCount, 0, 0, decodeCount, kvSum / decodeCount, decodeCount, spread.Longest, spread.Shortest) / 1e6 };
    }

    /// <summary>
    /// One iteration's time, µs: <paramref name="tokens"/> through the layers, <paramref name="sequences"/> sampled;
    /// the decodes' longest and shortest KV (0: not known) for the skew correction.
    /// </summary>
    public double PredictUs(long tokens, long prefillChunk, long kvPrefill, int decodes, long kvDecodeMean, int sequences,
        long kvDecodeMax = 0, long kvDecodeMin = 0)
    {
        double layer = 0;
        foreach (var (x, y, times) in _perLayer) layer += times * Lookup1D(x, y, tokens);
        if (_attention is not null && (prefillChunk > 0 || decodes > 0))
            layer += AttentionUs(prefillChunk, kvPrefill, decodes, kvDecodeMean, kvDecodeMax, kvDecodeMin);
        if (_moe is not null) layer += _moe.At(tokens, _expertParallel);
        if (_t.AllReduce is { } ar) layer += 2 * (ar.LatencyUs + 2.0 * (ar.Ranks - 1) / ar.Ranks * tokens * _t.HiddenBytesPerToken / ar.BytesPerUs);
        double once = 0;
        foreach (var (x, y) in _perIteration) once += Lookup1D(x, y, tokens);
        foreach (var (x, y) in _perSequence) once += Lookup1D(x, y, Math.Max(sequences, 1));
        return _t.Layers * layer + once;
    }

    /// <summary>
    /// One layer's attention (trace_generator._lookup_attention_with_skew): the table at the mean decode KV; for a
    /// batch of several decodes whose longest KV exceeds the mean, moved by the bucket's alpha towards the table at
    /// the longest KV (never when that lookup is not dearer: an interpolation artefact at the grid's edge).
    /// </summary>
    public double AttentionUs(long prefillChunk, long kvPrefill, int decodes, long kvMean, long kvMax = 0, long kvMin = 0)
    {
        double tMean = _attention!.At(prefillChunk, kvPrefill, decodes, kvMean);
        if (_skew is null || decodes <= 1 || kvMax <= 0 || kvMax == kvMean) return tMean;
        long gap = kvMax - kvMin;
        double skewRate = gap > 0 ? (double)(kvMean - kvMin) / gap : 0.5;
        double alpha = _skew.Alpha(prefillChunk, decodes, skewRate, kvMax, kvPrefill);
        if (alpha == 0) return tMean;
        double tMax = _attention.At(prefillChunk, kvPrefill, decodes, kvMax);
        return tMax <= tMean ? tMean : tMean + alpha * (tMax - tMean);
    }

    /// <summary>Linear between measured points, the first value below them, extrapolated from the last two above (trace_generator._lookup_1d).</summary>
    public static double Lookup1D(double[] xs, double[] ys, double q)
    {
        if (xs.Length == 1 || q <= xs[0]) return ys[0];
        var (lo, hi, t) = Bracket(xs, q);
        return Blend(ys[lo], ys[hi], t);
    }

    /// <summary>v0 + t (v1 − v0); beyond the last point (t &gt; 1) a falling segment stays at v1.</summary>
    public static double Blend(double v0, double v1, double t) => t > 1 && v1 < v0 ? v1 : v0 + t * (v1 - v0);

    /// <summary>The pair of measured points around <paramref name="q"/> and its fraction between them (trace_generator._axis_bracket).</summary>
    public static (int Lo, int Hi, double T) Bracket<T>(T[] values, double q) where T : System.Numerics.INumber<T>
    {
        int n = values.Length;
        if (n == 1 || q <= double.CreateChecked(values[0])) return (0, 0, 0);
        int idx = UpperBound(values, q);
        int lo = idx >= n ? n - 2 : idx - 1, hi = lo + 1;
        double x0 = double.CreateChecked(values[lo]), x1 = double.CreateChecked(values[hi]);
        return (lo, hi, x1 == x0 ? 0 : (q - x0) / (x1 - x0));
    }

    /// <summary>Index of the first value greater than <paramref name="q"/> (Python's bisect_right).</summary>
    private static int UpperBound<T>(T[] values, double q) where T : System.Numerics.INumber<T>
    {
        int lo = 0, hi = values.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >> 1;
            if (double.CreateChecked(values[mid]) <= q) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    /// <summary>The skew fit's alpha per bucket key (trace_generator._skew_alpha), the pooled default for a bucket not in the fit.</summary>
    private sealed class SkewAlphas
    {
        private readonly AttentionSkewFit _f;
        private readonly Dictionary<string, double> _alpha = new(StringComparer.Ordinal);

        public SkewAlphas(AttentionSkewFit f)
        {
            _f = f;
            for (int i = 0; i < f.Alpha.Length; i++) _alpha[AttentionSkewFit.Key(f.Pc[i], f.N[i], f.SkewRate[i], f.KvBig[i], f.Kp[i])] = f.Alpha[i];
        }

        public double Alpha(long pc, int n, double skewRate, long kvBig, long kp)
        {
            double sr = Math.Clamp(skewRate, 0, 1);
            var key = AttentionSkewFit.Key((int)pc,
                AttentionSkewFit.Label(_f.NBins, _f.NLabels, n),
                AttentionSkewFit.Label(_f.SkewRateBins, _f.SkewRateLabels, sr),
                AttentionSkewFit.Label(_f.KvBigBins, _f.KvBigLabels, kvBig),
                AttentionSkewFit.Label(_f.KpBins, _f.KpLabels, kp));
            return _alpha.TryGetValue(key, out double a) ? a : _f.AlphaDefault;
        }
    }

    /// <summary>attention.csv as slices per (prefill_chunk, n_decode), each a grid over (kv_prefill, kv_decode).</summary>
    private sealed class AttentionGrid
    {
        private readonly int[] _pc, _nd;
        private readonly Dictionary<(int, int), (int[] Kp, (int[] Kd, double[] Us)[] Rows)> _slices = new();
        private readonly (int Pc, int Nd)[] _pairs;

        public AttentionGrid(AttentionTable a)
        {
            var grouped = new Dictionary<(int, int), SortedDictionary<int, SortedDictionary<int, double>>>();
            for (int i = 0; i < a.Us.Length; i++)
            {
                var key = (a.PrefillChunk[i], a.NDecode[i]);
                if (!grouped.TryGetValue(key, out var byKp)) grouped[key] = byKp = new();
                if (!byKp.TryGetValue(a.KvPrefill[i], out var byKd)) byKp[a.KvPrefill[i]] = byKd = new();
                byKd[a.KvDecode[i]] = a.Us[i];   // a repeated point: the later row wins, as in the simulator
            }
            foreach (var (key, byKp) in grouped)
                _slices[key] = (byKp.Keys.ToArray(), byKp.Values.Select(r => (r.Keys.ToArray(), r.Values.ToArray())).ToArray());
            _pc = a.PrefillChunk.Distinct().Order().ToArray();
            _nd = a.NDecode.Distinct().Order().ToArray();
            _pairs = _slices.Keys.OrderBy(k => k.Item1).ThenBy(k => k.Item2).ToArray();
        }

        public double At(long pc, long kp, int nd, long kd)
        {
            var (lpc, hpc, tpc) = Bracket(_pc, Math.Max(pc, 0));
            var (lnd, hnd, tnd) = Bracket(_nd, Math.Max(nd, 0));
            double c00 = Corner(_pc[lpc], _nd[lnd], kp, kd), c01 = Corner(_pc[lpc], _nd[hnd], kp, kd);
            double c10 = Corner(_pc[hpc], _nd[lnd], kp, kd), c11 = Corner(_pc[hpc], _nd[hnd], kp, kd);
            double v0 = Blend(c00, c01, tnd), v1 = Blend(c10, c11, tnd);
            return Math.Max(0.001, Blend(v0, v1, tpc));
        }

        /// <summary>A slice's value, or the nearest measured (chunk, decodes) slice's when that corner was not measured.</summary>
        private double Corner(int pc, int nd, long kp, long kd)
        {
            if (!_slices.TryGetValue((pc, nd), out var s))
            {
                var nearest = _pairs.MinBy(p => Math.Pow(p.Pc - pc, 2) + Math.Pow(p.Nd - nd, 2));
                s = _slices[nearest];
            }
            var (lkp, hkp, tkp) = Bracket(s.Kp, Math.Max(kp, 0));
            double Row(int i) => s.Rows[i].Kd.Length == 1 ? s.Rows[i].Us[0] : Interp(s.Rows[i].Kd, s.Rows[i].Us, Math.Max(kd, 0));
            double vlo = Row(lkp);
            return lkp == hkp ? vlo : Blend(vlo, Row(hkp), tkp);
        }

        private static double Interp(int[] xs, double[] ys, double q)
        {
            var (lo, hi, t) = Bracket(xs, q);
            return Blend(ys[lo], ys[hi], t);
        }
    }

    /// <summary>
    /// moe.csv by activated experts, each a curve over tokens; a batch routed as LLMServingSim's default BALANCED gate
    /// routes it (serving/core/gate_function.py): per expert-parallel rank, the activated experts are
    /// min(round(tokens × experts_per_token / ranks), experts / ranks) and the tokens received round(tokens × (1 − ((ranks − 1)/ranks)^k)).
    /// </summary>
    private sealed class MoeGrid
    {
        private readonly MoeTable _m;
        private readonly int[] _activated;
        private readonly (double[] X, double[] Y)[] _rows;

        public MoeGrid(MoeTable m)
        {
            _m = m;
            var grouped = new SortedDictionary<int, SortedDictionary<int, double>>();
            for (int i = 0; i < m.Us.Length; i++)
            {
                if (!grouped.TryGetValue(m.ActivatedExperts[i], out var row)) grouped[m.ActivatedExperts[i]] = row = new();
                row[m.Tokens[i]] = m.Us[i];
            }
            _activated = grouped.Keys.ToArray();
            _rows = grouped.Values.Select(r => (r.Keys.Select(k => (double)k).ToArray(), r.Values.ToArray())).ToArray();
        }

        public double At(long tokens, int ranks)
        {
            int perRank = Math.Max(1, _m.Experts / ranks);
            double activated = Math.Max(1, Math.Min(Math.Round((double)tokens * _m.ExpertsPerToken / ranks, MidpointRounding.ToEven), perRank));
            double hit = ranks <= 1 ? 1 : 1 - Math.Pow((ranks - 1.0) / ranks, _m.ExpertsPerToken);
            double local = Math.Max(1, Math.Round(tokens * hit, MidpointRounding.ToEven));
            int lo, hi;
            int idx = UpperBound(_activated, activated);
            if (idx == 0) (lo, hi) = (0, 0);
            else if (idx >= _activated.Length) (lo, hi) = _activated.Length < 2 ? (0, 0) : (_activated.Length - 2, _activated.Length - 1);
            else (lo, hi) = (idx - 1, idx);
            double vlo = Lookup1D(_rows[lo].X, _rows[lo].Y, local);
            if (lo == hi) return vlo;
            double vhi = Lookup1D(_rows[hi].X, _rows[hi].Y, local);
            return Blend(vlo, vhi, (activated - _activated[lo]) / (_activated[hi] - _activated[lo]));
        }
    }
}
