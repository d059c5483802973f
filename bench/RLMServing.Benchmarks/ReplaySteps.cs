using System.Globalization;
using System.Text.Json;
using RLMServing.Calibration;
using RLMServing.Costs;
using RLMServing.Profiling.Replay;
using RLMServing.Profiling.Traces;

namespace RLMServing.Benchmarks;

/// <summary>
/// A calibration against a replay's own schedule (docs/fidelity.md): every decode-only iteration of iterations.parquet
/// priced by the calibration (regression and residual surfaces, as the simulator prices it) beside its measured step time, per batch size and in total, and batch-1
/// prompt prefills by length. Separates the cost model's error from the closed loop's amplification of it.
/// Usage: replay-steps CALIBRATION.json ITERATIONS.parquet...
/// </summary>
public static class ReplaySteps
{
    public static int Run(string[] args)
    {
        var cal = JsonSerializer.Deserialize<CalibrationFile>(File.ReadAllText(args[1]))!.ToModel();
        foreach (var path in args.Skip(2))
        {
            var rows = TraceReader.Read<ReplayIterationRow>(path);
            var decodes = rows.Where(r => r.PrefillRequests == 0 && r.DecodeCount > 0).ToList();
            double Predicted(ReplayIterationRow r) => cal.PredictDecodeUs(r.DecodeCount, r.DecodeContextSum);
            double measuredS = decodes.Sum(r => r.StepTimeMs) / 1e3, predictedS = decodes.Sum(Predicted) / 1e6;
            Console.WriteLine(path);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"decode-only iterations {decodes.Count}: measured {measuredS:F2} s, predicted {predictedS:F2} s ({100 * (predictedS - measuredS) / measuredS:+0.0;-0.0}%); mean decode batch {decodes.Average(r => r.DecodeCount):F2}; gaps between iterations {rows.Sum(r => r.GapMs) / 1e3:F2} s of {rows.Sum(r => r.StepTimeMs + r.GapMs) / 1e3:F2} s"));
            Console.WriteLine("batch  steps  mean_context_sum  measured_us  ort_us  predicted_us  error_%");
            foreach (var g in decodes.GroupBy(r => r.DecodeCount).OrderBy(g => g.Key))
            {
                double m = g.Average(r => r.StepTimeMs) * 1e3, p = g.Average(Predicted);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{g.Key,5} {g.Count(),6} {g.Average(r => (double)r.DecodeContextSum),17:F0} {m,12:F1} {g.Average(r => r.OrtTimeMs) * 1e3,7:F1} {p,13:F1} {100 * (p - m) / m,8:F1}"));
            }
            foreach (var g in rows.Where(r => r.PrefillRequests == 1 && r.DecodeCount == 0 && r.PrefillContextTokens == 0)
                         .GroupBy(r => r.PrefillTokens / 100 * 100).OrderBy(g => g.Key))
            {
                double m = g.Average(r => r.StepTimeMs) * 1e3, p = g.Average(r => cal.PredictUs(new BatchShape(new[] { new PrefillChunk((int)r.PrefillTokens, 0, true) }, 0, 0)));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"prompt prefill {g.Key}-{g.Key + 99} tokens: {g.Count()} steps, measured {m:F0} us, predicted {p:F0} us ({100 * (p - m) / m:+0;-0}%)"));
            }
        }
        return 0;
    }
}
