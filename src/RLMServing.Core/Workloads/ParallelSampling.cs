namespace RLMServing.Workloads;

/// <summary>
/// Parallel sampling (<c>workload.n</c>, vLLM's <c>SamplingParams.n</c>): the samples of a prompt share its KV. The
/// sharing is expressed as prefix identity, so the replica's prefix cache (which reference-counts blocks) shares the
/// prompt's full blocks between the samples: every sample of a prompt gets the same ids over the whole prompt.
/// </summary>
public static class ParallelSampling
{
    /// <summary>Tag of the prefix ids given to prompts (system prompts use their small index, traces their hash ids).</summary>
    private const long PromptIdTag = 1L << 62;

    /// <summary>Seeded stream (<see cref="SyntheticWorkload.Mix"/>) of the output lengths of samples 1..n-1.</summary>
    public const int SampleStream = 8;

    /// <summary>
    /// Sends every prompt as <paramref name="n"/> samples at its arrival: sample ids are prompt id x n + sample (unique,
    /// in arrival order with the prompt's first sample first); sample 0 keeps the prompt's own lengths, so n = 1
    /// returns the prompts unchanged; samples 1..n-1 take (thinking, answer, truncated) from <paramref name="draw"/>,
    /// called prompt by prompt, sample by sample, on one stream seeded from <paramref name="seed"/>.
    /// </summary>
    public static IReadOnlyList<RequestSpec> Expand(IReadOnlyList<RequestSpec> prompts, int n, int seed,
        Func<RequestSpec, Random, (int Thinking, int Answer, bool Truncated)> draw)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), "A prompt needs at least one sample");
        if (n == 1) return prompts;
        var rng = new Random(SyntheticWorkload.Mix(seed, SampleStream));
        var list = new List<RequestSpec>(prompts.Count * n);
        foreach (var spec in prompts)
        {
            long prompt = spec.Id;
            list.Add(spec with { Id = prompt * n, PromptId = prompt });
            for (int s = 1; s < n; s++)
            {
                var (thinking, answer, truncated) = draw(spec, rng);
                list.Add(spec with { Id = prompt * n + s, PromptId = prompt, SampleIndex = s, ThinkingTokens = thinking, AnswerTokens = answer, ThinkingTruncated = truncated });
            }
        }
        return list;
    }

    /// <summary>
    /// Replayed rows (a request trace) sent as n samples: samples 1..n-1 take the output lengths (thinking, answer) of
    /// a row drawn uniformly from <paramref name="rows"/> — the trace's own output-length distribution, as synthetic
    /// samples draw from the workload's. Rows of multi-turn sessions cannot be sampled (see <see cref="SharePrompts"/>).
    /// </summary>
    public static IReadOnlyList<RequestSpec> ExpandRows(IReadOnlyList<RequestSpec> rows, int n, int seed)
    {
        if (n > 1 && rows.Any(IsSessionTurn)) throw new InvalidOperationException("parallel sampling cannot share a session's growing context");
        return Expand(rows, n, seed, (_, rng) =>
        {
            var row = rows[rng.Next(rows.Count)];
            return (row.ThinkingTokens, row.AnswerTokens, row.ThinkingTruncated);
        });
    }

    /// <summary>A turn of a multi-turn session: its prefix identity is its conversation's whole growing context.</summary>
    public static bool IsSessionTurn(RequestSpec r) => r.PrefixHashes is not null && r.PrefixHashTokens == int.MaxValue;

    /// <summary>Whether any request is a sample of a prompt sent with n &gt; 1.</summary>
    public static bool Sampled(IReadOnlyList<RequestSpec> requests) => requests.Any(r => r.PromptId is not null);

    /// <summary>
    /// Extends each sample's prefix identity to cover its whole prompt: units past an existing prefix (a shared
    /// system prompt) get ids unique to the prompt, so the samples of one prompt share every full prompt block and
    /// samples of different prompts share only what their prompts already shared.
    /// </summary>
    public static IReadOnlyList<RequestSpec> SharePrompts(IReadOnlyList<RequestSpec> requests)
    {
        var result = new RequestSpec[requests.Count];
        for (int i = 0; i < requests.Count; i++)
        {
            var r = requests[i];
            if (r.PromptId is not { } prompt)
            {
                result[i] = r;
                continue;
            }
            if (r.PrefixHashes is null)
            {
                result[i] = r with { PrefixHashes = [PromptIdTag | prompt << 20], PrefixHashTokens = r.PromptTokens };
                continue;
            }
            if (IsSessionTurn(r))
                throw new InvalidOperationException("parallel sampling cannot share a session's growing context");
            int unit = r.PrefixHashTokens;
            int units = (r.PromptTokens + unit - 1) / unit;
            var hashes = new long[Math.Max(units, r.PrefixHashes.Length)];
            r.PrefixHashes.CopyTo(hashes, 0);
            for (int u = r.PrefixHashes.Length; u < hashes.Length; u++) hashes[u] = PromptIdTag | prompt << 20 | (long)u;
            result[i] = r with { PrefixHashes = hashes };
        }
        return result;
    }
}
