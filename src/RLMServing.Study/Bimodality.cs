using MathNet.Numerics.Distributions;
using MathNet.Numerics.Statistics;

namespace RLMServing.Study;

/// <summary>One fitted Gaussian component (on the log scale the test works in).</summary>
public sealed record MixtureComponent(double Weight, double Mean, double Sd);

/// <summary>
/// The outcome of the bimodality test on one sample: both fits, their BICs, the modes of the two-component fit, and
/// the verdict. <see cref="ModesMs"/> are the modes back on the latency scale (exp of the log-scale modes).
/// </summary>
public sealed record BimodalityResult(
    int N,
    double Bic1,
    double Bic2,
    IReadOnlyList<MixtureComponent> Components,
    IReadOnlyList<double> ModesMs,
    double AshmanD,
    bool Bimodal)
{
    /// <summary>BIC(one component) − BIC(two): positive when two components explain the sample better after the penalty.</summary>
    public double DeltaBic => Bic1 - Bic2;
}

/// <summary>
/// A test of bimodality on positive values (latencies), done on their logarithms: a two-component Gaussian mixture
/// (fitted by EM from several starts, the best likelihood kept) against one Gaussian, compared by BIC. A sample is
/// called bimodal when the mixture wins by more than <see cref="StrongEvidence"/> (Kass and Raftery's "very strong"
/// evidence, ΔBIC &gt; 10) AND the fitted mixture's density really has two modes: a skewed unimodal sample is also
/// fitted better by two components, and the mode count keeps it from being called bimodal.
/// </summary>
public static class Bimodality
{
    public const double StrongEvidence = 10;
    private const int MinSamples = 10;
    private const int MaxIterations = 1000;
    private const int GridPoints = 2000;

    /// <summary>Subsamples behind <see cref="Support"/>.</summary>
    public const int Resamples = 200;

    /// <summary>
    /// The share of subsamples a sample must keep its verdict on to be called bimodal: one test on one sample of a
    /// few hundred latencies is not a stable answer (the ΔBIC of the same simulated experiment moves from −6 to +23
    /// between seeds), so the verdict asks that it hold in 95% of them.
    /// </summary>
    public const double Confidence = 0.95;

    /// <summary>
    /// The share of <paramref name="resamples"/> random halves of <paramref name="values"/> (drawn without
    /// replacement) that <see cref="Test"/> calls bimodal: would the verdict stand on half the data? Subsampling
    /// (Politis and Romano, Ann. Statist. 22, 1994) rather than the bootstrap because a bootstrap resample repeats
    /// values and a mixture fit puts a narrow component on a cluster of repeats: 13% of bootstrap resamples of one
    /// log-normal were called bimodal, none of its halves. Half the data makes the check strict: a sample passes only
    /// when its evidence is about twice what the test needs. Reproducible from the seed: subsample i has its own
    /// generator seeded with seed + i, whatever the cores.
    /// </summary>
    public static double Support(IReadOnlyList<double> values, int seed, int resamples = Resamples)
    {
        if (resamples < 1) throw new ArgumentOutOfRangeException(nameof(resamples), "at least one subsample");
        var x = values.Where(v => v > 0 && double.IsFinite(v)).ToArray();
        int m = x.Length / 2;
        // Halves too small to test support nothing: the verdict could not stand on half the data.
        if (m < MinSamples) return 0;
        var bimodal = new bool[resamples];
        Parallel.For(0, resamples, i =>
        {
            var random = new Random(unchecked(seed + i));
            var pool = (double[])x.Clone();
            // The first m places of a partial Fisher-Yates shuffle: a uniform subset of size m.
            for (int j = 0; j < m; j++)
            {
                int k = random.Next(j, pool.Length);
                (pool[j], pool[k]) = (pool[k], pool[j]);
            }
            bimodal[i] = Test(pool[..m]).Bimodal;
        });
        return (double)bimodal.Count(b => b) / resamples;
    }

    public static BimodalityResult Test(IEnumerable<double> values)
    {
        var x = values.Where(v => v > 0 && double.IsFinite(v)).Select(v => Math.Log(v)).ToArray();
        int n = x.Length;
        if (n < MinSamples) throw new ArgumentException($"the bimodality test needs at least {MinSamples} positive values, got {n}");
        double mean = x.Mean(), sd = x.PopulationStandardDeviation();
        if (!(sd > 0)) return new BimodalityResult(n, 0, 0, [new(1, mean, 0)], [Math.Exp(mean)], 0, false);

        double logL1 = x.Sum(v => Normal.PDFLn(mean, sd, v));
        double bic1 = 2 * Math.Log(n) - 2 * logL1;

        // Starts at several splits of the sorted sample: a mixture's likelihood has local optima, and the
        // split that separates the two groups best is not known in advance.
        var sorted = x.OrderBy(v => v).ToArray();
        (double LogL, MixtureComponent[] C) best = (double.NegativeInfinity, []);
        foreach (double split in new[] { 0.1, 0.25, 0.5, 0.75, 0.9 })
        {
            int k = Math.Clamp((int)(split * n), 2, n - 2);
            var lo = sorted[..k];
            var hi = sorted[k..];
            var fit = Em(x, [new(split, lo.Mean(), Math.Max(lo.PopulationStandardDeviation(), sd / 10)), new(1 - split, hi.Mean(), Math.Max(hi.PopulationStandardDeviation(), sd / 10))], sd);
            if (fit.LogL > best.LogL) best = fit;
        }
        double bic2 = 5 * Math.Log(n) - 2 * best.LogL;
        var comps = best.C.OrderBy(c => c.Mean).ToArray();
        var modes = Modes(comps, sorted[0], sorted[^1]);
        double ashman = Math.Sqrt(2) * Math.Abs(comps[1].Mean - comps[0].Mean) / Math.Sqrt(comps[0].Sd * comps[0].Sd + comps[1].Sd * comps[1].Sd);
        bool bimodal = bic1 - bic2 > StrongEvidence && modes.Count >= 2;
        return new BimodalityResult(n, bic1, bic2, comps, modes.Select(Math.Exp).ToList(), ashman, bimodal);
    }

    private static (double LogL, MixtureComponent[] C) Em(double[] x, MixtureComponent[] start, double sampleSd)
    {
        // A floor on the spread keeps one component from collapsing onto a single repeated value (an infinite likelihood).
        double floor = sampleSd * 1e-3;
        var c = start;
        double logL = double.NegativeInfinity;
        var r = new double[x.Length];
        for (int it = 0; it < MaxIterations; it++)
        {
            double ll = 0, sumR = 0;
            for (int i = 0; i < x.Length; i++)
            {
                double a = c[0].Weight * Normal.PDF(c[0].Mean, c[0].Sd, x[i]);
                double b = c[1].Weight * Normal.PDF(c[1].Mean, c[1].Sd, x[i]);
                double t = a + b;
                if (t <= 0)
                {
                    // Far in both tails: assign to the nearer component in standard deviations.
                    r[i] = Math.Abs(x[i] - c[0].Mean) / c[0].Sd < Math.Abs(x[i] - c[1].Mean) / c[1].Sd ? 1 : 0;
                    ll += Math.Max(Math.Log(c[0].Weight) + Normal.PDFLn(c[0].Mean, c[0].Sd, x[i]), Math.Log(c[1].Weight) + Normal.PDFLn(c[1].Mean, c[1].Sd, x[i]));
                }
                else
                {
                    r[i] = a / t;
                    ll += Math.Log(t);
                }
                sumR += r[i];
            }
            double n0 = sumR, n1 = x.Length - sumR;
            if (n0 < 1e-9 || n1 < 1e-9) return (ll, c);   // one component emptied: the mixture is one Gaussian
            double m0 = 0, m1 = 0;
            for (int i = 0; i < x.Length; i++) { m0 += r[i] * x[i]; m1 += (1 - r[i]) * x[i]; }
            m0 /= n0; m1 /= n1;
            double v0 = 0, v1 = 0;
            for (int i = 0; i < x.Length; i++) { v0 += r[i] * (x[i] - m0) * (x[i] - m0); v1 += (1 - r[i]) * (x[i] - m1) * (x[i] - m1); }
            c = [new(n0 / x.Length, m0, Math.Max(Math.Sqrt(v0 / n0), floor)), new(n1 / x.Length, m1, Math.Max(Math.Sqrt(v1 / n1), floor))];
            if (Math.Abs(ll - logL) < 1e-9 * Math.Max(1, Math.Abs(ll))) { logL = ll; break; }
            logL = ll;
        }
        return (logL, c);
    }

    /// <summary>The local maxima of the mixture's density on a fine grid over the sample's range (log scale).</summary>
    internal static List<double> Modes(IReadOnlyList<MixtureComponent> c, double min, double max)
    {
        double Density(double v) => c.Sum(k => k.Weight * Normal.PDF(k.Mean, k.Sd, v));
        var modes = new List<double>();
        double step = (max - min) / (GridPoints - 1);
        double prev = Density(min - step), cur = Density(min);
        for (int i = 0; i < GridPoints; i++)
        {
            double v = min + i * step;
            double next = Density(v + step);
            // A plateau counts once; the relative margin keeps rounding noise from making a second mode.
            if (cur > prev * (1 + 1e-12) && cur >= next) modes.Add(v);
            prev = cur;
            cur = next;
        }
        return modes;
    }
}
