using RLMServing.Costs;
using RLMServing.Profiling.Traces;
using RLMServing.Tests.Cli;
using RLMServing.Tests.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace RLMServing.Tests.Fidelity;

/// <summary>
/// The roofline cost model (default efficiencies, no fitting) against the generation-loop step times measured on an
/// H200 with ONNX Runtime CUDA (traces/h200, fp16, all layers). The bounds are the errors measured when the traces
/// were captured, so a change to the formula that makes predictions worse fails here. docs/fidelity.md has the table.
/// </summary>
public class RooflineVsH200Tests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Models => [["DeepSeek-R1-Distill-Qwen-7B"], ["Llama-3.1-8B"], ["DeepSeek-R1-Distill-Qwen-32B"]];

    public static (string Phase, int Batch, long Context, double MeasuredMs, double PredictedMs)[] Compare(string model)
    {
        var path = Path.Combine(RlmsProcess.RepoRoot(), "traces", "h200", model, "iterations.parquet");
        var arch = TestScenarios.Catalog.Model(model);
        var gpu = TestScenarios.Catalog.Gpu("H200-SXM-141G");
        var roofline = new RooflineCostModel(arch, gpu, 1, 0.6, 0.85, 1.0, 10);
        return TraceReader.Read<IterationRow>(path)
            .Where(r => r.Layers == arch.Layers && r.Source != "public")
            .GroupBy(r => (r.Phase, r.Batch, r.PromptTokens))
            .Select(g =>
            {
                // Steady decode: the median over steps after the first (the first step still warms caches).
                var rows = g.Key.Phase == "prefill" ? g.ToList() : g.Where(r => r.Step > 1).ToList();
                var last = rows.OrderBy(r => r.Step).Last();
                double measuredMs = rows.Select(r => r.TimeUsMedian).Order().ElementAt(rows.Count / 2) / 1000;
                var shape = g.Key.Phase == "prefill"
                    ? new BatchShape(Enumerable.Repeat(new PrefillChunk((int)g.Key.PromptTokens, 0, true), g.Key.Batch).ToArray(), 0, 0)
                    : BatchShape.DecodeOnly(g.Key.Batch, (long)g.Key.Batch * last.Context);
                return (g.Key.Phase, g.Key.Batch, last.Context, measuredMs, roofline.Iteration(shape).TimeS * 1000);
            })
            .OrderBy(x => x.Phase).ThenBy(x => x.Batch).ThenBy(x => x.Context).ToArray();
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void LargePrefillsAreWithinFifteenPercent(string model)
    {
        var rows = Compare(model).Where(r => r.Phase == "prefill" && r.Batch * r.Context >= 8192).ToList();
        Assert.NotEmpty(rows);
        foreach (var r in rows)
        {
            output.WriteLine($"{model} prefill batch={r.Batch} prompt={r.Context}: measured {r.MeasuredMs:F1} ms, roofline {r.PredictedMs:F1} ms, error {(r.PredictedMs / r.MeasuredMs - 1) * 100:+0;-0}%");
            Assert.InRange(r.PredictedMs / r.MeasuredMs, 0.85, 1.15);
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void DecodeStepsAreWithinFortyPercentAndOptimistic(string model)
    {
        var rows = Compare(model).Where(r => r.Phase == "decode").ToList();
        Assert.NotEmpty(rows);
        foreach (var r in rows)
        {
            output.WriteLine($"{model} decode batch={r.Batch} context={r.Context}: measured {r.MeasuredMs:F2} ms, roofline {r.PredictedMs:F2} ms, error {(r.PredictedMs / r.MeasuredMs - 1) * 100:+0;-0}%");
            // A roofline is a lower bound on a real engine: it may be optimistic, never by more than 40% here.
            Assert.InRange(r.PredictedMs / r.MeasuredMs, 0.6, 1.05);
        }
    }
}
