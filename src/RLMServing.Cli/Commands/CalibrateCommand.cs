using System.Globalization;
using CommandLine;
using RLMServing.IO.Calibration;
using RLMServing.IO.Catalog;
using RLMServing.Profiling.Calibration;
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
        RLMServing.IO.Results.OutputPath.CheckFile(Out, "--out");
        using var cancel = CancelScope.Start();
        cancel.Kept = $"{Out} was not written";
        var builder = new CalibrationBuilder(CatalogLoader.LoadDefault(Catalog));
        var built = builder.Build(new CalibrationRequest
        {
            Traces = Traces.ToList(), Model = Model, Gpu = Gpu, TraceModel = TraceModel, TraceDevice = TraceDevice, Tp = Tp,
            Engine = Engine, Network = Network, Statistic = Statistic, HostOverheadFrom = HostOverheadFrom.ToList(),
            Command = "rlms " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
        });
        CalibrationStore.Write(Out, built.File);
        var (fit, held, host) = (built.Fit, built.Held, built.File.HostOverhead);
        if (Quiet)
        {
            Console.WriteLine(Out);
            return 0;
        }
        string Pct(double v) => double.IsNaN(v) ? "n/a" : (v * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";
        AnsiConsole.MarkupLine(Markup.Escape(
            $"{built.File.Model} on {built.File.Gpu} TP{built.File.TensorParallel}: {built.Samples} iterations, regression MAPE {Pct(fit.Quality.Mape)} " +
            $"({string.Join(", ", fit.Quality.MapeByPhase.Select(p => $"{p.Key} {Pct(p.Value)}"))}), leave-one-out {Pct(fit.Quality.LeaveOneOutMape)}, " +
            $"with interpolated residuals {Pct(held.LeaveOneOutMape)}" +
            (host is null ? "" : string.Create(CultureInfo.InvariantCulture, $"; host overhead {host.PerIterationUs:F1} µs per iteration (median {host.MedianUs:F1}) from {host.Iterations} replayed iterations")) +
            (built.File.OperatorTables is null ? "" : "; per-layer operator tables kept (composed per iteration as LLMServingSim does)") +
            $"; measured on {built.File.Engine} {built.File.EngineVersion} -> {Out}"));
        return 0;
    }
}
