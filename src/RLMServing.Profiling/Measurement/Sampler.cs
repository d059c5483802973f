using System.Diagnostics;

namespace RLMServing.Profiling.Measurement;

/// <summary>How long and how often to measure one configuration.</summary>
/// <param name="TargetSeconds">Measured repetitions aim to fill this much time.</param>
/// <param name="WarmupCvThreshold">Warm-up stops once the last <see cref="WarmupWindow"/> runs vary less than this.</param>
/// <param name="UnstableCv">Rows whose coefficient of variation exceeds this are flagged unstable.</param>
public sealed record SamplingPolicy(
    double TargetSeconds = 0.2,
    int MinReps = 5,
    int MaxReps = 2000,
    int MinWarmup = 3,
    int MaxWarmup = 200,
    int WarmupWindow = 5,
    double WarmupCvThreshold = 0.05,
    double MaxWarmupSeconds = 1.0,
    double UnstableCv = 0.10)
{
    /// <summary>Short policy for tests and smoke runs.</summary>
    public static SamplingPolicy Fast { get; } = new(TargetSeconds: 0.02, MinReps: 5, MaxReps: 200, MinWarmup: 2, MaxWarmup: 20,
        MaxWarmupSeconds: 0.1);
}

/// <summary>
/// Summary of measured repetitions, in microseconds; always reported with its spread. Min, median and p90 are over all
/// samples; mean, std and cv are over the samples left after removing upper outliers (above Q3 + 1.5 IQR, Tukey's
/// fence, as BenchmarkDotNet does by default), which are preemptions and stalls rather than the operator's cost.
/// </summary>
public sealed record TimingStats(double MinUs, double MedianUs, double MeanUs, double StdUs, double P90Us, int Reps, int WarmupReps,
    double Cv, bool Unstable, int Outliers = 0)
{
    public static TimingStats FromSamples(IReadOnlyList<double> samplesUs, int warmupReps, double unstableCv)
    {
        if (samplesUs.Count == 0) throw new ArgumentException("no samples", nameof(samplesUs));
        var sorted = samplesUs.Order().ToArray();
        double q1 = Quantile(sorted, 0.25), q3 = Quantile(sorted, 0.75);
        double fence = q3 + 1.5 * (q3 - q1);
        var kept = sorted.Where(x => x <= fence).ToArray();
        double mean = kept.Average();
        double var = kept.Length > 1 ? kept.Sum(x => (x - mean) * (x - mean)) / (kept.Length - 1) : 0;
        double std = Math.Sqrt(var);
        double cv = mean > 0 ? std / mean : 0;
        return new TimingStats(sorted[0], Quantile(sorted, 0.5), mean, std, Quantile(sorted, 0.9), sorted.Length, warmupReps, cv,
            cv > unstableCv, sorted.Length - kept.Length);
    }

    /// <summary>Linear interpolation between closest ranks (the default of numpy and pandas).</summary>
    public static double Quantile(double[] sorted, double q)
    {
        if (sorted.Length == 1) return sorted[0];
        double pos = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(pos);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }
}

/// <summary>
/// Staged measurement in the manner of BenchmarkDotNet: a pilot picks the repetition count, warm-up runs until the
/// recent runs are stable, then the measured repetitions. <paramref name="run"/> must return only after the device
/// has finished (the runner synchronises).
/// </summary>
public static class Sampler
{
    public static TimingStats Measure(Action run, SamplingPolicy policy, CancellationToken cancel = default)
    {
        var sw = new Stopwatch();
        double Time()
        {
            sw.Restart();
            run();
            sw.Stop();
            return sw.Elapsed.TotalMicroseconds;
        }

        // Pilot: the first (cold) run allocates and initialises; the next ones estimate the cost.
        Time();
        double pilot = double.MaxValue;
        double pilotSpent = 0;
        for (int i = 0; i < 3 && pilotSpent < 50_000; i++)
        {
            double t = Time();
            pilot = Math.Min(pilot, t);
            pilotSpent += t;
        }
        int reps = (int)Math.Clamp(Math.Ceiling(policy.TargetSeconds * 1e6 / Math.Max(pilot, 0.01)), policy.MinReps, policy.MaxReps);

        // Warm-up until the last few runs agree, bounded by count and time.
        var window = new Queue<double>();
        int warm = 0;
        double warmSpent = 0;
        while (warm < policy.MaxWarmup && !cancel.IsCancellationRequested)
        {
            double t = Time();
            warm++;
            warmSpent += t;
            window.Enqueue(t);
            if (window.Count > policy.WarmupWindow) window.Dequeue();
            if (warm >= policy.MinWarmup && window.Count == policy.WarmupWindow && Cv(window) < policy.WarmupCvThreshold) break;
            if (warm >= policy.MinWarmup && warmSpent > policy.MaxWarmupSeconds * 1e6) break;
        }

        var samples = new double[reps];
        int n = 0;
        for (; n < reps; n++)
        {
            if (cancel.IsCancellationRequested && n >= policy.MinReps) break;
            samples[n] = Time();
        }
        return TimingStats.FromSamples(samples[..n], warm, policy.UnstableCv);
    }

    private static double Cv(IEnumerable<double> xs)
    {
        var a = xs.ToArray();
        double mean = a.Average();
        if (mean <= 0) return 0;
        double var = a.Sum(x => (x - mean) * (x - mean)) / Math.Max(1, a.Length - 1);
        return Math.Sqrt(var) / mean;
    }
}

public static class TimedRows
{
    /// <summary>Fills a row's timing columns from measured statistics; returns the row.</summary>
    public static T WithTiming<T>(this T row, TimingStats t) where T : Traces.ITimedRow
    {
        row.TimeUsMin = t.MinUs;
        row.TimeUsMedian = t.MedianUs;
        row.TimeUsMean = t.MeanUs;
        row.TimeUsStd = t.StdUs;
        row.TimeUsP90 = t.P90Us;
        row.Reps = t.Reps;
        row.Outliers = t.Outliers;
        row.Cv = t.Cv;
        row.Unstable = t.Unstable;
        return row;
    }
}
