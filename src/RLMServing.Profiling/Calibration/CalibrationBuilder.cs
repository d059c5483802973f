using System.Globalization;
using RLMServing.Calibration;
using RLMServing.Catalog;
using RLMServing.Profiling.Traces;

namespace RLMServing.Profiling.Calibration;

/// <summary>What <c>rlms calibrate</c> was asked for: the traces and the filters and choices on them.</summary>
public sealed record CalibrationRequest
{
    public IReadOnlyList<string> Traces { get; init; } = [];
    public string? Model { get; init; }
    public string? Gpu { get; init; }
    public string? TraceModel { get; init; }
    public string? TraceDevice { get; init; }
    public int? Tp { get; init; }
    public string? Engine { get; init; }
    public string? Network { get; init; }
    public string Statistic { get; init; } = "median";
    public IReadOnlyList<string> HostOverheadFrom { get; init; } = [];
    /// <summary>The command line recorded in the calibration's provenance.</summary>
    public string Command { get; init; } = "";
}

/// <summary>A built calibration and the numbers <c>rlms calibrate</c> prints about it.</summary>
public sealed record BuiltCalibration(CalibrationFile File, IterationFitResult Fit, InterpolatedQuality Held, int Samples);

/// <summary>
/// Builds a calibration file from measured traces: reads each trace kind (iteration, operator, coefficients) into
/// samples on a grid, fits the regression and residuals, measures the engine's host work from replays, and records
/// which serving stack measured the data (<c>engine</c>, <c>engine_version</c>). The verb only parses options and
/// writes the result.
/// </summary>
public sealed class CalibrationBuilder(HardwareCatalog catalog)
{
    /// <summary>Decode steps of the serving engine's profile loops that still warm up after the loop's prompts (on CPU).</summary>
    public const int ServingWarmUpSteps = Replay.ServingProfile.WarmUpSteps;

    public BuiltCalibration Build(CalibrationRequest request)
    {
        if (request.Statistic is not ("median" or "mean"))
            throw new UserInputException($"--statistic: '{request.Statistic}' is not one of median, mean");
        var files = request.Traces.Select(ResolveFile).ToList();
        if (files.Count == 0) throw new UserInputException("calibrate: no trace files given");
        var schemas = files.Select(f => (File: f, Schema: TraceReader.Metadata(f).GetValueOrDefault("rlms.schema") ?? "")).ToList();
        var schema = schemas[0].Schema;
        _gpuGiven = request.Gpu is not null;
        _cpuTraces = files.All(f => TraceReader.Metadata(f).GetValueOrDefault("rlms.execution_provider") == "CPUExecutionProvider");
        if (schemas.FirstOrDefault(x => x.Schema != schema) is { File: not null } other)
            throw new UserInputException($"{other.File}: a {other.Schema} trace cannot be calibrated together with {schemas[0].File} ({schema})");
        if (request.Statistic != "median" && schema != "iteration")
            throw new UserInputException($"--statistic {request.Statistic}: only iteration traces can be fitted by their mean; {files[0]} is a {schema} trace");
        var input = schema switch
        {
            "iteration" => FromIterations(request, files),
            "operator" => FromOperators(request, files),
            "coefficients" => FromCoefficients(request, files),
            _ => throw new UserInputException($"{files[0]}: rlms.schema is '{schema}'; calibrate reads iteration, operator or coefficients traces"),
        };
        var host = MeasureHostOverhead(request.HostOverheadFrom);
        var samples = input.Samples;
        IterationFitResult fit;
        InterpolatedQuality held;
        try
        {
            fit = IterationFitter.Fit(samples);
            held = ResidualFit.LeaveOneOut(samples);
        }
        catch (ArgumentException e) { throw new UserInputException($"{string.Join(", ", files)}: {e.Message}"); }

        var c = fit.Coefficients;
        var prefills = samples.Where(s => s.Phase == "prefill").ToList();
        var onGrid = samples.Where(s => s.Batch > 0).ToList();
        var metadata = TraceReader.Metadata(files[0]);
        var (engine, version) = input.Stack;
        var file = new CalibrationFile
        {
            Model = input.Model.Name,
            Gpu = input.Gpu.Name,
            TensorParallel = input.Tp,
            Dtype = input.Dtype,
            Engine = engine,
            EngineVersion = version,
            Source = input.Source,
            Coefficients = IterationCoefficients.Names.Zip(c.Vector()).ToDictionary(p => p.First, p => p.Second),
            Unidentified = [.. fit.Unidentified],
            Derived = input.Derived.Count > 0 ? new Dictionary<string, string>(input.Derived) : null,
            Grid = new CalibrationGrid
            {
                MinBatch = (int)onGrid.Min(s => s.Batch),
                MaxBatch = (int)onGrid.Max(s => s.Batch),
                MinContext = (long)onGrid.Min(s => s.Length),
                MaxContext = (long)onGrid.Max(s => s.Length),
                MaxPrefillTokens = (long)prefills.Select(s => s.Batch * s.Length).DefaultIfEmpty(0).Max(),
                PrefillSamples = prefills.Count,
                DecodeSamples = samples.Count(s => s.Phase == "decode"),
            },
            Residuals = ResidualFit.Tables(c, samples),
            OperatorTables = input.Tables,
            HostOverhead = host,
            Fit = new CalibrationFitQuality
            {
                Samples = fit.Quality.Samples,
                Mape = fit.Quality.Mape,
                MapeByPhase = new Dictionary<string, double>(fit.Quality.MapeByPhase),
                LeaveOneOutMape = double.IsNaN(fit.Quality.LeaveOneOutMape) ? null : fit.Quality.LeaveOneOutMape,
                MaxAbsPercentError = fit.Quality.MaxAbsPercentError * 100,
                InterpolatedLeaveOneOutMape = double.IsNaN(held.LeaveOneOutMape) ? null : held.LeaveOneOutMape,
                InterpolatedLeaveOneOutByPhase = held.LeaveOneOutByPhase.Count > 0 ? new Dictionary<string, double>(held.LeaveOneOutByPhase) : null,
                MapeByOperator = input.Operators.Count > 0 ? new Dictionary<string, OperatorFitQuality>(input.Operators) : null,
            },
            Provenance = new CalibrationProvenance
            {
                Sources = files.Select(f => Path.GetRelativePath(Directory.GetCurrentDirectory(), f)).ToList(),
                Devices = [input.Device],
                TraceMetadata = metadata.Where(kv => kv.Key is "rlms.ort_version" or "rlms.driver_version" or "rlms.cuda_version"
                        or "rlms.date" or "rlms.source_commit" or "rlms.source_license" or "rlms.command" or "rlms.device" or "rlms.dtype" or "rlms.engine_version")
                    .ToDictionary(kv => kv.Key, kv => kv.Value),
                Command = request.Command,
            },
        };
        return new BuiltCalibration(file, fit, held, samples.Count);
    }

    /// <summary>
    /// The engine's host work per iteration, from replays' iterations.parquet: each iteration's gap since the previous
    /// one less the time the engine waited for an arrival in it (idle_ms), the first iteration of each run left out
    /// (it waits for the run's first arrival and pays the run's start).
    /// </summary>
    public static HostOverhead? MeasureHostOverhead(IEnumerable<string> from)
    {
        var paths = from.Where(p => p.Length > 0).ToList();
        if (paths.Count == 0) return null;
        var gapsUs = new List<double>();
        var sources = new List<string>();
        foreach (var path in paths)
        {
            var file = Directory.Exists(path) ? Path.Combine(path, "iterations.parquet") : path;
            if (!File.Exists(file)) throw new UserInputException($"--host-overhead: {path}: no rlms replay iterations.parquet there");
            var schema = TraceReader.Metadata(file).GetValueOrDefault("rlms.schema") ?? "";
            if (schema != "replay_iteration")
                throw new UserInputException($"--host-overhead: {file}: rlms.schema is '{schema}'; host overhead is measured from an rlms replay's iterations.parquet (replay_iteration)");
            if (!TraceReader.Columns(file).Contains("idle_ms"))
                throw new UserInputException($"--host-overhead: {file}: no idle_ms column (replayed by an older rlms, whose gaps mix idle waits with host work); replay it again");
            foreach (var r in TraceReader.Read<Replay.ReplayIterationRow>(file).Where(r => r.Iteration > 0))
                gapsUs.Add(Math.Max(0, r.GapMs - r.IdleMs) * 1000);
            sources.Add(Path.GetRelativePath(Directory.GetCurrentDirectory(), file));
        }
        if (gapsUs.Count == 0) throw new UserInputException($"--host-overhead: {string.Join(", ", paths)}: no iterations after the first");
        return new HostOverhead
        {
            PerIterationUs = gapsUs.Average(),
            MedianUs = MathNet.Numerics.Statistics.Statistics.Median(gapsUs),
            Iterations = gapsUs.Count,
            Sources = sources,
        };
    }

    /// <summary>What a trace kind contributes to a calibration: samples on the grid, identity and the measuring stack.</summary>
    private sealed record CalibrationInput(List<CalibrationSample> Samples, ModelArchitecture Model, GpuSpec Gpu, int Tp, string Device,
        string Dtype, string Source, (string Engine, string Version) Stack, IReadOnlyDictionary<string, OperatorFitQuality> Operators,
        IReadOnlyDictionary<string, string> Derived, OperatorTables? Tables = null);

    private static (string Model, string Device, int Tp) OneCombination<T>(IReadOnlyList<string> files, IEnumerable<T> rows, Func<T, (string, string, int)> key)
    {
        var combos = rows.Select(key).Distinct().ToList();
        if (combos.Count == 0) throw new UserInputException($"{string.Join(", ", files)}: no rows match the filters");
        if (combos.Count > 1)
            throw new UserInputException($"the traces hold {combos.Count} model/device/TP combinations ({string.Join("; ", combos.Take(6).Select(c => $"{c.Item1} on {c.Item2} TP{c.Item3}"))}{(combos.Count > 6 ? "; ..." : "")}); choose one with --trace-model, --trace-device and --tp");
        return combos[0];
    }

    private static bool Keep(CalibrationRequest q, string model, string device, int tp) =>
        (q.TraceModel is null || Eq(model, q.TraceModel)) && (q.TraceDevice is null || Eq(device, q.TraceDevice)) && (q.Tp is null || tp == q.Tp);

    private CalibrationInput FromIterations(CalibrationRequest q, IReadOnlyList<string> files)
    {
        var rows = files.SelectMany(f => TraceReader.Read<IterationRow>(f)).Where(r => Keep(q, r.Model, r.Device, r.Tp)).ToList();
        var (traceModel, device, tp) = OneCombination(files, rows, r => (r.Model, r.Device, r.Tp));
        var model = ResolveModel(q.Model ?? traceModel);
        var gpu = ResolveGpu(q.Gpu ?? device);

        // Our own generation loops may run fewer layers than the model has (--gen-layers): only whole models calibrate.
        var usable = rows.Where(r => r.Source != "rlms-profile" || r.Layers == model.Layers).ToList();
        if (usable.Count == 0)
            throw new UserInputException($"no iteration rows of the whole {model.Layers}-layer model; profile with --gen-layers 0 (all layers)");
        bool mean = q.Statistic == "mean";
        double Time(IterationRow r) => mean && r.TimeUsMean is > 0 ? r.TimeUsMean.Value : r.TimeUsMedian;
        var samples = usable
            .Where(r => r.TimeUsMedian > 0 && !IsWarmUp(r))
            .Select(r => r.Phase == "prefill"
                ? CalibrationSample.Prefill(r.Batch, r.NewTokens, Time(r))
                : CalibrationSample.Decode(r.Batch, r.Context, Time(r)))
            .ToList();
        var source = usable[0].Source;
        var meta = TraceReader.Metadata(files[0]);
        var stack = source == "rlms-profile"
            ? ("ort", "ONNX Runtime " + meta.GetValueOrDefault("rlms.ort_version", "(version not recorded)"))
            : source == "splitwise"
                ? ("splitwise", "Splitwise's DGX measurements (ISCA 2024); perf_model.csv does not record the serving engine")
                : (source, "");
        return new CalibrationInput(samples, model, gpu, tp, device, usable[0].Dtype, source, stack, new Dictionary<string, OperatorFitQuality>(), new Dictionary<string, string>());
    }

    /// <summary>
    /// Decode steps of our own profile loops that still warm up after the loop's prompts, which a calibration of the
    /// steady state leaves out: the first decode step of every loop, and in the serving engine's loops (--kv-mode
    /// serving) the first <see cref="ServingWarmUpSteps"/>. Measured on the development VM (three interleaved profiles
    /// of `tiny`, docs/fidelity.md): steps 1-7 cost 1.85, 1.16, 1.09, 1.05, 1.05, 1.03, 1.02 times the loop's later
    /// steps — the prompts evicted the decode's working set from the caches. Interpolating the residuals between the
    /// last step of one loop and such a warm step of the next put up to 30% into the contexts between them.
    /// </summary>
    private static bool IsWarmUp(IterationRow r) =>
        r.Source == "rlms-profile" && r.Phase == "decode" && (r.Step == 1 || (r.KvMode == "serving" && r.Step <= ServingWarmUpSteps));

    private CalibrationInput FromOperators(CalibrationRequest q, IReadOnlyList<string> files)
    {
        var all = files.SelectMany(f => TraceReader.Read<OperatorRow>(f)).ToList();
        bool IsNetwork(OperatorRow r) => r.SourceOp is "all_reduce" or "send_recv";
        var compute = all.Where(r => !IsNetwork(r) && r.SourceOp is not ("skew" or "skew_fit" or "moe") && Keep(q, r.Model, r.Device, r.Tp)).ToList();
        var (traceModel, device, tp) = OneCombination(files, compute, r => (r.Model, r.Device, r.Tp));
        var model = ResolveModel(q.Model ?? traceModel);
        var gpu = ResolveGpu(q.Gpu ?? device);
        var topology = q.Network ?? device + "_dgx";
        var network = all.Where(r => IsNetwork(r) && Eq(r.Device, topology)).ToList();
        if (q.Network is not null && network.Count == 0)
            throw new UserInputException($"--network: no collective rows for topology '{q.Network}' in {string.Join(", ", files)}");
        // LLMServingSim profiles the MoE block once, at TP1 (its simulator's _lookup_moe reads tp1 for every TP).
        var moe = all.Where(r => r.SourceOp == "moe" && r.Tp == 1 && Eq(r.Model, traceModel) && Eq(r.Device, device)).ToList();
        var composed = OperatorComposer.Compose(compute, network, model, gpu, tp);
        var derived = new Dictionary<string, string>(composed.Derived);
        if (network.Count > 0 && tp > 1) derived["all_reduce_source"] = $"measured NCCL all_reduce, topology {topology}, {tp} workers";
        var source = compute[0].Source;
        var skewFit = all.Where(r => r.SourceOp == "skew_fit" && r.Tp == tp && Eq(r.Model, traceModel) && Eq(r.Device, device)).ToList();
        var tables = source == "llmservingsim" ? OperatorComposer.LlmServingSimTables(compute, moe, model, gpu, tp, skewFit) : null;
        // With the tables kept, the regression and residuals are fitted to what the tables compose, so the fit
        // quality reported describes the model the simulator runs.
        var samples = tables is null ? composed.Samples.ToList() : OperatorComposer.SamplesFrom(tables, composed.Samples);
        if (tables is not null)
            derived["composition"] = "per iteration from the operator tables, as LLMServingSim's trace_generator composes its profile" +
                (tables.AttentionSkew is null ? " (no skew correction: the profile has no skew fit)" : ", with its skew correction of decode attention (skew_fit)");
        var meta = TraceReader.Metadata(files[0]);
        var stack = source switch
        {
            "llmservingsim" => ("vllm", meta.GetValueOrDefault("rlms.engine_version") is { Length: > 0 } v ? v : "vLLM (LLMServingSim profiler)"),
            "llmservingsim-v0" => ("vllm", "vLLM V0 (LLMServingSim's original PyTorch-profiler layer profile, 2024)"),
            "vidur" => ("sarathi-serve", "Vidur's 2024 profiler (sarathi-serve kernels, microsoft/vidur @ 7d47513)"),
            _ => (source, ""),
        };
        return new CalibrationInput(samples, model, gpu, tp, device, compute[0].Dtype, source + " operators", stack, composed.Operators, derived, tables);
    }

    private CalibrationInput FromCoefficients(CalibrationRequest q, IReadOnlyList<string> files)
    {
        var rows = files.SelectMany(f => TraceReader.Read<CoefficientRow>(f))
            .Where(r => r.Kind != "kv_capacity" && Keep(q, r.Model, r.Device, r.Tp) && (q.Engine is null || Eq(r.Engine, q.Engine))).ToList();
        var (traceModel, device, tp) = OneCombination(files, rows, r => (r.Model, r.Device, r.Tp));
        var engines = rows.Select(r => r.Engine).Distinct().ToList();
        if (engines.Count > 1) throw new UserInputException($"the traces hold fits of several engines ({string.Join(", ", engines)}); choose one with --engine");
        var model = ResolveModel(q.Model ?? traceModel);
        var gpu = ResolveGpu(q.Gpu ?? device);
        var samples = CoefficientComposer.Compose(rows, model).ToList();
        var derived = new Dictionary<string, string>
        {
            ["all"] = $"samples evaluated from {rows[0].Source}'s published fits ({engines[0]} engine), not raw measurements",
        };
        // DistServe's profiler-a100-80g.{distserve,vllm}.json: fits of DistServe's own engine and of the vLLM it compared with (2023-24).
        var stack = engines[0] == "vllm" ? ("vllm", "vLLM as DistServe profiled it (2023-24, before chunked prefill)") : (engines[0], "DistServe engine (OSDI 2024)");
        return new CalibrationInput(samples, model, gpu, tp, device, model.Dtype, rows[0].Source + " " + engines[0], stack, new Dictionary<string, OperatorFitQuality>(), derived);
    }

    private static bool Eq(string a, string b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

    private static string ResolveFile(string path)
    {
        if (Directory.Exists(path))
        {
            // A replay's run folder: its own iterations.parquet is the replay's record; the profile is beside it.
            var profile = Path.Combine(path, Replay.ReplayRunner.ProfileFile);
            if (File.Exists(profile)) return profile;
            var f = Path.Combine(path, "iterations.parquet");
            var found = File.Exists(f) ? f : Directory.EnumerateFiles(path, "*.parquet").Order(StringComparer.Ordinal).FirstOrDefault();
            return found ?? throw new UserInputException($"{path}: no iterations.parquet in this folder");
        }
        RLMServing.IO.Files.InputFile.CheckRegular(path, "trace");
        return path;
    }

    private ModelArchitecture ResolveModel(string name)
    {
        try { return catalog.Model(name); }
        catch (CatalogException e) { throw new UserInputException($"--model: {e.Message}"); }
    }

    /// <summary>A catalog GPU by name or alias; profiles name devices as drivers do ("NVIDIA H100 80GB HBM3").</summary>
    private GpuSpec ResolveGpu(string device)
    {
        foreach (var candidate in new[] { device, device.Replace("NVIDIA ", "", StringComparison.OrdinalIgnoreCase).Trim() })
            if (catalog.Gpus.Any(g => Eq(g.Name, candidate) || g.Aliases.Any(a => Eq(a, candidate)))) return catalog.Gpu(candidate);
        // Our own CPU profiles name the processor model as their device; the catalog's CPU entry is that device.
        if (!_gpuGiven && _cpuTraces && catalog.Gpus.FirstOrDefault(g => Eq(g.Name, CpuDevice)) is { } cpu) return cpu;
        string what = _gpuGiven ? $"'{device}'" : $"the traces' device '{device}'";
        throw new UserInputException($"--gpu: {what} is not a catalog GPU name or alias; pass --gpu NAME, one of: {string.Join(", ", catalog.Gpus.Select(g => g.Name).Order(StringComparer.Ordinal))}");
    }

    /// <summary>The catalog's entry for the host processor (catalog/gpus.yaml).</summary>
    private const string CpuDevice = "CPU";

    // Set per Build: whether --gpu was given, and whether the traces were measured on ONNX Runtime's CPU provider.
    private bool _gpuGiven;
    private bool _cpuTraces;

    internal static string Percent(double v) => double.IsNaN(v) ? "n/a" : (v * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";
}
