namespace RLMServing.Policies;

/// <summary>
/// Accepted draft tokens per request and step: with per-token acceptance probability a, the first rejection among
/// k proposals ends the accepted prefix, so P(j or more accepted) = a^j (truncated geometric; Leviathan et al. 2023).
/// Draws are counter-based — a hash of (seed, request, the request's step number) — so they do not depend on the
/// order in which the engine visits requests, and the fast-forward and stepping engines draw the same numbers.
/// </summary>
public static class SpeculativeAcceptance
{
    public static int AcceptedDraftTokens(int seed, long requestId, long step, int k, double acceptanceRate)
    {
        if (k <= 0 || acceptanceRate <= 0) return 0;
        if (acceptanceRate >= 1) return k;
        ulong h = Mix((ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ Mix((ulong)requestId + 0x632BE59BD9B4E019UL) ^ Mix((ulong)step * 0xD1B54A32D192ED03UL + 1));
        double u = ((h >> 11) + 0.5) / (1UL << 53);   // uniform in (0, 1)
        double j = Math.Floor(Math.Log(u) / Math.Log(acceptanceRate));
        return j >= k ? k : (int)j;
    }

    /// <summary>SplitMix64's finaliser.</summary>
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
