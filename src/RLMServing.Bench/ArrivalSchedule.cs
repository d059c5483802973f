using MathNet.Numerics.Distributions;

namespace RLMServing.Bench;

/// <summary>
/// Send times computed before the first request goes out, as offsets in seconds from the start of the run. As in
/// vLLM's get_request (vllm/benchmarks/serve.py, v0.11): inter-arrival gaps are gamma with shape = burstiness and
/// scale = 1 / (rate · burstiness) (burstiness 1 is Poisson), a ramp moves the rate linearly or geometrically from
/// the start to the end rate over the requests, and without a ramp the offsets are rescaled so the last one is
/// exactly n / rate. The runner sends at these absolute deadlines, so a slow client cannot lower the offered rate.
/// </summary>
public static class ArrivalSchedule
{
    public static double[] Compute(int count, BenchOptions o, Random random)
    {
        var offsets = new double[count];
        double sum = 0;
        for (int i = 0; i < count; i++)
        {
            double rate = RateAt(i, count, o);
            double gap = double.IsPositiveInfinity(rate) ? 0
                : double.IsPositiveInfinity(o.Burstiness) ? 1 / rate
                : Gamma.Sample(random, o.Burstiness, rate * o.Burstiness);
            sum += gap;
            offsets[i] = sum;
        }
        if (o.RampUpStrategy is null && !double.IsPositiveInfinity(o.RequestRate) && sum > 0)
        {
            double factor = count / o.RequestRate / sum;
            for (int i = 0; i < count; i++) offsets[i] *= factor;
        }
        return offsets;
    }

    /// <summary>The rate request <paramref name="index"/> is drawn at (vLLM's _get_current_request_rate).</summary>
    public static double RateAt(int index, int count, BenchOptions o)
    {
        if (o.RampUpStrategy is not { } ramp || o.RampUpStartRps is not { } start || o.RampUpEndRps is not { } end) return o.RequestRate;
        double progress = (double)index / Math.Max(count - 1, 1);
        double rate = ramp == "linear" ? start + (end - start) * progress : start * Math.Pow(end / start, progress);
        // A linear ramp from 0 would make the first gap infinite; vLLM refuses it, we start at the first non-zero step.
        return rate > 0 ? rate : (end - start) / Math.Max(count - 1, 1);
    }
}
