using MathNet.Numerics.LinearAlgebra;
using RLMServing.Costs;

namespace RLMServing.Calibration;

/// <summary>
/// The quantities an iteration's time is regressed on, each with a physical reason: a fixed cost per step (launches,
/// scheduling, reading the weights once when memory-bound), tokens through the layers (GEMM work), sequences that
/// sample (LM head and sampler), KV entries read (decode attention and prefix reads) and causal attention pairs of
/// prefill chunks (quadratic attention work).
/// </summary>
public readonly record struct IterationFeatures(double Tokens, double Sampled, double KvRead, double AttnPairs)
{
    public static IterationFeatures Of(in BatchShape shape)
    {
        // Speculative verification feeds k + 1 sampled queries per decode; the extra ones are attention pairs.
        int k = shape.SpeculativeTokens;
        double tokens = (double)shape.DecodeCount * (1 + k), sampled = tokens, kv = shape.DecodeKvSum;
        double pairs = (double)shape.DecodeKvSum * k + (double)shape.DecodeCount * k * (k + 1) / 2.0;
        foreach (var c in shape.Prefills.Span)
        {
            tokens += c.Tokens;
            if (c.SamplesToken) sampled++;
            kv += c.ContextTokens;
            pairs += (double)c.Tokens * c.ContextTokens + (double)c.Tokens * (c.Tokens + 1) / 2.0;
        }
        return new IterationFeatures(tokens, sampled, kv, pairs);
    }

    /// <summary><paramref name="batch"/> prompts of <paramref name="prompt"/> tokens prefilled in one step.</summary>
    public static IterationFeatures Prefill(int batch, long prompt) =>
        new((double)batch * prompt, batch, 0, batch * ((double)prompt * (prompt + 1) / 2.0));

    /// <summary>One decode step of <paramref name="batch"/> sequences attending to <paramref name="kvSum"/> KV entries in all.</summary>
    public static IterationFeatures Decode(int batch, double kvSum) => new(batch, batch, kvSum, 0);

    public double[] Vector() => [1.0, Tokens, Sampled, KvRead, AttnPairs];
}

/// <summary>Fitted iteration-time coefficients (µs). Non-negative, so predictions never fall as work grows.</summary>
public sealed record IterationCoefficients(double BaseUs, double PerTokenUs, double PerSampledUs, double PerKvTokenUs, double PerAttnPairUs)
{
    public static readonly string[] Names = ["base_us", "per_token_us", "per_sampled_us", "per_kv_token_us", "per_attn_pair_us"];

    public double PredictUs(in IterationFeatures f) =>
        BaseUs + PerTokenUs * f.Tokens + PerSampledUs * f.Sampled + PerKvTokenUs * f.KvRead + PerAttnPairUs * f.AttnPairs;

    public double[] Vector() => [BaseUs, PerTokenUs, PerSampledUs, PerKvTokenUs, PerAttnPairUs];

    public static IterationCoefficients FromVector(IReadOnlyList<double> v) => new(v[0], v[1], v[2], v[3], v[4]);
}

/// <summary>
/// One measured iteration: its features, its median time, its phase (for per-phase fit quality and residuals) and
/// where it lies on the phase's grid: sequences and length per sequence (prompt for prefill, KV for decode; 0 when
/// the sample is not on a grid).
/// </summary>
public sealed record CalibrationSample(IterationFeatures Features, double TimeUs, string Phase, double Batch = 0, double Length = 0)
{
    public static CalibrationSample Prefill(int batch, long prompt, double timeUs) => new(IterationFeatures.Prefill(batch, prompt), timeUs, "prefill", batch, prompt);

    public static CalibrationSample Decode(int batch, double kvPerSequence, double timeUs) =>
        new(IterationFeatures.Decode(batch, batch * kvPerSequence), timeUs, "decode", batch, kvPerSequence);
}

/// <summary>How well a fit reproduces the samples it came from, and how well it predicts samples it did not see.</summary>
public sealed record FitQuality(int Samples, double Mape, IReadOnlyDictionary<string, double> MapeByPhase, double LeaveOneOutMape, double MaxAbsPercentError);

public sealed record IterationFitResult(IterationCoefficients Coefficients, FitQuality Quality, IReadOnlyList<string> Unidentified);
