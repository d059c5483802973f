using System.Diagnostics;
using System.Globalization;
using CommandLine;
using RLMServing.IO.Catalog;
using RLMServing.IO.Results;
using RLMServing.Profiling;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Runtime;
using Spectre.Console;

namespace RLMServing.Cli.Commands;

[Verb("profile", HelpText = "Measure per-operator and per-token costs of a model on ONNX Runtime; write Parquet traces.")]
public sealed class ProfileCommand : ICommand
{
    [Option("model", Required = true, HelpText = "Catalog architecture name (random weights) or PATH.onnx (GenAI/Optimum decoder layout).")]
    public string Model { get; set; } = "";

    [Option("device", Default = "cpu", HelpText = "cpu, cuda or cuda:N.")]
    public string Device { get; set; } = "cpu";

    [Option("dtype", HelpText = "fp32, fp16 or bf16 (default: fp32 on cpu, fp16 on cuda).")]
    public string? Dtype { get; set; }

    [Option("grid", Default = "quick", HelpText = "quick, standard, full or serving (generation loops for calibrating a CPU replay).")]
    public string Grid { get; set; } = "quick";

    [Option("out", Required = true, HelpText = "Output folder for operators.parquet, iterations.parquet, kernels.parquet, summary.json.")]
    public string Out { get; set; } = "";

    [Option("kernel-trace", HelpText = "Also run ONNX Runtime's profiler and write per-node rows to kernels.parquet.")]
    public bool KernelTrace { get; set; }

    [Option("gen-layers", Default = 0, HelpText = "Layers of the synthesised generation-loop model (0: all).")]
    public int GenLayers { get; set; }

    [Option("kv-mode", HelpText = "shared (preallocated KV buffer, GenAI style; default for catalog models), concat (default for .onnx files) or serving (rlms replay's engine: KV slots, batch-1 prefills, wall-clock steps).")]
    public string? KvMode { get; set; }

    [Option("groups", Separator = ',', HelpText = "Only these groups: overhead, token_ops, attention, lm_head, layer, generation.")]
    public IEnumerable<string> Groups { get; set; } = [];

    [Option("max-kv-tokens", Default = 0L, HelpText = "Drop grid points whose KV buffer exceeds this many tokens (0: fit 4 GiB per buffer).")]
    public long MaxKvTokens { get; set; }

    [Option("threads", Default = 0, HelpText = "ONNX Runtime intra-op threads (0: runtime default).")]
    public int Threads { get; set; }

    [Option("clock", Default = "wall", HelpText = "wall, or cpu (the engine thread's CPU time; with --groups generation --kv-mode serving --device cpu --threads 1, as rlms replay --clock cpu).")]
    public string Clock { get; set; } = "wall";

    [Option("catalog", HelpText = "Extra catalog folders or files (GPUs, models) added to the bundled catalog.")]
    public IEnumerable<string> Catalog { get; set; } = [];

    [Option("quiet", HelpText = "No progress; only errors and the summary line.")]
    public bool Quiet { get; set; }

    /// <summary>The old spelling of <c>--quiet</c>, still accepted.</summary>
    [Option("no-progress", Hidden = true)]
    public bool NoProgress { get; set; }

    public int Run()
    {
        if (Threads < 0) throw new UserInputException($"--threads: must be 0 (the runtime's default) or more, got {Threads}");
        if (GenLayers < 0) throw new UserInputException($"--gen-layers: must be 0 (all layers) or more, got {GenLayers}");
        if (MaxKvTokens < 0) throw new UserInputException($"--max-kv-tokens: must be 0 (fit 4 GiB) or more, got {MaxKvTokens}");
        var device = DeviceSpec.Parse(Device);
        var dtype = TransformerGraphs.ParseDtype(Dtype ?? (device.Cuda ? "fp16" : "fp32"));
        var grid = ProfileGrid.Get(Grid);
        Catalog.ModelArchitecture? arch = null;
        string? onnx = null;
        string name;
        if (Model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) || File.Exists(Model))
        {
            if (!File.Exists(Model)) throw new UserInputException($"--model: {Model}: file not found");
            onnx = Path.GetFullPath(Model);
            Profiler.CheckOnnx(onnx);
            name = Path.GetFileNameWithoutExtension(Model);
        }
        else
        {
            arch = CatalogLoader.LoadDefault(Catalog).Model(Model);
            name = arch.Name;
            if (arch.HeadDim % 16 != 0)
                throw new UserInputException($"--model {Model}: head_dim {arch.HeadDim} is not a multiple of 16, which GroupQueryAttention with rotary needs");
            long perToken = (long)arch.KvHeads * arch.HeadDim * TransformerGraphs.ElementBytes(dtype);
            grid = grid.Cap(MaxKvTokens > 0 ? MaxKvTokens : uint.MaxValue / perToken);
        }
        KvMode? kvMode = KvMode switch
        {
            null => null,
            "shared" => Profiling.KvMode.Shared,
            "concat" => Profiling.KvMode.Concat,
            "serving" when onnx is null => Profiling.KvMode.Serving,
            "serving" => throw new UserInputException("--kv-mode serving: runs the replay engine's synthesised model; use a catalog model name, not an .onnx file"),
            _ => throw new UserInputException($"--kv-mode: '{KvMode}' is not shared, concat or serving"),
        };
        var groups = Groups.ToList();
        string[] known = ["overhead", "token_ops", "attention", "lm_head", "layer", "generation"];
        var bad = groups.Where(g => !known.Contains(g)).ToList();
        if (bad.Count > 0) throw new UserInputException($"--groups: unknown {string.Join(", ", bad)}; known: {string.Join(", ", known)}");

        var clock = EngineClock.Parse(Clock);
        if (clock == EngineClockKind.Cpu && (kvMode != Profiling.KvMode.Serving || groups.Count != 1 || groups[0] != "generation"))
            throw new UserInputException("--clock cpu: only the serving engine's generation profile runs on the engine clock; add --groups generation --kv-mode serving");
        EngineClock.CheckUsable(clock, device, Threads);
        var options = new ProfileOptions(name, arch, onnx, device, dtype, grid, Out, KernelTrace, GenLayers, kvMode,
            "rlms " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)), groups, Threads, Clock: clock);

        using var cancel = CancelScope.StartCooperative();
        using var folder = OutputFolder.Open(Out, "--out", "profile");
        {
            var profiler = new Profiler(options, msg => Console.Error.WriteLine(msg));
            var summary = ProgressDisplay.Run($"profile {name}", Quiet || NoProgress, sink => profiler.Run(new SyncProgress(p =>
            {
                if (sink is null) return;
                sink.Status($"{p.Group} {p.Config}");
                sink.Report(p.Total > 0 ? (double)p.Done / p.Total : 0);
            }), cancel.Token));
            var kernels = KernelTrace ? $", {summary.KernelRows} kernel rows" : "";
            var overhead = summary.OverheadUs is double o ? string.Create(CultureInfo.InvariantCulture, $"; harness overhead {o:F1} us per run") : "";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {summary.OperatorRows} operator rows, {summary.IterationRows} iteration rows{kernels} to {Out} in {summary.ElapsedSeconds:F1} s{overhead}"));
            foreach (var c in summary.LayerChecks)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"layer check {c.Config}: layer {c.LayerUs:F1} us, parts {c.PartsUs:F1} us, ratio {c.Ratio:F3}"));
            foreach (var f in summary.Failures) Console.Error.WriteLine($"failed: {f}");
            folder.Commit();
            if (summary.Cancelled)
            {
                Console.Error.WriteLine($"interrupted: the rows measured so far are kept in {Out}");
                return CancelScope.InterruptedExitCode;
            }
            return summary.Failures.Count > 0 ? 1 : 0;
        }
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool and reorder lines).</summary>
    private sealed class SyncProgress(Action<ProfileProgress> report) : IProgress<ProfileProgress>
    {
        public void Report(ProfileProgress value) => report(value);
    }
}
