using System.Globalization;
using CommandLine;
using RLMServing.IO.Catalog;
using RLMServing.IO.Results;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Metrics;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Replay;
using RLMServing.Profiling.Runtime;
using Spectre.Console;

namespace RLMServing.Cli.Commands;

[Verb("replay", HelpText = "Run a scenario's workload on a real ONNX Runtime serving engine; write measured results in the simulator's schema.")]
public sealed class ReplayCommand : ICommand
{
    [Value(0, MetaName = "SCENARIO", Required = true, HelpText = "Scenario YAML file.")]
    public string File { get; set; } = "";

    [Option("out", Required = true, HelpText = "Output folder (one subfolder per variant).")]
    public string Out { get; set; } = "";

    [Option("set", HelpText = "Override a scenario key: dotted.key=value (repeatable).")]
    public IEnumerable<string> Set { get; set; } = [];

    [Option("catalog", HelpText = "Extra catalog folders or files (GPUs, models) added to the bundled catalog.")]
    public IEnumerable<string> Catalog { get; set; } = [];

    [Option("device", Default = "cpu", HelpText = "cpu, cuda or cuda:N (CUDA needs a build with -p:OrtGpu=true).")]
    public string Device { get; set; } = "cpu";

    [Option("dtype", HelpText = "fp32, fp16 or bf16 (default: fp32 on cpu, fp16 on cuda).")]
    public string? Dtype { get; set; }

    [Option("threads", Default = 0, HelpText = "ONNX Runtime intra-op threads (0: runtime default); profile with the same.")]
    public int Threads { get; set; }

    [Option("clock", Default = "wall", HelpText = "wall (the wall clock) or cpu (the engine thread's CPU time: load on other cores does not count, idle waits for arrivals are skipped; needs --device cpu --threads 1).")]
    public string Clock { get; set; } = "wall";

    [Option("variant", HelpText = "Replay only these variants (comma-separated; default: all).", Separator = ',')]
    public IEnumerable<string> Variants { get; set; } = [];

    [Option("interleave-profile", HelpText = "Profile the serving engine in the replay's idle moments with this grid's generation points (e.g. serving) and write " +
        "profile-iterations.parquet beside each run, for rlms calibrate: a profile of the same minutes of the machine as the replay (docs/fidelity.md).")]
    public string? InterleaveProfile { get; set; }

    [Option("interleave-share", Default = InterleaveOptions.DefaultShare, HelpText = "With --interleave-profile: profile time as a share of the replay's busy time.")]
    public double InterleaveShare { get; set; } = InterleaveOptions.DefaultShare;

    [Option("metric-percentiles", HelpText = MetricPercentilesOption.HelpText)]
    public string? MetricPercentiles { get; set; }

    [Option("quiet", HelpText = "No progress bar or tables; only errors and the output path.")]
    public bool Quiet { get; set; }

    [Option("seed", HelpText = "Override the scenario seed (the requests replayed are the ones the simulator generates from it).")]
    public int? Seed { get; set; }

    public int Run()
    {
        if (Threads < 0) throw new UserInputException($"--threads: must be 0 (the runtime's default) or more, got {Threads}");
        var catalog = CatalogLoader.LoadDefault(Catalog);
        var file = ScenarioLoader.Load(File, Set.Concat(MetricPercentilesOption.AsSet(MetricPercentiles)), Seed);
        var runs = ScenarioRunner.Prepare(file, new ScenarioInputs(catalog, Catalog));
        var only = Variants.ToList();
        var unknown = only.Where(v => runs.All(r => r.Name != v)).ToList();
        if (unknown.Count > 0)
            throw new UserInputException($"--variant: {string.Join(", ", unknown)} not in {File} (variants: {string.Join(", ", runs.Select(r => r.Name))})");
        if (only.Count > 0) runs = runs.Where(r => only.Contains(r.Name)).ToList();
        foreach (var run in runs) ReplayRunner.Check(run, File);   // every run is checked before anything runs
        var spec = DeviceSpec.Parse(Device);
        var clock = EngineClock.Parse(Clock);
        EngineClock.CheckUsable(clock, spec, Threads);
        var dtype = TransformerGraphs.ParseDtype(Dtype ?? (spec.Cuda ? "fp16" : "fp32"));
        if (!spec.Cuda)
            foreach (var run in runs) ReplayRunner.CheckMemory(run, File, dtype, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);
        var interleave = InterleaveProfile is null ? null : InterleaveOptions.Parse(InterleaveProfile, InterleaveShare);
        if (InterleaveProfile is null && InterleaveShare != InterleaveOptions.DefaultShare)
            throw new UserInputException("--interleave-share: needs --interleave-profile GRID");
        var command = "rlms replay " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));

        using var cts = CancelScope.StartCooperative();
        using var folder = OutputFolder.Open(Out, "--out", "replay");
        var summaries = new List<RunSummary>();
        {
            using var device = new DeviceContext(spec, Threads);
            foreach (var run in runs)
            {
                string? variant = file.HasVariants ? run.Name : null;
                var dir = variant is null ? Out : Path.Combine(Out, variant);
                ReplayResult result;
                try { result = WithProgress(run, variant, device, dtype, clock, interleave, cts.Token); }
                catch (OperationCanceledException)
                {
                    Console.Error.WriteLine($"interrupted: {variant ?? file.Name} was not written (a partial run would be a biased sample); " +
                        $"{summaries.Count} finished run(s) kept in {Out}");
                    if (summaries.Count > 0) folder.Commit();
                    return CancelScope.InterruptedExitCode;
                }
                ReplayRunner.WriteAsync(dir, result, ReplayRunner.Metadata(run, variant, command, result, Threads)).GetAwaiter().GetResult();
                summaries.Add(result.Result.Summary);
                folder.Commit();
                if (!Quiet) Console.Error.WriteLine(Line(variant ?? file.Name, result));
            }
        }
        if (file.HasVariants && only.Count == 0) ScenarioRunner.WriteComparisonAsync(Out, file.Name, summaries).GetAwaiter().GetResult();
        if (!Quiet) AnsiConsole.Write(SimulateCommand.SummaryTable($"{file.Name} (replay)", summaries));
        Console.WriteLine($"results: {Out}");
        return 0;
    }

    private static string Line(string name, ReplayResult r)
    {
        var it = r.Iterations;
        double busy = it.Sum(x => x.StepTimeMs), ort = it.Sum(x => x.OrtTimeMs);
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{name}: {r.Result.Summary.Completed} requests, {it.Count} iterations in {r.Result.Summary.Duration:F1} s{(r.Clock == EngineClockKind.Cpu ? " (engine thread CPU time)" : "")} on {r.Device.DeviceName}; " +
            $"ONNX Runtime {ort / 1000:F1} s of {busy / 1000:F1} s busy");
        if (r.Profile is not { } p) return line;
        return line + string.Create(CultureInfo.InvariantCulture,
            $"; interleaved profile ({p.Grid} grid, {p.Points} points): {p.ProfileS:F1} s in {p.Sessions} idle moments, {p.Rows.Count} rows -> {ReplayRunner.ProfileFile}");
    }

    private ReplayResult WithProgress(PreparedRun run, string? variant, DeviceContext device, OnnxType dtype, EngineClockKind clock,
        InterleaveOptions? interleave, CancellationToken cancel) =>
        ProgressDisplay.Run($"replaying {variant ?? run.Name}", Quiet,
            p => ReplayRunner.Run(run, variant, device, dtype, p, cancel, clock: clock, interleave: interleave));
}
