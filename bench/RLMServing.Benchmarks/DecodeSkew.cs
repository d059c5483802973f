using System.Globalization;
using RLMServing.IO.Catalog;
using RLMServing.Metrics;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Replay;
using RLMServing.Profiling.Runtime;
using RLMServing.Simulation;

namespace RLMServing.Benchmarks;

/// <summary>
/// What a decode step's cost follows on the replay engine (docs/fidelity.md, "Why, by measurement"): batches of
/// equal size and equal summed context but different longest sequence (uniform vs skewed), and a uniform batch at the
/// skewed batch's longest length, run round-robin so machine load hits all alike; and a prompt prefill back to back
/// vs between decode steps. Reports the median thread CPU time per step (one intra-op thread: load-independent), and the ONNX Runtime
/// call's and the engine's host wall time.
/// Usage: decode-skew [MODEL] [ROUNDS]
/// </summary>
public static class DecodeSkew
{
    public static int Run(string[] args)
    {
        var model = args.Length > 1 ? args[1] : "tiny";
        int rounds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 200;
        var arch = CatalogLoader.LoadDefault().Model(model);
        using var device = new DeviceContext(DeviceSpec.Parse("cpu"), intraOpThreads: 1);
        // Batch 8, as in the replay's worst case: Σ context 5,120 uniform or with one long sequence; uniform at the long length.
        var groups = new (string Name, int[] Lengths)[]
        {
            ("uniform 8x640 (sum 5120, max 640)", Enumerable.Repeat(640, 8).ToArray()),
            ("skewed 1x1920+7x460 (sum 5140, max 1920)", [1920, 460, 460, 460, 460, 460, 460, 460]),
            ("uniform 8x1920 (sum 15360, max 1920)", Enumerable.Repeat(1920, 8).ToArray()),
            ("uniform 4x640 (sum 2560, max 640)", Enumerable.Repeat(640, 4).ToArray()),
            ("skewed 1x1600+3x320 (sum 2560, max 1600)", [1600, 320, 320, 320]),
        };
        int seqs = groups.Sum(g => g.Lengths.Length) + 2;
        int maxLen = groups.Max(g => g.Lengths.Max()) + rounds + 256;
        using var engine = new OrtServingEngine(device, arch, OnnxType.Float, seqs, maxLen);
        engine.WarmUp(256);
        engine.StartClock();
        long next = 1;
        var work = new List<List<DecodeWork>>();
        foreach (var g in groups)
        {
            var w = new List<DecodeWork>();
            foreach (var len in g.Lengths)
            {
                long id = next++;
                engine.Execute([new ChunkWork(id, len, 0, true)], []);
                w.Add(new DecodeWork(id, len));
            }
            work.Add(w);
        }
        var ort = groups.Select(_ => new List<double>()).ToArray();
        var host = groups.Select(_ => new List<double>()).ToArray();
        var moved = groups.Select(_ => new List<double>()).ToArray();
        var cpuStep = groups.Select(_ => new List<double>()).ToArray();
        var prefillAlone = new List<double>();
        var prefillBetween = new List<double>();
        int gc0 = GC.CollectionCount(0), gc1 = GC.CollectionCount(1), gc2 = GC.CollectionCount(2);
        for (int r = 0; r < rounds; r++)
        {
            for (int g = 0; g < groups.Length; g++)
            {
                // Twice: the first step after switching groups moves KV slots (host work outside the call).
                for (int rep = 0; rep < 2; rep++)
                {
                    double cpu0 = ThreadCpuUs();
                    engine.Execute([], work[g]);
                    double cpu = ThreadCpuUs() - cpu0;
                    var it = engine.Iterations[^1];
                    if (rep == 0) moved[g].Add((it.EndS - it.StartS) * 1e6 - it.OrtTimeUs);
                    if (rep == 1)
                    {
                        ort[g].Add(it.OrtTimeUs);
                        host[g].Add((it.EndS - it.StartS) * 1e6 - it.OrtTimeUs);
                        cpuStep[g].Add(cpu);
                    }
                    for (int i = 0; i < work[g].Count; i++) work[g][i] = work[g][i] with { KvTokens = work[g][i].KvTokens + 1 };
                }
                if (g == 1)
                {
                    // A 200-token prompt right after a batch-8 decode step, then one right after another prompt.
                    long a = next++, b = next++;
                    double c0 = ThreadCpuUs();
                    engine.Execute([new ChunkWork(a, 200, 0, true)], []);
                    double c1 = ThreadCpuUs();
                    engine.Execute([new ChunkWork(b, 200, 0, true)], []);
                    prefillBetween.Add(c1 - c0);
                    prefillAlone.Add(ThreadCpuUs() - c1);
                    engine.Release(a, finished: true);
                    engine.Release(b, finished: true);
                }
            }
        }
        Console.WriteLine($"rounds {rounds}, garbage collections gen0/1/2 during the rounds: {GC.CollectionCount(0) - gc0}/{GC.CollectionCount(1) - gc1}/{GC.CollectionCount(2) - gc2}, load: {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine("batch                                          step_cpu_median_us  p25  p75  ort_wall_median_us  host_wall_median_us  host_after_switch_us");
        for (int g = 0; g < groups.Length; g++)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{groups[g].Name,-46} {Median(cpuStep[g]),18:F1} {Q(cpuStep[g], 0.25),8:F1} {Q(cpuStep[g], 0.75),8:F1} {Median(ort[g]),18:F1} {Median(host[g]),19:F1} {Median(moved[g]),21:F1}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"prefill 200 tokens (thread CPU) after a decode step: {Median(prefillBetween):F1} us; after a prefill: {Median(prefillAlone):F1} us"));
        return 0;
    }

    /// <summary>CPU time of the calling thread: ONNX Runtime with one intra-op thread runs on it, so other processes' load does not count.</summary>
    private static double ThreadCpuUs() => ThreadCpuTime.Seconds() * 1e6;

    private static double Median(List<double> xs) => Q(xs, 0.5);

    private static double Q(List<double> xs, double q) => Percentiles.Of(Percentiles.Sorted(xs), q);
}
