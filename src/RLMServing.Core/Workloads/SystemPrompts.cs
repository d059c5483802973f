namespace RLMServing.Workloads;

/// <summary>
/// Shared system prompts (<c>workload.system_prompt: { tokens, count }</c>): each request's prompt is prefixed with
/// one of <c>count</c> system prompts of <c>tokens</c> tokens, drawn uniformly from its own seeded stream; requests
/// with the same system prompt share that prefix (their prefix identity), which prefix caching can reuse.
/// </summary>
public sealed record SystemPromptConfig(int Tokens, int Count)
{
    public IReadOnlyList<RequestSpec> Apply(IReadOnlyList<RequestSpec> requests, int seed)
    {
        var rng = new Random(SyntheticWorkload.Mix(seed, 6));
        var result = new RequestSpec[requests.Count];
        int k = 0;
        for (int i = 0; i < requests.Count; i++)
        {
            var r = requests[i];
            // The samples of a prompt (parallel sampling) follow its first sample: they are one prompt.
            if (r.SampleIndex == 0) k = rng.Next(Count);
            result[i] = r with { PromptTokens = r.PromptTokens + Tokens, PrefixHashes = [k], PrefixHashTokens = Tokens };
        }
        return result;
    }
}
