using System.Globalization;
using MathNet.Numerics;
using RLMServing.Profiling.Replay;
using RLMServing.Profiling.Traces;

namespace RLMServing.Benchmarks;

/// <summary>
/// Whether a replay's large batches ran while the machine was slow (docs/fidelity.md, "Fifth session"): the run is cut
/// into windows of the engine's clock, the machine's speed in each window is its batch-1 decode steps' time relative to
/// a straight line fitted to all batch-1 steps by context (MathNet least squares), and each decode batch size is given
/// the mean speed of the windows its steps ran in, weighted by its steps. Batch 1 averages 1 by construction; a larger
/// batch above 1 ran in slow windows.
/// Usage: replay-windows ITERATIONS.parquet... [--window SECONDS] (default 2)
/// </summary>
public static class ReplayWindows
{
    public static int Run(string[] args)
    {
        var paths = new List<string>();
        double window = 2;
        for (int i = 1; i < args.Length; i++)
        {
            if (args[i] == "--window" && i + 1 < args.Length) window = double.Parse(args[++i], CultureInfo.InvariantCulture);
            else paths.Add(args[i]);
        }
        foreach (var path in paths)
        {
            var decodes = TraceReader.Read<ReplayIterationRow>(path).Where(r => r.PrefillRequests == 0 && r.DecodeCount > 0).ToList();
            var single = decodes.Where(r => r.DecodeCount == 1).ToList();
            if (single.Count < 100)
            {
                Console.WriteLine($"{path}: {single.Count} batch-1 decode steps, too few to measure the machine's speed");
                continue;
            }
            var (intercept, slope) = Fit.Line(single.Select(r => (double)r.DecodeContextSum).ToArray(), single.Select(r => r.StepTimeMs * 1e3).ToArray());
            long Window(ReplayIterationRow r) => (long)Math.Floor(r.StartTimeS / window);
            var speed = single.GroupBy(Window).Where(g => g.Count() >= 20)
                .ToDictionary(g => g.Key, g => g.Average(r => r.StepTimeMs * 1e3 / (intercept + slope * r.DecodeContextSum)));
            Console.WriteLine(path);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"batch-1 steps: {intercept:F0} us + {slope:F3} us per context token; {speed.Count} windows of {window:F1} s with 20 or more, speed {speed.Values.Min():F2}-{speed.Values.Max():F2} (1 = the run's average, above 1 slower)"));
            Console.WriteLine("batch  steps  mean_window_speed");
            foreach (var g in decodes.GroupBy(r => r.DecodeCount).OrderBy(g => g.Key))
            {
                var s = g.Where(r => speed.ContainsKey(Window(r))).Select(r => speed[Window(r)]).ToList();
                if (s.Count > 0)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{g.Key,5} {s.Count,6} {s.Average(),18:F3}"));
            }
        }
        return 0;
    }
}
