using System.Globalization;
using CommandLine;
using RLMServing.Calibration;
using RLMServing.Catalog;
using RLMServing.IO.Calibration;
using RLMServing.IO.Catalog;
using RLMServing.Profiling.Traces;
using Spectre.Console;

namespace RLMServing.Cli.Commands;

[Verb("calibrate", HelpText = "Fit a cost model to measured iteration traces: 'calibrate TRACES... --out calibration/NAME.json'.")]
public sealed class CalibrateCommand : ICommand
{
    [Value(0, MetaName = "TRACES", Required = true, HelpText = "iterations.parquet files, or folders holding one.")]
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

    public int Run()
    {
        var catalog = CatalogLoader.LoadDefault(Catalog);
        var files = Traces.Select(ResolveFile).ToList();
        var rows = files.SelectMany(f => Read(f).Select(r => (File: f, Row: r))).ToList();
        rows = rows.Where(x => (TraceModel is null || Eq(x.Row.Model, TraceModel)) && (TraceDevice is null || Eq(x.Row.Device, TraceDevice))
            && (Tp is null || x.Row.Tp == Tp)).ToList();
        var combos = rows.Select(x => (x.Row.Model, x.Row.Device, x.Row.Tp)).Distinct().ToList();
        if (combos.Count == 0) throw new UserInputException($"{string.Join(", ", files)}: no iteration rows match the filters");
        if (combos.Count > 1)
            throw new UserInputException($"the traces hold {combos.Count} model/device/TP combinations ({string.Join("; ", combos.Take(6).Select(c => $"{c.Model} on {c.Device} TP{c.Tp}"))}{(combos.Count > 6 ? "; ..." : "")}); choose one with --trace-model, --trace-device and --tp");
        var (traceModel, device, tp) = combos[0];
        var model = ResolveModel(catalog, Model ?? traceModel);
        var gpu = ResolveGpu(catalog, Gpu ?? device);

        // Our own generation loops may run fewer layers than the model has (--gen-layers): only whole models calibrate.
        var usable = rows.Select(x => x.Row).Where(r => r.Source != "rlms-profile" || r.Layers == model.Layers).ToList();
        if (usable.Count == 0)
            throw new UserInputException($"no iteration rows of the whole {model.Layers}-layer model; profile with --gen-layers 0 (all layers)");
        var samples = usable
            .Where(r => r.TimeUsMedian > 0 && !(r.Source == "rlms-profile" && r.Phase == "decode" && r.Step == 1)) // first decode step still warms up
            .Select(r => new CalibrationSample(r.Phase == "prefill"
                ? IterationFeatures.Prefill(r.Batch, r.NewTokens)
                : IterationFeatures.Decode(r.Batch, (double)r.Batch * r.Context), r.TimeUsMedian, r.Phase))
            .ToList();
        IterationFitResult fit;
        try { fit = IterationFitter.Fit(samples); }
        catch (ArgumentException e) { throw new UserInputException($"{string.Join(", ", files)}: {e.Message}"); }

        var c = fit.Coefficients;
        var file = new CalibrationFile
        {
            Model = model.Name,
            Gpu = gpu.Name,
            TensorParallel = tp,
            Dtype = usable[0].Dtype,
            Engine = usable[0].Source,
            Coefficients = IterationCoefficients.Names.Zip(c.Vector()).ToDictionary(p => p.First, p => p.Second),
            Unidentified = [.. fit.Unidentified],
            Grid = new CalibrationGrid
            {
                MaxBatch = usable.Max(r => r.Batch),
                MaxContext = usable.Max(r => r.Context),
                MaxPrefillTokens = usable.Where(r => r.Phase == "prefill").Select(r => (long)r.Batch * r.NewTokens).DefaultIfEmpty(0).Max(),
                PrefillSamples = samples.Count(s => s.Phase == "prefill"),
                DecodeSamples = samples.Count(s => s.Phase == "decode"),
            },
            Fit = new CalibrationFitQuality
            {
                Samples = fit.Quality.Samples,
                Mape = fit.Quality.Mape,
                MapeByPhase = new Dictionary<string, double>(fit.Quality.MapeByPhase),
                LeaveOneOutMape = double.IsNaN(fit.Quality.LeaveOneOutMape) ? null : fit.Quality.LeaveOneOutMape,
                MaxAbsPercentError = fit.Quality.MaxAbsPercentError * 100,
            },
            Provenance = new CalibrationProvenance
            {
                Sources = files.Select(f => Path.GetRelativePath(Directory.GetCurrentDirectory(), f)).ToList(),
                Devices = [device],
                TraceMetadata = TraceReader.Metadata(files[0]).Where(kv => kv.Key is "rlms.ort_version" or "rlms.driver_version" or "rlms.cuda_version"
                        or "rlms.date" or "rlms.source_commit" or "rlms.source_license" or "rlms.command" or "rlms.device" or "rlms.dtype")
                    .ToDictionary(kv => kv.Key, kv => kv.Value),
                Command = "rlms calibrate " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
            },
        };
        CalibrationStore.Write(Out, file);
        string Pct(double v) => (v * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";
        AnsiConsole.MarkupLine(Markup.Escape(
            $"{model.Name} on {gpu.Name} TP{tp}: {samples.Count} iterations, fit MAPE {Pct(fit.Quality.Mape)} " +
            $"({string.Join(", ", fit.Quality.MapeByPhase.Select(p => $"{p.Key} {Pct(p.Value)}"))}), leave-one-out {(double.IsNaN(fit.Quality.LeaveOneOutMape) ? "n/a" : Pct(fit.Quality.LeaveOneOutMape))} -> {Out}"));
        return 0;
    }

    private static bool Eq(string a, string b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

    private static string ResolveFile(string path)
    {
        if (Directory.Exists(path))
        {
            var f = Path.Combine(path, "iterations.parquet");
            var found = File.Exists(f) ? f : Directory.EnumerateFiles(path, "*.parquet").Order(StringComparer.Ordinal).FirstOrDefault();
            return found ?? throw new UserInputException($"{path}: no iterations.parquet in this folder");
        }
        return File.Exists(path) ? path : throw new UserInputException($"{path}: trace file not found");
    }

    private static IList<IterationRow> Read(string path)
    {
        var meta = TraceReader.Metadata(path);
        if (meta.GetValueOrDefault("rlms.schema") != "iteration")
            throw new UserInputException($"{path}: not an iteration trace (rlms.schema is '{meta.GetValueOrDefault("rlms.schema")}'); calibrate reads generation-step rows");
        return TraceReader.Read<IterationRow>(path);
    }

    private static ModelArchitecture ResolveModel(HardwareCatalog catalog, string name)
    {
        try { return catalog.Model(name); }
        catch (CatalogException e) { throw new UserInputException($"--model: {e.Message}"); }
    }

    private static GpuSpec ResolveGpu(HardwareCatalog catalog, string device)
    {
        foreach (var candidate in new[] { device, device.Replace("NVIDIA ", "", StringComparison.OrdinalIgnoreCase).Trim() })
            if (catalog.Gpus.Any(g => Eq(g.Name, candidate) || g.Aliases.Any(a => Eq(a, candidate)))) return catalog.Gpu(candidate);
        throw new UserInputException($"--gpu: the traces' device '{device}' is not a catalog GPU name or alias; pass --gpu NAME");
    }
}
