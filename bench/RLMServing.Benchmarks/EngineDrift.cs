using System.Diagnostics;
using System.Globalization;
using MathNet.Numerics.Statistics;
using RLMServing.IO.Catalog;
using RLMServing.Metrics;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Replay;
using RLMServing.Profiling.Runtime;
using RLMServing.Simulation;

namespace RLMServing.Benchmarks;

/// <summary>
/// Is this machine steady enough for a 10% fidelity comparison? Runs one fixed piece of replay-engine work (six
/// sequences prefilled to 500 tokens, then 60 decode steps; the same request ids, so the same tokens, every time) over
/// and over for a while, timed on the engine thread's CPU clock, and reports how much the same work's time moves:
/// block to block, and between windows of 10 s (the scale of a profile or one policy's replay). On a shared VM the
/// window means can differ by more than 10% while a plain arithmetic loop on the same thread does not move
/// (docs/fidelity.md, "A drifting machine"); that drift is a floor under any replay-vs-simulate error.
/// Usage: engine-drift [MODEL] [SECONDS]      (defaults: tiny, 60)
/// </summary>
public static class EngineDrift
{
    public const double WindowSeconds = 10;

    public static int Run(string[] args)
    {
        var model = args.Length > 1 ? args[1] : "tiny";
        double seconds = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 60;
        var arch = CatalogLoader.LoadDefault().Model(model);
        using var device = new DeviceContext(DeviceSpec.Parse("cpu"), intraOpThreads: 1);
        using var engine = new OrtServingEngine(device, arch, OnnxType.Float, 8, 1024, clock: EngineClockKind.Cpu);
        engine.WarmUp(512);
        engine.StartClock();
        var ids = Enumerable.Range(0, 6).Select(i => 1_000_000L + i).ToArray();
        var blocks = new List<(double AtS, double StepUs)>();
        var wall = Stopwatch.StartNew();
        while (wall.Elapsed.TotalSeconds < seconds)
        {
            foreach (var id in ids) engine.Execute([new ChunkWork(id, 500, 0, true)], []);
            double sum = 0;
            for (int s = 0; s < 60; s++)
            {
                engine.Execute([], ids.Select(id => new DecodeWork(id, 500 + s)).ToList());
                var it = engine.Iterations[^1];
                if (s >= 3) sum += (it.EndS - it.StartS) * 1e6;
            }
            foreach (var id in ids) engine.Release(id, finished: true);
            blocks.Add((wall.Elapsed.TotalSeconds, sum / 57));
        }
        var steps = Percentiles.Sorted(blocks.Select(b => b.StepUs));
        var windows = blocks.GroupBy(b => (int)(b.AtS / WindowSeconds)).Where(g => g.Count() >= 5).Select(g => g.Average(b => b.StepUs)).ToList();
        Console.WriteLine($"{model}: the same batch-6 decode step (context 500-560), {blocks.Count} blocks of 57 steps over {seconds:F0} s, load {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"step us per block: median {Percentiles.Of(steps, 0.5):F1}, p10 {Percentiles.Of(steps, 0.1):F1}, p90 {Percentiles.Of(steps, 0.9):F1}, " +
            $"cv {steps.PopulationStandardDeviation() / steps.Mean() * 100:F1}%"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{WindowSeconds:F0}-s window means (us): {string.Join(" ", windows.Select(w => w.ToString("F1", CultureInfo.InvariantCulture)))}; " +
            $"range {(windows.Count > 1 ? (windows.Max() - windows.Min()) / windows.Average() * 100 : 0):F1}% of their mean"));
        return 0;
    }
}
