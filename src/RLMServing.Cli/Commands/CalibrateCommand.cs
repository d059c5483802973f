using System.Globalization;
using CommandLine;
using RLMServing.Calibration;
using RLMServing.Catalog;
using RLMServing.IO.Calibration;
using RLMServing.IO.Catalog;
using RLMServing.Profiling.Calibration;
using RLMServing.Profiling.Traces;
using Spectre.Console;

namespace RLMServing.Cli.Commands;

[Verb("calibrate", HelpText = "Fit a cost model to measured traces (iteration, operator or coefficient schema): 'calibrate TRACES... --out calibration/NAME.json'.")]
public sealed class CalibrateCommand : ICommand
{
    [Value(0, MetaName = "TRACES", Required = true, HelpText = "Trace files (iterations.parquet, imported operator or coefficient traces), or folders holding one (a replay's run folder: its profile-iterations.parquet, from rlms replay --interleave-profile).")]
    public IEnumerable<string> Traces { get; set; } = [];

    [Option("out", Required = true, HelpText = "Calibration file to write (e.g. calibration/h200-deepseek-r1-distill-qwen-7b-tp1.json).")]
    public string Out { get; set; } = "";

    [Option("model", HelpText = "Catalog model the calibration is for (default: the traces' model name).")]
    public string? Model { get; set; }

    [Option("gpu", HelpText = "Catalog GPU the calibration is for (default: from the traces' device name).")]
    public string? Gpu { get; set; }

    [Option("trace-model", HelpText = "Use only rows of this model (traces holding several, e.g. Splitwise).")]
    public string? TraceModel { get; set; }

    [Option("trace-device", HelpText = "Use only rows of this device.")]
    public string? TraceDevice { get; set; }

    [Option("tp", HelpText = "Use only rows of this tensor-parallel degree.")]
    public int? Tp { get; set; }

    [Option("catalog", HelpText = "Extra catalog folders or files.")]
    public IEnumerable<string> Catalog { get; set; } = [];

    [Option("engine", HelpText = "Use only coefficient rows of this engine (DistServe: distserve or vllm).")]
    public string? Engine { get; set; }

    [Option("network", HelpText = "Collective-profile topology for tensor-parallel communication in operator traces (default: <device>_dgx where present).")]
    public string? Network { get; set; }

    [Option("statistic", Default = "median",
        HelpText = "Which statistic of an iteration trace's repetitions to fit: median (robust to outliers; the default) or mean " +
                   "(what a long run adds up: for a machine whose speed drifts, profiled with repetitions spread over the run; docs/fidelity.md).")]
    public string Statistic { get; set; } = "median";

    [Option("host-overhead", Separator = ',',
        HelpText = "Replays of the engine (rlms replay run folders or their iterations.parquet, comma-separated) to measure its host work per " +
                   "iteration from (the gaps between iterations less the idle waits); stored as host_overhead and added to every simulated iteration. " +
                   "Use replays other than the ones the calibration will be validated against.")]
    public IEnumerable<string> HostOverheadFrom { get; set; } = [];

    [Option("quiet", HelpText = "No fit summary; only errors and the output path.")]
    public bool Quiet { get; set; }

    public int Run()
    {
        if (Statistic is not ("median" or "mean"))
            throw new UserInputException($"--statistic: '{Statistic}' is not one of median, mean");
        var catalog = CatalogLoader.LoadDefault(Catalog);
        var files = Traces.Select(ResolveFile).ToList();
        RLMServing.IO.Results.OutputPath.CheckFile(Out, "--out");
        using var cancel = CancelScope.Start();
        cancel.Kept = $"{Out} was not written";
        var schemas = files.Select(f => (File: f, Schema: TraceReader.Metadata(f).GetValueOrDefault("rlms.schema") ?? "")).ToList();
        var schema = schemas[0].Schema;
        _cpuTraces = files.All(f => TraceReader.Metadata(f).GetValueOrDefault("rlms.execution_provider") == "CPUExecutionProvider");
        if (schemas.FirstOrDefault(x => x.Schema != schema) is { File: not null } other)
            throw new UserInputException($"{other.File}: a {other.Schema} trace cannot be calibrated together with {schemas[0].File} ({schema})");
        if (Statistic != "median" && schema != "iteration")
            throw new UserInputException($"--statistic {Statistic}: only iteration traces can be fitted by their mean; {files[0]} is a {schema} trace");
        var input = schema switch
        {
            "iteration" => FromIterations(files, catalog),
            "operator" => FromOperators(files, catalog),
            "coefficients" => FromCoefficients(files, catalog),
            _ => throw new UserInputException($"{files[0]}: rlms.schema is '{schema}'; calibrate reads iteration, operator or coefficients traces"),
        };
        var host = MeasureHostOverhead();
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
        var file = new CalibrationFile
        {
            Model = input.Model.Name,
            Gpu = input.Gpu.Name,
            TensorParallel = input.Tp,
            Dtype = input.Dtype,
            Engine = input.Engine,
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
                TraceMetadata = TraceReader.Metadata(files[0]).Where(kv => kv.Key is "rlms.ort_version" or "rlms.driver_version" or "rlms.cuda_version"
                        or "rlms.date" or "rlms.source_commit" or "rlms.source_license" or "rlms.command" or "rlms.device" or "rlms.dtype")
                    .ToDictionary(kv => kv.Key, kv => kv.Value),
                Command = "rlms " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
            },
        };
        CalibrationStore.Write(Out, file);
        if (Quiet)
        {
            Console.WriteLine(Out);
            return 0;
        }
        string Pct(double v) => double.IsNaN(v) ? "n/a" : (v * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";
        AnsiConsole.MarkupLine(Markup.Escape(
            $"{input.Model.Name} on {input.Gpu.Name} TP{input.Tp}: {samples.Count} iterations, regression MAPE {Pct(fit.Quality.Mape)} " +
            $"({string.Join(", ", fit.Quality.MapeByPhase.Select(p => $"{p.Key} {Pct(p.Value)}"))}), leave-one-out {Pct(fit.Quality.LeaveOneOutMape)}, " +
            $"with interpolated residuals {Pct(held.LeaveOneOutMape)}" +
            (host is null ? "" : string.Create(CultureInfo.InvariantCulture, $"; host overhead {host.PerIterationUs:F1} µs per iteration (median {host.MedianUs:F1}) from {host.Iterations} replayed iterations")) +
            $" -> {Out}"));
        return 0;
    }

    /// <summary>
    /// The engine's host work per iteration, from replays' iterations.parquet: each iteration's gap since the previous
    /// one less the time the engine waited for an arrival in it (idle_ms), the first iteration of each run left out
    /// (it waits for the run's first arrival and pays the run's start).
    /// </summary>
    private HostOverhead? MeasureHostOverhead()
    {
        var paths = HostOverheadFrom.Where(p => p.Length > 0).ToList();
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
            foreach (var r in TraceReader.Read<Profiling.Replay.ReplayIterationRow>(file).Where(r => r.Iteration > 0))
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

    /// <summary>What a trace kind contributes to a calibration: samples on the grid and identity.</summary>
    private sealed record CalibrationInput(List<CalibrationSample> Samples, ModelArchitecture Model, GpuSpec Gpu, int Tp, string Device,
        string Dtype, string Engine, IReadOnlyDictionary<string, OperatorFitQuality> Operators, IReadOnlyDictionary<string, string> Derived);

    private (string Model, string Device, int Tp) OneCombination<T>(IReadOnlyList<string> files, IEnumerable<T> rows, Func<T, (string, string, int)> key)
    {
        var combos = rows.Select(key).Distinct().ToList();
        if (combos.Count == 0) throw new UserInputException($"{string.Join(", ", files)}: no rows match the filters");
        if (combos.Count > 1)
            throw new UserInputException($"the traces hold {combos.Count} model/device/TP combinations ({string.Join("; ", combos.Take(6).Select(c => $"{c.Item1} on {c.Item2} TP{c.Item3}"))}{(combos.Count > 6 ? "; ..." : "")}); choose one with --trace-model, --trace-device and --tp");
        return combos[0];
    }

    private bool Keep(string model, string device, int tp) =>
        (TraceModel is null || Eq(model, TraceModel)) && (TraceDevice is null || Eq(device, TraceDevice)) && (Tp is null || tp == Tp);

    private CalibrationInput FromIterations(IReadOnlyList<string> files, HardwareCatalog catalog)
    {
        var rows = files.SelectMany(f => TraceReader.Read<IterationRow>(f)).Where(r => Keep(r.Model, r.Device, r.Tp)).ToList();
        var (traceModel, device, tp) = OneCombination(files, rows, r => (r.Model, r.Device, r.Tp));
        var model = ResolveModel(catalog, Model ?? traceModel);
        var gpu = ResolveGpu(catalog, Gpu ?? device);

        // Our own generation loops may run fewer layers than the model has (--gen-layers): only whole models calibrate.
        var usable = rows.Where(r => r.Source != "rlms-profile" || r.Layers == model.Layers).ToList();
        if (usable.Count == 0)
            throw new UserInputException($"no iteration rows of the whole {model.Layers}-layer model; profile with --gen-layers 0 (all layers)");
        bool mean = Statistic == "mean";
        double Time(IterationRow r) => mean && r.TimeUsMean is > 0 ? r.TimeUsMean.Value : r.TimeUsMedian;
        var samples = usable
            .Where(r => r.TimeUsMedian > 0 && !IsWarmUp(r))
            .Select(r => r.Phase == "prefill"
                ? CalibrationSample.Prefill(r.Batch, r.NewTokens, Time(r))
                : CalibrationSample.Decode(r.Batch, r.Context, Time(r)))
            .ToList();
        return new CalibrationInput(samples, model, gpu, tp, device, usable[0].Dtype, usable[0].Source, new Dictionary<string, OperatorFitQuality>(), new Dictionary<string, string>());
    }

    /// <summary>Decode steps of the serving engine's profile loops that still warm up after the loop's prompts (on CPU).</summary>
    public const int ServingWarmUpSteps = Profiling.Replay.ServingProfile.WarmUpSteps;

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

    private CalibrationInput FromOperators(IReadOnlyList<string> files, HardwareCatalog catalog)
    {
        var all = files.SelectMany(f => TraceReader.Read<OperatorRow>(f)).ToList();
        bool IsNetwork(OperatorRow r) => r.SourceOp is "all_reduce" or "send_recv";
        var compute = all.Where(r => !IsNetwork(r) && r.SourceOp != "skew" && Keep(r.Model, r.Device, r.Tp)).ToList();
        var (traceModel, device, tp) = OneCombination(files, compute, r => (r.Model, r.Device, r.Tp));
        var model = ResolveModel(catalog, Model ?? traceModel);
        var gpu = ResolveGpu(catalog, Gpu ?? device);
        var topology = Network ?? device + "_dgx";
        var network = all.Where(r => IsNetwork(r) && Eq(r.Device, topology)).ToList();
        if (Network is not null && network.Count == 0)
            throw new UserInputException($"--network: no collective rows for topology '{Network}' in {string.Join(", ", files)}");
        var composed = OperatorComposer.Compose(compute, network, model, gpu, tp);
        var derived = new Dictionary<string, string>(composed.Derived);
        if (network.Count > 0 && tp > 1) derived["all_reduce_source"] = $"measured NCCL all_reduce, topology {topology}, {tp} workers";
        return new CalibrationInput([.. composed.Samples], model, gpu, tp, device, compute[0].Dtype, compute[0].Source + " operators", composed.Operators, derived);
    }

    private CalibrationInput FromCoefficients(IReadOnlyList<string> files, HardwareCatalog catalog)
    {
        var rows = files.SelectMany(f => TraceReader.Read<CoefficientRow>(f))
            .Where(r => r.Kind != "kv_capacity" && Keep(r.Model, r.Device, r.Tp) && (Engine is null || Eq(r.Engine, Engine))).ToList();
        var (traceModel, device, tp) = OneCombination(files, rows, r => (r.Model, r.Device, r.Tp));
        var engines = rows.Select(r => r.Engine).Distinct().ToList();
        if (engines.Count > 1) throw new UserInputException($"the traces hold fits of several engines ({string.Join(", ", engines)}); choose one with --engine");
        var model = ResolveModel(catalog, Model ?? traceModel);
        var gpu = ResolveGpu(catalog, Gpu ?? device);
        var samples = CoefficientComposer.Compose(rows, model).ToList();
        var derived = new Dictionary<string, string>
        {
            ["all"] = $"samples evaluated from {rows[0].Source}'s published fits ({engines[0]} engine), not raw measurements",
        };
        return new CalibrationInput(samples, model, gpu, tp, device, model.Dtype, rows[0].Source + " " + engines[0], new Dictionary<string, OperatorFitQuality>(), derived);
    }

    private static bool Eq(string a, string b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

    private static string ResolveFile(string path)
    {
        if (Directory.Exists(path))
        {
            // A replay's run folder: its own iterations.parquet is the replay's record; the profile is beside it.
            var profile = Path.Combine(path, Profiling.Replay.ReplayRunner.ProfileFile);
            if (File.Exists(profile)) return profile;
            var f = Path.Combine(path, "iterations.parquet");
            var found = File.Exists(f) ? f : Directory.EnumerateFiles(path, "*.parquet").Order(StringComparer.Ordinal).FirstOrDefault();
            return found ?? throw new UserInputException($"{path}: no iterations.parquet in this folder");
        }
        RLMServing.IO.Files.InputFile.CheckRegular(path, "trace");
        return path;
    }

    private static ModelArchitecture ResolveModel(HardwareCatalog catalog, string name)
    {
        try { return catalog.Model(name); }
        catch (CatalogException e) { throw new UserInputException($"--model: {e.Message}"); }
    }

    private GpuSpec ResolveGpu(HardwareCatalog catalog, string device)
    {
        foreach (var candidate in new[] { device, device.Replace("NVIDIA ", "", StringComparison.OrdinalIgnoreCase).Trim() })
            if (catalog.Gpus.Any(g => Eq(g.Name, candidate) || g.Aliases.Any(a => Eq(a, candidate)))) return catalog.Gpu(candidate);
        // Our own CPU profiles name the processor model as their device; the catalog's CPU entry is that device.
        if (Gpu is null && _cpuTraces && catalog.Gpus.FirstOrDefault(g => Eq(g.Name, CpuDevice)) is { } cpu) return cpu;
        string what = Gpu is null ? $"the traces' device '{device}'" : $"'{device}'";
        throw new UserInputException($"--gpu: {what} is not a catalog GPU name or alias; pass --gpu NAME, one of: {string.Join(", ", catalog.Gpus.Select(g => g.Name).Order(StringComparer.Ordinal))}");
    }

    /// <summary>The catalog's entry for the host processor (catalog/gpus.yaml).</summary>
    private const string CpuDevice = "CPU";

    /// <summary>Whether the traces were measured on ONNX Runtime's CPU execution provider (their metadata says so).</summary>
    private bool _cpuTraces;
}
