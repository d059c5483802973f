using MathNet.Numerics.Distributions;

namespace RLMServing.Workloads;

/// <summary>A distribution of token counts. Every draw comes from the caller's seeded generator.</summary>
public interface ITokenDistribution
{
    int Sample(Random rng);

    /// <summary>Expected value before clamping; used for capacity estimates and docs, not for sampling.</summary>
    double Mean { get; }
}

/// <summary>Clamps any distribution's draws into [Min, Max] (token counts are at least 1 by default).</summary>
public sealed record Clamped(ITokenDistribution Inner, int Min, int Max) : ITokenDistribution
{
    public int Sample(Random rng) => Math.Clamp(Inner.Sample(rng), Min, Max);
    public double Mean => Math.Clamp(Inner.Mean, Min, Max);
}

public sealed record ConstantTokens(int Value) : ITokenDistribution
{
    public int Sample(Random rng) => Value;
    public double Mean => Value;
}

/// <summary>Uniform over the integers Min..Max inclusive.</summary>
public sealed record UniformTokens(int Min, int Max) : ITokenDistribution
{
    public int Sample(Random rng) => DiscreteUniform.Sample(rng, Min, Max);
    public double Mean => (Min + Max) / 2.0;
}

public sealed record NormalTokens(double MeanTokens, double Std) : ITokenDistribution
{
    public int Sample(Random rng) => Round(Normal.Sample(rng, MeanTokens, Std));
    public double Mean => MeanTokens;
    internal static int Round(double x) => x >= int.MaxValue ? int.MaxValue : x <= int.MinValue ? int.MinValue : (int)Math.Round(x, MidpointRounding.AwayFromZero);
}

/// <summary>Log-normal given by its median (e^mu) and sigma, the usual way output lengths are reported.</summary>
public sealed record LogNormalTokens(double Median, double Sigma) : ITokenDistribution
{
    public int Sample(Random rng) => NormalTokens.Round(LogNormal.Sample(rng, Math.Log(Median), Sigma));
    public double Mean => Median * Math.Exp(Sigma * Sigma / 2);
}

/// <summary>A weighted mixture, e.g. easy and hard problems giving the bimodal lengths of reasoning models.</summary>
public sealed class MixtureTokens : ITokenDistribution
{
    private readonly double[] _cumulative;

    public MixtureTokens(IReadOnlyList<(double Weight, ITokenDistribution Component)> components)
    {
        if (components.Count == 0) throw new ArgumentException("a mixture needs at least one component");
        Components = components;
        double total = components.Sum(c => c.Weight);
        _cumulative = new double[components.Count];
        double acc = 0;
        for (int i = 0; i < components.Count; i++) { acc += components[i].Weight / total; _cumulative[i] = acc; }
        _cumulative[^1] = 1.0;
    }

    public IReadOnlyList<(double Weight, ITokenDistribution Component)> Components { get; }

    public int Sample(Random rng)
    {
        double u = rng.NextDouble();
        int i = 0;
        while (u >= _cumulative[i] && i < _cumulative.Length - 1) i++;
        return Components[i].Component.Sample(rng);
    }

    public double Mean => Components.Sum(c => c.Weight * c.Component.Mean) / Components.Sum(c => c.Weight);
}

/// <summary>Draws from listed values with optional weights (an empirical histogram).</summary>
public sealed class EmpiricalTokens : ITokenDistribution
{
    private readonly int[] _values;
    private readonly double[] _cumulative;

    public EmpiricalTokens(IReadOnlyList<int> values, IReadOnlyList<double>? weights = null)
    {
        if (values.Count == 0) throw new ArgumentException("an empirical distribution needs at least one value");
        if (weights is not null && weights.Count != values.Count) throw new ArgumentException("values and weights differ in length");
        _values = values.ToArray();
        _cumulative = new double[_values.Length];
        double total = weights?.Sum() ?? _values.Length, acc = 0;
        for (int i = 0; i < _values.Length; i++) { acc += (weights?[i] ?? 1.0) / total; _cumulative[i] = acc; }
        _cumulative[^1] = 1.0;
        Mean = Enumerable.Range(0, _values.Length).Sum(i => _values[i] * ((weights?[i] ?? 1.0) / total));
    }

    public int Sample(Random rng)
    {
        int i = Array.BinarySearch(_cumulative, rng.NextDouble());
        if (i < 0) i = ~i;
        return _values[Math.Min(i, _values.Length - 1)];
    }

    public double Mean { get; }
}
