namespace RLMServing.Profiling;

/// <summary>A decode-attention configuration: one query token for each of the sequences, whose KV lengths are given.</summary>
public sealed record DecodePoint(int Batch, int Context, string Skew)
{
    /// <summary>
    /// Per-sequence KV lengths: uniform (all = context), skewed (one sequence at context, the rest at context/8, as in
    /// LLMServingSim's skew profile), linear (evenly spread from context/batch up to context).
    /// </summary>
    public int[] Lengths() => Skew switch
    {
        "uniform" => Enumerable.Repeat(Context, Batch).ToArray(),
        "skewed" => Enumerable.Range(0, Batch).Select(i => i == 0 ? Context : Math.Max(1, Context / 8)).ToArray(),
        "linear" => Enumerable.Range(1, Batch).Select(i => Math.Max(1, (int)((long)Context * i / Batch))).ToArray(),
        _ => throw new ArgumentException($"unknown skew '{Skew}'"),
    };
}

/// <summary>A generation-loop configuration: prefill a prompt for a batch, then decode this many steps.</summary>
public sealed record GenerationPoint(int Batch, int Prompt, int Steps);

/// <summary>The shapes a profile run measures; quick for CPU smoke tests, standard for a GPU capture, full for more.</summary>
public sealed record ProfileGrid(
    string Name,
    IReadOnlyList<int> Tokens,
    IReadOnlyList<(int Chunk, int Context)> Prefill,
    IReadOnlyList<DecodePoint> Decode,
    IReadOnlyList<int> LmHeadBatch,
    IReadOnlyList<DecodePoint> LayerDecode,
    IReadOnlyList<int> LayerPrefill,
    IReadOnlyList<GenerationPoint> Generation,
    int GenerationReps,
    Measurement.SamplingPolicy Policy)
{
    public static readonly string[] Names = ["quick", "standard", "full", "serving"];

    public static ProfileGrid Get(string name) => name.ToLowerInvariant() switch
    {
        "quick" => Quick,
        "standard" => Standard,
        "full" => Full,
        "serving" => Serving,
        _ => throw new UserInputException($"--grid: '{name}' is not one of {string.Join(", ", Names)}"),
    };

    /// <summary>Largest context any attention configuration of this grid reaches (sizes the rotary tables).</summary>
    public int MaxContext =>
        new[]
        {
            Prefill.Select(p => p.Chunk + p.Context).DefaultIfEmpty(0).Max(),
            Decode.Concat(LayerDecode).Select(d => d.Context + 1).DefaultIfEmpty(0).Max(),
            Generation.Select(g => g.Prompt + g.Steps).DefaultIfEmpty(0).Max(),
            LayerPrefill.DefaultIfEmpty(0).Max(),
            Tokens.DefaultIfEmpty(0).Max(),
        }.Max() + 1;

    public static ProfileGrid Quick { get; } = new(
        "quick",
        Tokens: [1, 4, 16, 128, 512],
        Prefill: [(16, 0), (128, 0), (16, 1024), (128, 1024)],
        Decode: [.. Uniform([1, 4], [256, 2048, 8192]), new DecodePoint(4, 8192, "skewed"), new DecodePoint(4, 8192, "linear")],
        LmHeadBatch: [1, 8],
        LayerDecode: [new DecodePoint(4, 2048, "uniform")],
        LayerPrefill: [128],
        Generation: [new GenerationPoint(1, 64, 16), new GenerationPoint(4, 64, 16)],
        GenerationReps: 3,
        Policy: new Measurement.SamplingPolicy(TargetSeconds: 0.1, MaxWarmupSeconds: 0.3));

    public static ProfileGrid Standard { get; } = new(
        "standard",
        Tokens: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192],
        Prefill: [.. from c in new[] { 128, 512, 2048 } from k in new[] { 0, 2048, 8192, 30720 } select (c, k)],
        Decode: [.. Uniform([1, 4, 16, 64], [1024, 4096, 16384, 32768]),
            .. from b in new[] { 16, 64 } from c in new[] { 4096, 32768 } from s in new[] { "skewed", "linear" } select new DecodePoint(b, c, s)],
        LmHeadBatch: [1, 2, 4, 8, 16, 32, 64, 128, 256],
        LayerDecode: [new DecodePoint(1, 1024, "uniform"), new DecodePoint(16, 4096, "uniform"), new DecodePoint(64, 4096, "uniform")],
        LayerPrefill: [512, 2048],
        Generation: [new GenerationPoint(1, 1024, 32), new GenerationPoint(8, 1024, 32), new GenerationPoint(32, 1024, 32),
            new GenerationPoint(1, 8192, 32), new GenerationPoint(8, 8192, 16), new GenerationPoint(1, 32704, 32)],
        GenerationReps: 2,
        Policy: new Measurement.SamplingPolicy(TargetSeconds: 0.1, MaxWarmupSeconds: 0.3));

    public static ProfileGrid Full { get; } = new(
        "full",
        Tokens: [.. Enumerable.Range(0, 15).Select(i => 1 << i)],
        Prefill: [.. from c in new[] { 64, 128, 256, 512, 1024, 2048, 4096 } from k in new[] { 0, 1024, 4096, 16384, 28672 } select (c, k)],
        Decode: [.. Uniform([1, 2, 4, 8, 16, 32, 64, 128], [512, 1024, 2048, 4096, 8192, 16384, 32768]),
            .. from b in new[] { 8, 32, 128 } from c in new[] { 4096, 16384, 32768 } from s in new[] { "skewed", "linear" } select new DecodePoint(b, c, s)],
        LmHeadBatch: [.. Enumerable.Range(0, 10).Select(i => 1 << i)],
        LayerDecode: [.. Uniform([1, 16, 64], [1024, 8192, 32768])],
        LayerPrefill: [256, 1024, 4096],
        Generation: [.. from b in new[] { 1, 8, 32 } from p in new[] { 1024, 8192, 32704 } select new GenerationPoint(b, p, 32)],
        GenerationReps: 3,
        Policy: new Measurement.SamplingPolicy(TargetSeconds: 0.2));

    /// <summary>
    /// Generation loops shaped like a small serving run (batch-1 prefills of many lengths, as rlms replay runs each
    /// prompt, and decode batches up to 16 at growing contexts), for calibrating a CPU replay of a small model
    /// (scenarios/fidelity-cpu.yaml); the operator groups are the quick grid's. Six repetitions, taken round the grid,
    /// so that each point averages over a drifting machine's speed (docs/fidelity.md).
    /// </summary>
    public static ProfileGrid Serving { get; } = Quick with
    {
        Name = "serving",
        Generation = [.. from b in new[] { 1, 2, 4, 8, 16 } from p in new[] { 32, 256, 1024 } select new GenerationPoint(b, p, 48),
            new GenerationPoint(1, 2048, 48), new GenerationPoint(1, 3072, 48), new GenerationPoint(4, 2048, 48)],
        GenerationReps = 6,
    };

    private static IEnumerable<DecodePoint> Uniform(int[] batches, int[] contexts) =>
        from b in batches from c in contexts select new DecodePoint(b, c, "uniform");

    /// <summary>Keeps configurations whose KV buffer (batch × context tokens) fits <paramref name="maxKvTokens"/>.</summary>
    public ProfileGrid Cap(long maxKvTokens) => this with
    {
        Decode = Decode.Where(d => (long)d.Batch * (d.Context + 1) <= maxKvTokens).ToList(),
        LayerDecode = LayerDecode.Where(d => (long)d.Batch * (d.Context + 1) <= maxKvTokens).ToList(),
        Generation = Generation.Where(g => (long)g.Batch * (g.Prompt + g.Steps) <= maxKvTokens).ToList(),
    };
}
