using RLMServing.Workloads;

namespace RLMServing.IO.Traces;

/// <summary>
/// Turns a request trace (any format) into the simulator's <see cref="RequestSpec"/>s for
/// <c>workload: { trace: PATH, format: F, time_scale, limit }</c>.
/// </summary>
public static class RequestTraceWorkload
{
    /// <summary>
    /// Loads a trace for replay. Arrivals are shifted so the first request arrives at 0 and then multiplied by
    /// <paramref name="timeScale"/> (0.5 = twice as fast); <paramref name="rateOverride"/>, when given, replaces the
    /// time scale with the one that makes the mean rate equal to it. Requests keep the trace's order; ids are 0..n-1.
    /// Thinking tokens come from the trace where known (answer = output − thinking); otherwise all output is answer.
    /// Failed requests (BurstGPT rows with failed = true) are dropped. <paramref name="seed"/> drives generator formats
    /// (servegen). <paramref name="format"/> null or "auto" detects the format.
    /// </summary>
    public static IReadOnlyList<RequestSpec> Load(string path, string? format, double timeScale = 1.0, long? limit = null,
        double? rateOverride = null, int seed = 0, SourceOptions? options = null, bool skipBadRows = false)
    {
        if (!(timeScale > 0) || double.IsInfinity(timeScale)) throw new UserInputException($"workload.time_scale: must be a positive number, got {timeScale}");
        if (rateOverride is double r && (!(r > 0) || double.IsInfinity(r))) throw new UserInputException($"workload.rate: must be a positive number, got {r}");
        if (limit is < 0) throw new UserInputException($"workload.limit: must be zero or positive, got {limit}");
        var source = string.IsNullOrEmpty(format) || format == "auto" ? RequestTraceFormats.Detect(path) : RequestTraceFormats.Get(format);
        var context = new SourceContext((options ?? new SourceOptions()) with { Seed = seed }, new BadRows(path, skipBadRows));
        var rows = new List<RequestTraceRow>();
        foreach (var row in source.Read(path, context))
        {
            if (rows.Count >= limit) break;
            if (row.Failed == true) continue;
            rows.Add(row);
        }
        int hashTokens = context.Metadata.TryGetValue("rlms.hash_block_tokens", out var t) && int.TryParse(t, out var parsed) && parsed > 0
            ? parsed : MooncakeSource.BlockTokens;
        return ToRequests(rows, timeScale, rateOverride, hashTokens);
    }

    /// <summary>The pure part of <see cref="Load"/>: rebases, scales and converts rows already in arrival order.</summary>
    public static IReadOnlyList<RequestSpec> ToRequests(IReadOnlyList<RequestTraceRow> rows, double timeScale = 1.0, double? rateOverride = null,
        int hashBlockTokens = MooncakeSource.BlockTokens)
    {
        if (rows.Count == 0) return [];
        double first = rows[0].ArrivalTimeS;
        double span = rows[^1].ArrivalTimeS - first;
        double scale = timeScale;
        if (rateOverride is double rate && span > 0) scale = rows.Count / span / rate;
        var requests = new RequestSpec[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            int thinking = row.ThinkingTokens ?? 0;
            requests[i] = new RequestSpec(i, (row.ArrivalTimeS - first) * scale, row.PromptTokens, thinking, row.OutputTokens - thinking, SessionId: row.SessionId);
            if (row.HashIds is { Length: > 0 } hashes)
                requests[i] = requests[i] with { PrefixHashes = ParseHashIds(hashes), PrefixHashTokens = hashBlockTokens };
            else if (row.SessionId is { Length: > 0 } session)
                // A session is one growing conversation: each turn's prompt starts with everything before it.
                requests[i] = requests[i] with { PrefixHashes = [StableHash(session)], PrefixHashTokens = int.MaxValue };
        }
        return requests;
    }

    /// <summary>Mooncake hash ids as stored in the hash_ids column: integers separated by spaces.</summary>
    public static long[] ParseHashIds(string text) =>
        text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(t => long.Parse(t, System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    /// <summary>FNV-1a of a session id, with the top bit set so it never equals a trace's own (non-negative) hash ids.</summary>
    public static long StableHash(string text)
    {
        ulong h = 14695981039346656037UL;
        foreach (char ch in text) { h ^= ch; h *= 1099511628211UL; }
        return (long)(h | (1UL << 63));
    }
}
