using RLMServing.Workloads;

namespace RLMServing.Sweeps;

public enum SamplingMethod { Grid, Random, LatinHypercube }

/// <summary>How the points of a sweep are chosen: a full grid, or <see cref="Samples"/> seeded random or Latin hypercube draws.</summary>
public sealed record Sampling(SamplingMethod Method, int Samples, int Seed)
{
    public static readonly Sampling Grid = new(SamplingMethod.Grid, 0, 0);
}

/// <summary>Expands axes into design points (one value per axis, in axis order); pure and seeded.</summary>
public static class DesignSampler
{
    public static IReadOnlyList<AxisValue[]> Expand(IReadOnlyList<Axis> axes, Sampling sampling) => sampling.Method switch
    {
        SamplingMethod.Grid => Grid(axes),
        SamplingMethod.Random => RandomPoints(axes, sampling.Samples, sampling.Seed),
        SamplingMethod.LatinHypercube => LatinHypercube(axes, sampling.Samples, sampling.Seed),
        _ => throw new ArgumentOutOfRangeException(nameof(sampling)),
    };

    /// <summary>The Cartesian product, first axis outermost (the last axis varies fastest), like nested loops in file order.</summary>
    public static IReadOnlyList<AxisValue[]> Grid(IReadOnlyList<Axis> axes)
    {
        var values = axes.Select(a => a.GridValues()).ToList();
        var points = new List<AxisValue[]> { Array.Empty<AxisValue>() };
        foreach (var vs in values)
            points = points.SelectMany(p => vs.Select(v => (AxisValue[])[.. p, v])).ToList();
        return points;
    }

    /// <summary>Each point draws each axis independently and uniformly (on the axis's scale).</summary>
    public static IReadOnlyList<AxisValue[]> RandomPoints(IReadOnlyList<Axis> axes, int samples, int seed)
    {
        var rng = new Random(SyntheticWorkload.Mix(seed, 101));
        var points = new List<AxisValue[]>(samples);
        for (int i = 0; i < samples; i++) points.Add(axes.Select(a => a.At(rng.NextDouble())).ToArray());
        return points;
    }

    /// <summary>
    /// Latin hypercube: each axis's [0, 1) is cut into <paramref name="samples"/> equal strata and every stratum is
    /// used exactly once (a seeded random permutation per axis), with a uniform draw inside the stratum.
    /// </summary>
    public static IReadOnlyList<AxisValue[]> LatinHypercube(IReadOnlyList<Axis> axes, int samples, int seed)
    {
        var rng = new Random(SyntheticWorkload.Mix(seed, 102));
        var u = new double[samples, axes.Count];
        for (int j = 0; j < axes.Count; j++)
        {
            var perm = Enumerable.Range(0, samples).ToArray();
            rng.Shuffle(perm);
            for (int i = 0; i < samples; i++) u[i, j] = (perm[i] + rng.NextDouble()) / samples;
        }
        var points = new List<AxisValue[]>(samples);
        for (int i = 0; i < samples; i++) points.Add(axes.Select((a, j) => a.At(u[i, j])).ToArray());
        return points;
    }
}
