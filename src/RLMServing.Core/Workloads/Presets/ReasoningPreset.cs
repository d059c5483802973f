namespace RLMServing.Workloads.Presets;

/// <summary>
/// A log-normal token-length distribution given by its median and log-space sigma, clamped to [Min, Max].
/// Sigma 0 gives the median every time.
/// </summary>
public sealed record LengthDistribution(double Median, double Sigma, int Min, int Max)
{
    public void Validate(string where)
    {
        if (!(Median > 0) || double.IsInfinity(Median)) throw new UserInputException($"{where}.median: must be a positive number, got {Median}");
        if (!(Sigma >= 0) || double.IsInfinity(Sigma)) throw new UserInputException($"{where}.sigma: must be zero or positive, got {Sigma}");
        if (Min < 0) throw new UserInputException($"{where}.min: must be zero or positive, got {Min}");
        if (Max < Min) throw new UserInputException($"{where}.max: must be at least min ({Min}), got {Max}");
    }

    public int Sample(Random random)
    {
        double z = StandardNormal(random);
        double value = Math.Exp(Math.Log(Median) + Sigma * z);
        return (int)Math.Clamp(Math.Round(value), Min, Max);
    }

    /// <summary>Mean of the unclamped log-normal, exp(mu + sigma²/2), for documentation and checks.</summary>
    public double UnclampedMean => Median * Math.Exp(Sigma * Sigma / 2);

    internal static double StandardNormal(Random random)
    {
        // Box–Muller; 1 - NextDouble() lies in (0, 1], so the log is finite.
        double u1 = 1.0 - random.NextDouble();
        double u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}

/// <summary>
/// One difficulty class of a dataset (for example "easy" or "hard"): its share of requests and its thinking and
/// answer lengths. Thinking is absent (zero) for non-reasoning models.
/// </summary>
public sealed record DifficultyComponent(string Name, double Weight, LengthDistribution? ThinkingTokens, LengthDistribution AnswerTokens);

/// <summary>
/// A mixture of difficulty classes. Reasoning-length distributions are bimodal (short thinking on easy problems,
/// very long thinking on hard ones); a mixture of two log-normals expresses that shape with parameters one can read.
/// </summary>
public sealed record DifficultyMixture(IReadOnlyList<DifficultyComponent> Components)
{
    public void Validate(string where)
    {
        if (Components.Count == 0) throw new UserInputException($"{where}.components: at least one component is required");
        for (int i = 0; i < Components.Count; i++)
        {
            var c = Components[i];
            if (!(c.Weight > 0) || double.IsInfinity(c.Weight))
                throw new UserInputException($"{where}.components[{i}].weight: must be a positive number, got {c.Weight}");
            c.ThinkingTokens?.Validate($"{where}.components[{i}].thinking_tokens");
            c.AnswerTokens.Validate($"{where}.components[{i}].answer_tokens");
        }
    }

    public DifficultyComponent Pick(Random random)
    {
        double total = 0;
        foreach (var c in Components) total += c.Weight;
        double u = random.NextDouble() * total;
        foreach (var c in Components)
        {
            if (u < c.Weight) return c;
            u -= c.Weight;
        }
        return Components[^1];
    }
}

/// <summary>Where a preset's numbers come from. <see cref="Estimate"/> marks numbers that are our own estimates.</summary>
public sealed record PresetSource(string Citation, string? Url, string UsedFor, bool Estimate);

/// <summary>
/// A reasoning-workload preset for one public dataset (gsm8k, math500, aime24, gpqa, livecodebench, sharegpt): prompt
/// lengths and, separately for reasoning and non-reasoning models, a difficulty mixture of thinking and answer lengths.
/// </summary>
public sealed record ReasoningPreset(
    string Name,
    string Description,
    LengthDistribution PromptTokens,
    DifficultyMixture Reasoning,
    DifficultyMixture NonReasoning,
    IReadOnlyList<PresetSource> Sources)
{
    public void Validate(string where)
    {
        if (string.IsNullOrWhiteSpace(Name)) throw new UserInputException($"{where}.name: is required");
        PromptTokens.Validate($"{where}.prompt_tokens");
        Reasoning.Validate($"{where}.reasoning");
        NonReasoning.Validate($"{where}.non_reasoning");
        if (Sources.Count == 0) throw new UserInputException($"{where}.sources: every preset must cite its sources");
    }
}

/// <summary>Token lengths of one sampled request.</summary>
public readonly record struct SampledLengths(int PromptTokens, int ThinkingTokens, int AnswerTokens, bool ThinkingTruncated, string Component);

/// <summary>
/// Samples (prompt, thinking, answer) from a preset with a caller-owned seeded <see cref="Random"/>. For a
/// non-reasoning model thinking is zero. A thinking budget truncates thinking; the answer follows in full.
/// </summary>
public sealed class ReasoningPresetSampler
{
    private readonly ReasoningPreset _preset;
    private readonly DifficultyMixture _mixture;
    private readonly int? _maxThinkingTokens;

    public ReasoningPresetSampler(ReasoningPreset preset, bool reasoningModel = true, int? maxThinkingTokens = null)
    {
        if (maxThinkingTokens < 0) throw new UserInputException($"max_thinking_tokens: must be zero or positive, got {maxThinkingTokens}");
        _preset = preset;
        _mixture = reasoningModel ? preset.Reasoning : preset.NonReasoning;
        ReasoningModel = reasoningModel;
        _maxThinkingTokens = maxThinkingTokens;
    }

    public bool ReasoningModel { get; }

    public SampledLengths Sample(Random random)
    {
        // Fixed draw order (component, prompt, thinking, answer) keeps sequences stable across versions.
        var component = _mixture.Pick(random);
        int prompt = _preset.PromptTokens.Sample(random);
        var (thinking, answer, truncated) = SampleOutput(component, random);
        return new SampledLengths(prompt, thinking, answer, truncated, component.Name);
    }

    /// <summary>
    /// Another sample of a prompt already drawn (parallel sampling): thinking and answer drawn afresh from the prompt's
    /// difficulty component, so the samples of a hard problem are long as its first one is.
    /// </summary>
    public (int Thinking, int Answer, bool Truncated) SampleOutput(string component, Random random) =>
        SampleOutput(_mixture.Components.FirstOrDefault(c => c.Name == component)
            ?? throw new ArgumentException($"no difficulty component '{component}' in the preset", nameof(component)), random);

    private (int Thinking, int Answer, bool Truncated) SampleOutput(DifficultyComponent component, Random random)
    {
        int thinking = ReasoningModel && component.ThinkingTokens is { } t ? t.Sample(random) : 0;
        int answer = component.AnswerTokens.Sample(random);
        var (capped, truncated) = ThinkingBudget.Apply(thinking, _maxThinkingTokens);
        return (capped, answer, truncated);
    }

    public RequestSpec CreateRequest(long id, double arrivalTimeS, Random random) => ToRequest(id, arrivalTimeS, Sample(random));

    public static RequestSpec ToRequest(long id, double arrivalTimeS, SampledLengths s) =>
        new(id, arrivalTimeS, s.PromptTokens, s.ThinkingTokens, s.AnswerTokens, ThinkingTruncated: s.ThinkingTruncated);
}
