using System.Diagnostics;
using System.Globalization;
using RLMServing.IO.Catalog;
using RLMServing.Profiling;
using RLMServing.Profiling.Measurement;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Runtime;

namespace RLMServing.Benchmarks;

/// <summary>
/// How much the harness adds to what it measures. Per configuration of the token-parallel operators: the harness's
/// per-run samples (one stopwatch around each IO-bound, device-synchronised run; median and mean) against the mean of a
/// tight loop of the same runs under a single stopwatch (no per-sample bookkeeping; compare means, since a loop has no
/// median), and the floor of the whole path measured on an Identity
/// graph (binding, Run, synchronisation, stopwatch). Usage: harness-overhead [MODEL] [cpu|cuda]
/// </summary>
public static class HarnessOverhead
{
    public static int Run(string[] args)
    {
        var model = args.Length > 1 ? args[1] : "tiny";
        var spec = DeviceSpec.Parse(args.Length > 2 ? args[2] : "cpu");
        var arch = CatalogLoader.LoadDefault().Model(model);
        var dtype = spec.Cuda ? OnnxType.Float16 : OnnxType.Float;
        var policy = new SamplingPolicy(TargetSeconds: 0.3);
        using var device = new DeviceContext(spec);
        var graphs = new TransformerGraphs(arch, dtype, 4096);

        var id = new GraphBuilder("identity");
        id.Op("Identity", [id.Input("x", dtype, 1, 8)], "y");
        id.Output("y", dtype, 1, 8);
        using (var s = new GraphSession(device, "identity", id.ToModelBytes(), [], dtype))
        {
            var b = s.Allocate(64);
            s.Fill([(b, dtype, [1L, 8L], 0f, 1f)]);
            s.BindInput("x", s.View(b, dtype, [1, 8]));
            s.BindOutputToDevice("y");
            var floor = Sampler.Measure(s.Run, policy);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"floor (Identity graph): median {floor.MedianUs:F2} us, p90 {floor.P90Us:F2} us = {floor.MedianUs:F2}% of a 100 us operator"));
        }

        Console.WriteLine("op        tokens  harness_median_us  harness_mean_us  loop_mean_us  mean_difference_%");
        foreach (var graph in new[] { graphs.QkvProjection(), graphs.OutputProjection(), graphs.Mlp() })
        {
            using var s = new GraphSession(device, graph.Kind, graph.ModelBytes(), graph.Weights, dtype);
            var input = graph.Builder.Inputs.Single(i => i.Name == "x");
            long width = input.Shape[^1].Value!.Value;
            var buf = s.Allocate(4096 * width * TransformerGraphs.ElementBytes(dtype));
            s.Fill([(buf, dtype, [4096L, width], 0f, 1f)]);
            s.BindOutputToDevice("y");
            foreach (var tokens in new[] { 16, 128, 512, 2048 })
            {
                s.BindInput("x", s.View(buf, dtype, [1, tokens, width]));
                s.RebindDeviceOutputs();
                var harness = Sampler.Measure(s.Run, policy);
                int n = harness.Reps;
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < n; i++) s.Run();
                double loop = sw.Elapsed.TotalMicroseconds / n;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{graph.Kind,-9} {tokens,6} {harness.MedianUs,18:F1} {harness.MeanUs,16:F1} {loop,13:F1} {100 * (harness.MeanUs - loop) / loop,18:F1}"));
            }
        }
        return 0;
    }
}
