using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using RLMServing.Catalog;
using RLMServing.Profiling.Measurement;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Runtime;
using RLMServing.Profiling.Traces;

namespace RLMServing.Profiling;

/// <summary>What to profile, where, and where the traces go.</summary>
/// <param name="Architecture">A catalog architecture to synthesise; null when <paramref name="OnnxPath"/> is a user model.</param>
/// <param name="GenerationLayers">Layers of the synthesised generation-loop model (0: all of the architecture's).</param>
/// <param name="Groups">Restrict to these groups (overhead, token_ops, attention, lm_head, layer, generation); empty: all.</param>
public sealed record ProfileOptions(
    string ModelName,
    ModelArchitecture? Architecture,
    string? OnnxPath,
    DeviceSpec Device,
    OnnxType Dtype,
    ProfileGrid Grid,
    string OutDir,
    bool KernelTrace = false,
    int GenerationLayers = 0,
    KvMode? KvMode = null,
    string Command = "",
    IReadOnlyList<string>? Groups = null,
    int IntraOpThreads = 0,
    SamplingPolicy? Policy = null,
    EngineClockKind Clock = EngineClockKind.Wall);

/// <summary>Progress of a profile run: configurations done out of the total.</summary>
public sealed record ProfileProgress(string Group, string Config, int Done, int Total);

/// <summary>A whole decoder layer against the sum of its separately measured parts.</summary>
public sealed record LayerCheck(string Config, double LayerUs, double PartsUs)
{
    public double Ratio => PartsUs > 0 ? LayerUs / PartsUs : double.NaN;
}

/// <summary>What a profile run wrote.</summary>
public sealed record ProfileSummary(string OutDir, long OperatorRows, long IterationRows, long KernelRows, double ElapsedSeconds,
    double? OverheadUs, IReadOnlyList<LayerCheck> LayerChecks, IReadOnlyList<string> Failures, bool Cancelled);

/// <summary>
/// Runs a profile grid: token-parallel operators, prefill and decode attention, LM head and sampling, whole layers,
/// and a generation loop, writing one Parquet row (group) at a time so an interrupted run keeps what it measured.
/// </summary>
public sealed class Profiler(ProfileOptions options, Action<string>? warn = null)
{
    public const string OperatorsFile = "operators.parquet";
    public const string IterationsFile = "iterations.parquet";
    public const string KernelsFile = "kernels.parquet";
    public const string SummaryFile = "summary.json";

    private static readonly string[] TokenOps = ["rmsnorm", "qkv_proj", "rotary", "o_proj", "mlp"];
    private readonly SamplingPolicy _policy = options.Policy ?? options.Grid.Policy;
    private readonly Dictionary<string, double> _medians = new(StringComparer.Ordinal);
    private readonly List<LayerCheck> _layerChecks = [];
    private readonly List<string> _failures = [];
    private TraceWriter<OperatorRow>? _ops;
    private TraceWriter<IterationRow>? _iters;
    private TraceWriter<KernelRow>? _kernels;
    private DeviceInfo? _info;
    private int _done;
    private int _total;
    private IProgress<ProfileProgress>? _progress;
    private double? _overheadUs;

    private bool Synthesised => options.Architecture is not null;
    private string DtypeName => TransformerGraphs.DtypeName(options.Dtype);

    private bool Wants(string group) => options.Groups is null || options.Groups.Count == 0 || options.Groups.Contains(group);

    /// <summary>Configurations the run will measure (for the progress bar).</summary>
    public int CountConfigs()
    {
        var g = options.Grid;
        int n = Wants("overhead") ? 1 : 0;
        if (Synthesised)
        {
            if (Wants("token_ops")) n += TokenOps.Length * g.Tokens.Count;
            if (Wants("attention")) n += g.Prefill.Count + g.Decode.Count;
            if (Wants("lm_head")) n += g.LmHeadBatch.Count;
            if (Wants("layer")) n += g.LayerPrefill.Count + g.LayerDecode.Count;
        }
        if (Wants("generation")) n += g.Generation.Count;
        return n;
    }

    /// <summary>
    /// Loads a user's .onnx file once on the CPU, unoptimised, and reads its decoder signature, so a file ONNX Runtime
    /// cannot load, or one that is not a decoder, is one clear error before any output exists.
    /// </summary>
    public static void CheckOnnx(string path)
    {
        RLMServing.IO.Files.InputFile.CheckRegular(path, "--model");
        try
        {
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
            using var session = new InferenceSession(path, options);
            DecoderSignature.FromSession(session, path);
        }
        catch (Exception e) when (e is OnnxRuntimeException or InvalidOperationException or ArgumentException or NotSupportedException or InvalidDataException)
        {
            throw new UserInputException($"--model {path}: not an ONNX decoder that ONNX Runtime can load ({RLMServing.IO.Files.ErrorText.Clip(e.Message.ReplaceLineEndings(" "), 160)})");
        }
    }

    public ProfileSummary Run(IProgress<ProfileProgress>? progress = null, CancellationToken cancel = default)
    {
        var sw = Stopwatch.StartNew();
        Directory.CreateDirectory(options.OutDir);
        _progress = progress;
        _total = CountConfigs();
        using var device = new DeviceContext(options.Device, options.IntraOpThreads);
        _info = device.Describe();
        _ops = new TraceWriter<OperatorRow>(Path.Combine(options.OutDir, OperatorsFile), Metadata("operator"));
        _iters = new TraceWriter<IterationRow>(Path.Combine(options.OutDir, IterationsFile), Metadata("iteration"));
        if (options.KernelTrace) _kernels = new TraceWriter<KernelRow>(Path.Combine(options.OutDir, KernelsFile), Metadata("kernel"));

        Guard("overhead", cancel, () => Overhead(device, cancel));
        if (Synthesised)
        {
            var arch = options.Architecture!;
            var graphs = new TransformerGraphs(arch, options.Dtype, options.Grid.MaxContext);
            Guard("token_ops", cancel, () => TokenOperators(device, graphs, cancel));
            Guard("attention", cancel, () => Attention(device, graphs, cancel));
            Guard("lm_head", cancel, () => LmHead(device, graphs, cancel));
            Guard("layer", cancel, () => Layer(device, graphs, cancel));
            Guard("generation", cancel, () =>
            {
                int layers = options.GenerationLayers > 0 ? Math.Min(options.GenerationLayers, arch.Layers) : arch.Layers;
                if (options.KvMode == KvMode.Serving)
                {
                    ServingGeneration(device, arch, cancel);
                    return;
                }
                var model = graphs.Model(layers);
                Generation(device, model.ModelBytes(), model.Weights, layers, options.KvMode ?? KvMode.Shared, cancel);
            });
        }
        else
        {
            Guard("generation", cancel, () =>
                Generation(device, File.ReadAllBytes(options.OnnxPath!), [], 0, options.KvMode ?? KvMode.Concat, cancel));
        }

        var summary = new ProfileSummary(options.OutDir, _ops.Rows, _iters.Rows, _kernels?.Rows ?? 0, sw.Elapsed.TotalSeconds, _overheadUs,
            _layerChecks, _failures, cancel.IsCancellationRequested);
        File.WriteAllText(Path.Combine(options.OutDir, SummaryFile),
            JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }));
        return summary;
    }

    private void Guard(string group, CancellationToken cancel, Action body)
    {
        if (!Wants(group) || cancel.IsCancellationRequested) return;
        try
        {
            body();
        }
        catch (Exception e) when (e is not OperationCanceledException and not UserInputException)
        {
            // One failing group (an operator the execution provider lacks, memory) must not cost the rest of a capture.
            var msg = $"{group}: {e.Message.Split('\n')[0]}";
            _failures.Add(msg);
            warn?.Invoke($"warning: profile group {msg}");
        }
    }

    private Dictionary<string, string> Metadata(string schema) =>
        TraceMetadataFor(schema, _info!, options.Architecture, options.OnnxPath, DtypeName, options.Command, options.Grid.Name,
            options.Device.Cuda, options.Clock);

    /// <summary>The file metadata of a profile trace (docs/traces.md), for rlms profile and rlms replay --interleave-profile.</summary>
    public static Dictionary<string, string> TraceMetadataFor(string schema, DeviceInfo info, ModelArchitecture? a, string? onnxPath,
        string dtype, string command, string grid, bool cuda, EngineClockKind clock)
    {
        var arch = a is null
            ? $"onnx:{Path.GetFileName(onnxPath)}"
            : $"{a.Name} layers={a.Layers} hidden={a.Hidden} heads={a.Heads} kv_heads={a.KvHeads} head_dim={a.HeadDim} ffn={a.Ffn} vocab={a.Vocab} mlp={a.Mlp}";
        return new Dictionary<string, string>
        {
            [TraceMetadata.Schema] = schema,
            [TraceMetadata.SchemaVersion] = "1",
            [TraceMetadata.Source] = "rlms-profile",
            [TraceMetadata.Device] = info.DeviceName,
            [TraceMetadata.Driver] = info.Driver,
            [TraceMetadata.Cuda] = info.CudaVersion,
            [TraceMetadata.Ort] = info.OrtVersion,
            [TraceMetadata.Dtype] = dtype,
            [TraceMetadata.Architecture] = arch,
            [TraceMetadata.Host] = info.Host,
            [TraceMetadata.Date] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            [TraceMetadata.Command] = command,
            [TraceMetadata.TimeUnit] = "us",
            ["rlms.grid"] = grid,
            ["rlms.execution_provider"] = cuda ? "CUDAExecutionProvider" : "CPUExecutionProvider",
            ["rlms.cpu_cores"] = info.CpuCores.ToString(CultureInfo.InvariantCulture),
            ["rlms.clock"] = clock == EngineClockKind.Cpu ? "cpu" : "wall",
        };
    }

    private void Tick(string group, string config) => _progress?.Report(new ProfileProgress(group, config, ++_done, _total));

    private OperatorRow Row(string op, string phase, long tokens, int batch, TimingStats t, long weightBytes, long? peak) => new OperatorRow
    {
        Source = "rlms-profile",
        Device = _info!.DeviceName,
        Model = options.ModelName,
        Dtype = DtypeName,
        Op = op,
        SourceOp = op,
        Phase = phase,
        Tokens = tokens,
        Batch = batch,
        WarmupReps = t.WarmupReps,
        WeightBytes = weightBytes,
        PeakMemBytes = peak,
    }.WithTiming(t);

    /// <summary>Measures a configuration and, with --kernel-trace, runs the profiled twin a few times for it.</summary>
    private TimingStats Measure(GraphSession s, DeviceContext device, string config, List<string> kernelConfigs, CancellationToken cancel)
    {
        device.ResetPeakMemory();
        s.RebindDeviceOutputs();
        var t = Sampler.Measure(s.Run, _policy, cancel);
        if (s.HasKernelTrace)
        {
            s.RunProfiled(KernelRunsPerConfig);
            kernelConfigs.Add(config);
        }
        return t;
    }

    private const int KernelRunsPerConfig = 3;

    private GraphSession Open(DeviceContext device, SynthGraph g) =>
        new(device, g.Kind, g.ModelBytes(), g.Weights, options.Dtype,
            options.KernelTrace ? Path.Combine(options.OutDir, $"ort_profile_{g.Kind}") : null);

    private void FinishKernels(GraphSession s, List<string> configs)
    {
        var file = s.EndProfiling();
        if (file is null || _kernels is null) return;
        try
        {
            var rows = KernelTrace.Parse(file, _info!.DeviceName, options.ModelName, s.Kind, configs, KernelRunsPerConfig);
            _kernels.Append(rows);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>The cost of one measured run of a trivial graph: the floor under every row (IO binding, run call, sync).</summary>
    private void Overhead(DeviceContext device, CancellationToken cancel)
    {
        var g = new GraphBuilder("overhead");
        var x = g.Input("x", options.Dtype, 1, 8);
        g.Op("Identity", [x], "y");
        g.Output("y", options.Dtype, 1, 8);
        using var s = new GraphSession(device, "overhead", g.ToModelBytes(), [], options.Dtype);
        var buf = s.Allocate(64);
        s.Fill([(buf, options.Dtype, [1L, 8L], 0f, 1f)]);
        s.BindInput("x", s.View(buf, options.Dtype, [1, 8]));
        s.BindOutputToDevice("y");
        var t = Sampler.Measure(s.Run, _policy, cancel);
        _overheadUs = t.MedianUs;
        var row = Row("harness_overhead", "", 0, 0, t, 0, device.PeakMemoryBytes());
        row.Extra = "graph=Identity[1x8]";
        _ops!.Append(row);
        Tick("overhead", "identity");
    }

    private void TokenOperators(DeviceContext device, TransformerGraphs graphs, CancellationToken cancel)
    {
        var arch = graphs.Arch;
        int maxTokens = options.Grid.Tokens.Max();
        foreach (var op in TokenOps)
        {
            if (cancel.IsCancellationRequested) return;
            var graph = op switch
            {
                "rmsnorm" => graphs.RmsNorm(),
                "qkv_proj" => graphs.QkvProjection(),
                "rotary" => graphs.Rotary(),
                "o_proj" => graphs.OutputProjection(),
                _ => graphs.Mlp(),
            };
            using var s = Open(device, graph);
            var inputs = graph.Builder.Inputs.Where(i => !i.Name.StartsWith("w.", StringComparison.Ordinal) && i.Type != OnnxType.Int64).ToList();
            var buffers = inputs.Select(i => (i, buf: s.Allocate((long)maxTokens * i.Shape[^1].Value!.Value * TransformerGraphs.ElementBytes(options.Dtype)))).ToList();
            s.Fill(buffers.Select(b => (b.buf, options.Dtype, new[] { (long)maxTokens, b.i.Shape[^1].Value!.Value }, 0f, 1f)).ToList());
            foreach (var o in graph.Builder.Outputs) s.BindOutputToDevice(o.Name);
            var kernelConfigs = new List<string>();
            foreach (var tokens in options.Grid.Tokens)
            {
                if (cancel.IsCancellationRequested) break;
                foreach (var (info, buf) in buffers) s.BindInput(info.Name, s.View(buf, options.Dtype, [1, tokens, info.Shape[^1].Value!.Value]));
                if (op == "rotary") s.BindInput("position_ids", Enumerable.Range(0, tokens).Select(i => (long)i).ToArray(), [1, tokens]);
                var config = $"tokens={tokens}";
                var t = Measure(s, device, config, kernelConfigs, cancel);
                _medians[$"{op}|{tokens}"] = t.MedianUs;
                _ops!.Append(Row(op, "", tokens, 1, t, s.WeightBytes, device.PeakMemoryBytes()));
                Tick(op, config);
            }
            FinishKernels(s, kernelConfigs);
        }
    }

    private long KvBytesPerTokenPerLayer(ModelArchitecture arch) => 2L * arch.KvHeads * arch.HeadDim * TransformerGraphs.ElementBytes(options.Dtype);

    /// <summary>One decode point of an attention or layer graph: per-sequence contexts bound, timed, and its row.</summary>
    private (OperatorRow Row, string Config, TimingStats T) MeasureDecode(string op, GraphSession s, AttentionBuffers io, DecodePoint d,
        DeviceContext device, ModelArchitecture arch, List<string> kernelConfigs, CancellationToken cancel)
    {
        var lengths = d.Lengths();
        io.Bind(d.Batch, 1, lengths);
        var config = $"decode batch={d.Batch} context={d.Context} skew={d.Skew}";
        var t = Measure(s, device, config, kernelConfigs, cancel);
        var row = Row(op, "decode", d.Batch, d.Batch, t, s.WeightBytes, device.PeakMemoryBytes());
        row.DecodeSeqs = d.Batch;
        row.DecodeContextSum = lengths.Sum(x => (long)x);
        row.DecodeContextMax = lengths.Max();
        row.Skew = d.Skew;
        row.KvBytes = row.DecodeContextSum * KvBytesPerTokenPerLayer(arch);
        return (row, config, t);
    }

    /// <summary>Prefill (batch 1, chunk after context) and decode (batch × 1 token, per-sequence contexts) attention.</summary>
    private void Attention(DeviceContext device, TransformerGraphs graphs, CancellationToken cancel)
    {
        var arch = graphs.Arch;
        var graph = graphs.Attention();
        using var s = Open(device, graph);
        var grid = options.Grid;
        long qRows = Math.Max(grid.Prefill.Select(p => p.Chunk).DefaultIfEmpty(1).Max(), grid.Decode.Select(d => d.Batch).DefaultIfEmpty(1).Max());
        long kvTokens = Math.Max(grid.Prefill.Select(p => (long)p.Chunk + p.Context).DefaultIfEmpty(1).Max(),
            grid.Decode.Select(d => (long)d.Batch * (d.Context + 1)).DefaultIfEmpty(1).Max());
        var io = new AttentionBuffers(s, arch, options.Dtype, qRows, kvTokens);
        s.BindOutputToDevice("y");
        var kernelConfigs = new List<string>();
        foreach (var (chunk, context) in grid.Prefill)
        {
            if (cancel.IsCancellationRequested) return;
            io.Bind(1, chunk, [context + chunk - 1]);
            var config = $"prefill chunk={chunk} context={context}";
            var t = Measure(s, device, config, kernelConfigs, cancel);
            _medians[$"attention_prefill|{chunk}|{context}"] = t.MedianUs;
            var row = Row("attention", "prefill", chunk, 1, t, s.WeightBytes, device.PeakMemoryBytes());
            row.PrefillTokens = chunk;
            row.PrefillContext = context;
            row.KvBytes = (context + chunk) * KvBytesPerTokenPerLayer(arch);
            row.Skew = "uniform";
            _ops!.Append(row);
            Tick("attention", config);
        }
        foreach (var d in grid.Decode)
        {
            if (cancel.IsCancellationRequested) return;
            var (row, config, t) = MeasureDecode("attention", s, io, d, device, arch, kernelConfigs, cancel);
            _medians[$"attention_decode|{d.Batch}|{d.Context}|{d.Skew}"] = t.MedianUs;
            _ops!.Append(row);
            Tick("attention", config);
        }
        FinishKernels(s, kernelConfigs);
    }

    /// <summary>Query/key/value activations and a KV buffer shared by past and present, allocated once per session.</summary>
    private sealed class AttentionBuffers
    {
        private readonly GraphSession _s;
        private readonly ModelArchitecture _arch;
        private readonly OnnxType _type;
        private readonly DeviceBuffer _x, _q, _k, _v, _pastK, _pastV;
        private readonly bool _layer;

        public AttentionBuffers(GraphSession s, ModelArchitecture arch, OnnxType type, long rows, long kvTokens, bool layer = false)
        {
            _s = s;
            _arch = arch;
            _type = type;
            _layer = layer;
            int eb = TransformerGraphs.ElementBytes(type);
            long kvBytes = kvTokens * arch.KvHeads * arch.HeadDim * eb;
            _x = s.Allocate(rows * arch.Hidden * eb);
            _q = s.Allocate(rows * arch.Heads * arch.HeadDim * eb);
            _k = s.Allocate(rows * arch.KvHeads * arch.HeadDim * eb);
            _v = s.Allocate(rows * arch.KvHeads * arch.HeadDim * eb);
            _pastK = s.Allocate(kvBytes);
            _pastV = s.Allocate(kvBytes);
            s.Fill([
                (_x, type, [rows, arch.Hidden], 0f, 1f),
                (_q, type, [rows, (long)arch.Heads * arch.HeadDim], 0f, 1f),
                (_k, type, [rows, (long)arch.KvHeads * arch.HeadDim], 0f, 1f),
                (_v, type, [rows, (long)arch.KvHeads * arch.HeadDim], 0f, 1f),
                (_pastK, type, [kvTokens * arch.KvHeads, arch.HeadDim], 0f, 1f),
                (_pastV, type, [kvTokens * arch.KvHeads, arch.HeadDim], 0f, 1f),
            ]);
        }

        /// <summary>Binds a batch of <paramref name="seq"/> new tokens per sequence whose total lengths are lengths[i] + 1.</summary>
        public void Bind(int batch, int seq, int[] pastLengths)
        {
            long maxSeq = pastLengths.Max() + 1;
            if (_layer)
            {
                _s.BindInput("x", _s.View(_x, _type, [batch, seq, _arch.Hidden]));
            }
            else
            {
                _s.BindInput("q", _s.View(_q, _type, [batch, seq, (long)_arch.Heads * _arch.HeadDim]));
                _s.BindInput("k", _s.View(_k, _type, [batch, seq, (long)_arch.KvHeads * _arch.HeadDim]));
                _s.BindInput("v", _s.View(_v, _type, [batch, seq, (long)_arch.KvHeads * _arch.HeadDim]));
            }
            long[] kvShape = [batch, _arch.KvHeads, maxSeq, _arch.HeadDim];
            _s.BindInput("past_key", _s.View(_pastK, _type, kvShape));
            _s.BindInput("past_value", _s.View(_pastV, _type, kvShape));
            using var pk = _s.View(_pastK, _type, kvShape);
            using var pv = _s.View(_pastV, _type, kvShape);
            _s.BindOutput("present_key", pk);
            _s.BindOutput("present_value", pv);
            // seqlens_k is the total length minus one; for a prefill chunk the caller passes context + chunk - 1.
            _s.BindInput("seqlens_k", seq == 1 ? pastLengths : pastLengths, [batch]);
            _s.BindInput("total_sequence_length", new[] { (int)(seq == 1 ? maxSeq : pastLengths.Max() + 1) }, []);
        }
    }

    private void LmHead(DeviceContext device, TransformerGraphs graphs, CancellationToken cancel)
    {
        var graph = graphs.LmHead();
        using var s = Open(device, graph);
        int maxBatch = options.Grid.LmHeadBatch.Max();
        var x = s.Allocate((long)maxBatch * graphs.Arch.Hidden * TransformerGraphs.ElementBytes(options.Dtype));
        s.Fill([(x, options.Dtype, [maxBatch, graphs.Arch.Hidden], 0f, 1f)]);
        s.BindOutputToDevice("next_token");
        var kernelConfigs = new List<string>();
        foreach (var b in options.Grid.LmHeadBatch)
        {
            if (cancel.IsCancellationRequested) return;
            s.BindInput("x", s.View(x, options.Dtype, [b, 1, graphs.Arch.Hidden]));
            var config = $"batch={b}";
            var t = Measure(s, device, config, kernelConfigs, cancel);
            var row = Row("lm_head", "decode", b, b, t, s.WeightBytes, device.PeakMemoryBytes());
            row.Extra = "includes=final_norm,lm_head,argmax";
            _ops!.Append(row);
            Tick("lm_head", config);
        }
        FinishKernels(s, kernelConfigs);
    }

    /// <summary>Whole decoder layers, compared with the sum of their parts measured in the same run.</summary>
    private void Layer(DeviceContext device, TransformerGraphs graphs, CancellationToken cancel)
    {
        var arch = graphs.Arch;
        var graph = graphs.Layer();
        using var s = Open(device, graph);
        var grid = options.Grid;
        long rows = Math.Max(grid.LayerPrefill.DefaultIfEmpty(1).Max(), grid.LayerDecode.Select(d => d.Batch).DefaultIfEmpty(1).Max());
        long kvTokens = Math.Max(grid.LayerPrefill.DefaultIfEmpty(1).Max(), grid.LayerDecode.Select(d => (long)d.Batch * (d.Context + 1)).DefaultIfEmpty(1).Max());
        var io = new AttentionBuffers(s, arch, options.Dtype, rows, kvTokens, layer: true);
        s.BindOutputToDevice("y");
        var kernelConfigs = new List<string>();
        foreach (var chunk in grid.LayerPrefill)
        {
            if (cancel.IsCancellationRequested) return;
            io.Bind(1, chunk, [chunk - 1]);
            var config = $"prefill chunk={chunk} context=0";
            var t = Measure(s, device, config, kernelConfigs, cancel);
            var row = Row("layer", "prefill", chunk, 1, t, s.WeightBytes, device.PeakMemoryBytes());
            row.PrefillTokens = chunk;
            row.PrefillContext = 0;
            row.Skew = "uniform";
            row.KvBytes = chunk * KvBytesPerTokenPerLayer(arch);
            row.Extra = PartsExtra(config, t.MedianUs, chunk, $"attention_prefill|{chunk}|0");
            _ops!.Append(row);
            Tick("layer", config);
        }
        foreach (var d in grid.LayerDecode)
        {
            if (cancel.IsCancellationRequested) return;
            var (row, config, t) = MeasureDecode("layer", s, io, d, device, arch, kernelConfigs, cancel);
            row.Extra = PartsExtra(config, t.MedianUs, d.Batch, $"attention_decode|{d.Batch}|{d.Context}|{d.Skew}");
            _ops!.Append(row);
            Tick("layer", config);
        }
        FinishKernels(s, kernelConfigs);
    }

    /// <summary>2 × rmsnorm + qkv_proj + attention (rotary inside) + o_proj + mlp, when all were measured at these shapes.</summary>
    private string PartsExtra(string config, double layerUs, long tokens, string attentionKey)
    {
        string[] keys = [$"rmsnorm|{tokens}", $"rmsnorm|{tokens}", $"qkv_proj|{tokens}", attentionKey, $"o_proj|{tokens}", $"mlp|{tokens}"];
        if (!keys.All(_medians.ContainsKey)) return "parts_median_us=;ratio=";
        double parts = keys.Sum(k => _medians[k]);
        var check = new LayerCheck(config, layerUs, parts);
        _layerChecks.Add(check);
        return string.Create(CultureInfo.InvariantCulture, $"parts_median_us={parts:F3};ratio={check.Ratio:F4}");
    }

    /// <summary>
    /// Generation points run by the serving engine of rlms replay (all layers; <see cref="Replay.ServingProfile"/>). The
    /// repetitions go round the grid (every point once, then every point again) rather than point by point: on a shared
    /// machine whose speed drifts over seconds (docs/fidelity.md, "A drifting machine") each point then samples the
    /// whole run's drift, not whatever speed the machine had during its own few hundred milliseconds, and the points
    /// stay comparable with each other.
    /// </summary>
    private void ServingGeneration(DeviceContext device, Catalog.ModelArchitecture arch, CancellationToken cancel)
    {
        var points = options.Grid.Generation;
        if (points.Count == 0) return;
        using var engine = new Replay.OrtServingEngine(device, arch, options.Dtype, points.Max(p => p.Batch),
            points.Max(p => p.Prompt + p.Steps), cancel, options.Clock);
        engine.StartClock();
        long id = 0;
        var samples = points.Select(p => new Replay.ServingPointSamples(p)).ToArray();
        // Round 0 warms every point up and is not kept.
        for (int r = 0; r <= options.Grid.GenerationReps; r++)
            for (int i = 0; i < points.Count && !cancel.IsCancellationRequested; i++)
                Replay.ServingProfile.RunPoint(engine, points[i], () => ++id, r > 0 ? samples[i] : null, cancel);
        var who = new Replay.ServingProfileIdentity(_info!.DeviceName, options.ModelName, TransformerGraphs.DtypeName(options.Dtype), arch.Layers,
            engine.KvBytesPerToken, engine.WeightBytes);
        foreach (var s in samples)
        {
            var rows = Replay.ServingProfile.Rows(s, who, _policy.UnstableCv);
            if (rows.Count == 0) return;
            _iters!.Append(rows);
            Tick("generation", $"batch={s.Point.Batch} prompt={s.Point.Prompt} steps={s.Point.Steps} (serving engine)");
        }
    }

    private void Generation(DeviceContext device, byte[] model, IReadOnlyList<WeightSpec> weights, int layers, KvMode mode, CancellationToken cancel)
    {
        using var s = new GraphSession(device, "model", model, weights, options.Dtype);
        var where = options.OnnxPath ?? options.ModelName;
        var sig = DecoderSignature.FromSession(s.Session, where, weights.Select(w => w.Name).ToHashSet(StringComparer.Ordinal));
        var loop = new GenerationLoop(s, sig, device, mode);
        var points = options.Grid.Generation;
        if (!Synthesised && sig.Layers.Count > 0) layers = sig.Layers.Count;
        foreach (var p in points)
        {
            if (cancel.IsCancellationRequested) return;
            var config = $"batch={p.Batch} prompt={p.Prompt} steps={p.Steps}";
            var stats = loop.Profile(p, options.Grid.GenerationReps, _policy.UnstableCv, cancel);
            var rows = stats.Select(st => new IterationRow
            {
                Source = "rlms-profile",
                Device = _info!.DeviceName,
                Model = options.ModelName,
                Dtype = TransformerGraphs.DtypeName(sig.KvType),
                Layers = layers,
                Batch = p.Batch,
                PromptTokens = p.Prompt,
                Step = st.Step,
                Phase = st.Step == 0 ? "prefill" : "decode",
                NewTokens = st.NewTokens,
                Context = st.Context,
                KvMode = mode.ToString().ToLowerInvariant(),
                TokensPerS = st.Time.MedianUs > 0 ? p.Batch * st.NewTokens / (st.Time.MedianUs * 1e-6) : null,
                KvBytesComputed = st.KvBytesComputed,
                KvBytesMeasured = st.KvBytesMeasured,
                MemBytes = st.MemBytes,
                PeakMemBytes = st.PeakMemBytes,
                Extra = $"weight_bytes={s.WeightBytes}",
            }.WithTiming(st.Time)).ToList();
            _iters!.Append(rows);
            Tick("generation", config);
        }
    }
}
