using System.Globalization;
using RLMServing.IO.Catalog;
using RLMServing.Profiling;
using RLMServing.Profiling.Measurement;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Runtime;
using RLMServing.Profiling.Traces;

namespace RLMServing.Benchmarks;

/// <summary>
/// How much the harness adds to what it measures: for each token-parallel operator configuration, the harness's median
/// (IO binding, run, device sync, stopwatch) against the median of ONNX Runtime's own per-run span ("model_run" in
/// its profiler) and the sum of the node kernels inside it. Usage: harness-overhead [MODEL] [cpu|cuda]
/// </summary>
public static class HarnessOverhead
{
    public static int Run(string[] args)
    {
        var model = args.Length > 1 ? args[1] : "tiny";
        var device = DeviceSpec.Parse(args.Length > 2 ? args[2] : "cpu");
        var arch = CatalogLoader.LoadDefault().Model(model);
        var dir = Directory.CreateTempSubdirectory("rlms-overhead-").FullName;
        var grid = ProfileGrid.Quick with { Tokens = [1, 16, 128, 512, 2048] };
        var dtype = device.Cuda ? OnnxType.Float16 : OnnxType.Float;
        var options = new ProfileOptions(model, arch, null, device, dtype, grid, dir, KernelTrace: true,
            Groups: ["overhead", "token_ops"], Policy: new SamplingPolicy(TargetSeconds: 0.3));
        var summary = new Profiler(options).Run();
        var ops = TraceReader.Read<OperatorRow>(Path.Combine(dir, Profiler.OperatorsFile));
        var kernels = TraceReader.Read<KernelRow>(Path.Combine(dir, Profiler.KernelsFile));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"identity-graph floor: {summary.OverheadUs:F2} us per run"));
        Console.WriteLine("op        tokens  harness_us  ort_run_us  kernels_us  harness-ort_us  harness-ort_%");
        foreach (var r in ops.Where(r => r.Op != "harness_overhead"))
        {
            var mine = kernels.Where(k => k.Graph == r.Op && k.Config == $"tokens={r.Tokens}").ToList();
            var runs = mine.Where(k => k.OpType == "model_run").Select(k => k.DurUs).Order().ToArray();
            var perRun = mine.Where(k => k.OpType != "model_run").GroupBy(k => k.Run).Select(g => g.Sum(k => k.DurUs)).Order().ToArray();
            if (runs.Length == 0 || perRun.Length == 0) continue;
            double ortUs = TimingStats.Quantile(runs, 0.5), kernelUs = TimingStats.Quantile(perRun, 0.5);
            double over = r.TimeUsMedian - ortUs;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Op,-9} {r.Tokens,6} {r.TimeUsMedian,11:F1} {ortUs,11:F1} {kernelUs,11:F1} {over,15:F1} {100 * over / r.TimeUsMedian,14:F1}"));
        }
        Directory.Delete(dir, true);
        return 0;
    }
}
