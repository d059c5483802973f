namespace RLMServing.Workloads;

/// <summary>
/// A synthetic workload: arrivals, prompt lengths, and output lengths split into thinking and answer tokens.
/// Either <see cref="OutputTokens"/> with <see cref="ThinkingFraction"/>, or explicit
/// <see cref="ThinkingTokens"/> and <see cref="AnswerTokens"/> distributions.
/// </summary>
public sealed record SyntheticWorkload(
    int Requests,
    ArrivalProcess Arrival,
    ITokenDistribution PromptTokens,
    ITokenDistribution? OutputTokens,
    double ThinkingFraction,
    ITokenDistribution? ThinkingTokens,
    ITokenDistribution? AnswerTokens,
    int MaxOutputTokens,
    int? MaxThinkingTokens,
    ITokenDistribution? Priority)
{
    /// <summary>
    /// Parallel sampling (workload.n): every prompt is sent as <c>n</c> samples at the same arrival. Sample 0 keeps
    /// the output length drawn for the prompt (so n = 1 draws exactly as before); samples 1..n-1 draw their own from
    /// a separate seeded stream (<see cref="ParallelSampling.Expand"/>).
    /// </summary>
    public int Samples { get; init; } = 1;

    /// <summary>
    /// Draws every request from the seed. Separate generator streams for arrivals, prompts and outputs keep
    /// arrivals identical across variants that change only the lengths (common random numbers).
    /// Closed-loop and closed-batch workloads get arrival time 0 here; the simulator assigns real ones.
    /// </summary>
    public IReadOnlyList<RequestSpec> Generate(int seed)
    {
        var arrivalRng = new Random(Mix(seed, 1));
        var promptRng = new Random(Mix(seed, 2));
        var outputRng = new Random(Mix(seed, 3));
        var priorityRng = new Random(Mix(seed, 4));
        var list = new List<RequestSpec>(Requests);
        double t = 0;
        bool open = !Arrival.IsClosed;
        for (int i = 0; i < Requests; i++)
        {
            if (open && i > 0) t += Arrival.NextGapS(arrivalRng);
            int prompt = Math.Max(1, PromptTokens.Sample(promptRng));
            var (thinking, answer, truncated) = SplitOutput(outputRng);
            int priority = Priority?.Sample(priorityRng) ?? 0;
            list.Add(new RequestSpec(i, t, prompt, thinking, answer, priority, null, truncated));
        }
        return ParallelSampling.Expand(list, Samples, seed, (_, rng) => SplitOutput(rng));
    }

    private (int Thinking, int Answer, bool Truncated) SplitOutput(Random rng)
    {
        int thinking, answer;
        if (ThinkingTokens is not null && AnswerTokens is not null)
        {
            thinking = Math.Max(0, ThinkingTokens.Sample(rng));
            answer = Math.Max(1, AnswerTokens.Sample(rng));
        }
        else
        {
            int output = Math.Max(1, OutputTokens!.Sample(rng));
            thinking = (int)Math.Round(output * ThinkingFraction, MidpointRounding.AwayFromZero);
            if (ThinkingFraction > 0 && thinking >= output) thinking = output - 1; // the answer has at least one token
            answer = output - thinking;
        }
        return ApplyLimits(thinking, answer, MaxThinkingTokens, MaxOutputTokens);
    }

    /// <summary>
    /// A thinking budget cuts thinking short and the answer follows in full; then the total is capped by
    /// max_output_tokens, which cuts the answer first and then thinking (the server stops generating).
    /// </summary>
    public static (int Thinking, int Answer, bool Truncated) ApplyLimits(int thinking, int answer, int? maxThinking, int maxOutput)
    {
        bool truncated = false;
        if (maxThinking is { } budget && thinking > budget) { thinking = budget; truncated = true; }
        if (thinking + answer > maxOutput)
        {
            if (thinking >= maxOutput) { thinking = maxOutput - 1; truncated = true; answer = 1; }
            else answer = maxOutput - thinking;
        }
        return (thinking, answer, truncated);
    }

    /// <summary>Derives independent stream seeds from the scenario seed (SplitMix64 finaliser).</summary>
    public static int Mix(int seed, int stream)
    {
        ulong z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)stream * 0xBF58476D1CE4E5B9UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }
}
