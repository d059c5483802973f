using RLMServing.Catalog;
using RLMServing.IO.Traces;
using RLMServing.IO.Workloads;
using RLMServing.Workloads;
using RLMServing.Workloads.Presets;

namespace RLMServing.IO.Scenarios;

/// <summary>Scenario workloads that are not synthetic distributions: trace replay and reasoning dataset presets.</summary>
public static partial class ScenarioLoader
{
    /// <summary>
    /// <c>workload: { trace: PATH, format: F, time_scale: 1.0, limit: N, rate: R, max_thinking_tokens: B, max_output_tokens: M }</c>
    /// replays a request trace (PATH relative to the scenario file; format detected when omitted);
    /// <c>workload: { dataset: NAME, requests: N, arrival: {...}, max_thinking_tokens: B, max_output_tokens: M }</c>
    /// samples a preset from catalog/datasets (the reasoning or non-reasoning mixture by the model's catalog entry).
    /// Both take <c>n</c> (parallel sampling: each row sent as n samples sharing its prompt).
    /// Returns null for synthetic workloads. Both draw every random choice from the scenario seed.
    /// </summary>
    private static IReadOnlyList<RequestSpec>? BindTraceOrDataset(MapReader w, ModelArchitecture model, string file, int seed,
        out ClosedBatchArrivals? batches)
    {
        batches = null;
        bool trace = w.Has("trace"), dataset = w.Has("dataset");
        if (!trace && !dataset) return null;
        if (trace && dataset) throw w.Error("dataset", "give either trace or dataset, not both");
        int? maxThinking = w.Int("max_thinking_tokens");
        if (maxThinking < 0) throw w.Error("max_thinking_tokens", $"must not be negative, got {maxThinking}");
        int maxOutput = w.PositiveInt("max_output_tokens", trace ? int.MaxValue : model.MaxContext);
        int samples = w.PositiveInt("n", 1);
        var requests = trace ? BindTrace(w, file, seed, samples) : BindDataset(w, model, seed, samples, out batches);
        w.Done();
        var limited = new RequestSpec[requests.Count];
        for (int i = 0; i < requests.Count; i++)
        {
            var q = requests[i];
            // Every request reads and writes at least one token; limits as for synthetic workloads (budget, then total).
            var (thinking, answer, truncated) = SyntheticWorkload.ApplyLimits(q.ThinkingTokens, Math.Max(1, q.AnswerTokens), maxThinking, maxOutput);
            limited[i] = q with { PromptTokens = Math.Max(1, q.PromptTokens), ThinkingTokens = thinking, AnswerTokens = answer, ThinkingTruncated = truncated || q.ThinkingTruncated };
        }
        return limited;
    }

    /// <summary>
    /// With <c>workload.n</c> &gt; 1 each trace row is sent as n samples (<see cref="ParallelSampling.ExpandRows"/>).
    /// Rows of multi-turn sessions cannot be: a session's next turn reads one conversation's context, which n answers would fork.
    /// </summary>
    private static IReadOnlyList<RequestSpec> BindTrace(MapReader w, string file, int seed, int samples)
    {
        string relative = w.RequiredString("trace");
        string path = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file)) ?? ".", relative));
        string? format = w.String("format");
        double timeScale = w.PositiveDouble("time_scale", 1.0);
        int? limit = w.Int("limit");
        if (limit < 0) throw w.Error("limit", $"must not be negative, got {limit}");
        double? rate = w.Has("rate") ? w.PositiveDouble("rate") : null;
        if (!Directory.Exists(path))
        {
            try { Files.InputFile.CheckRegular(path); }
            catch (UserInputException e) { throw w.Error("trace", e.Message); }
        }
        var requests = RequestTraceWorkload.Load(path, format, timeScale, limit, rate, seed);
        if (requests.Count == 0) throw w.Error("trace", $"{path}: the trace has no requests");
        CheckTraceBounds(w, path, requests, samples);
        if (samples == 1) return requests;
        if (requests.FirstOrDefault(ParallelSampling.IsSessionTurn) is { } turn)
            throw w.Error("n", $"parallel sampling is not supported with multi-turn sessions ({path}: row {turn.Id} belongs to session '{turn.SessionId}', whose next turn reads one conversation's context); use n: 1 or a trace without session ids");
        return ParallelSampling.ExpandRows(requests, samples, seed);
    }

    /// <summary>A trace's span after time_scale, its request count and every request's lengths, within <see cref="InputLimits"/>.</summary>
    private static void CheckTraceBounds(MapReader w, string path, IReadOnlyList<RequestSpec> requests, int samples)
    {
        if ((long)requests.Count * samples > InputLimits.MaxRequests)
            throw w.Error("trace", $"{path}: {requests.Count:N0} rows x n {samples} is past the bound of {InputLimits.MaxRequests:N0} requests per run; use workload.limit (docs/limits.md)");
        double spanS = requests[^1].ArrivalTimeS;
        if (!(spanS <= InputLimits.MaxHorizonS))
            throw w.Error("trace", $"{path}: the arrivals span {InputLimits.Seconds(spanS)} after time_scale; at most {InputLimits.Seconds(InputLimits.MaxHorizonS)} (one year; docs/limits.md)");
        foreach (var r in requests)
            if ((long)r.PromptTokens > InputLimits.MaxRequestTokens || (long)r.ThinkingTokens + r.AnswerTokens > InputLimits.MaxRequestTokens)
                throw w.Error("trace", $"{path}: row {r.Id}: {r.PromptTokens:N0} prompt and {(long)r.ThinkingTokens + r.AnswerTokens:N0} output tokens; at most {InputLimits.MaxRequestTokens:N0} each (docs/limits.md)");
    }

    /// <summary>
    /// A dataset preset's requests; with n &gt; 1 each prompt's samples 1..n-1 draw their thinking and answer from the
    /// prompt's own difficulty component (the same problem) on the seeded sample stream.
    /// </summary>
    private static IReadOnlyList<RequestSpec> BindDataset(MapReader w, ModelArchitecture model, int seed, int samples, out ClosedBatchArrivals? batches)
    {
        ReasoningPreset preset;
        try { preset = DatasetPresetLoader.Load(w.RequiredString("dataset")); }
        catch (UserInputException e) when (e.Message.StartsWith("workload.dataset:", StringComparison.Ordinal)) { throw w.Error("dataset", e.Message["workload.dataset: ".Length..]); }
        int count = Requests(w);
        var arrival = BindArrival(w.Map("arrival") ?? throw w.Error("arrival", "is required"));
        CheckHorizon(w, arrival, count);
        if (arrival is ClosedLoopArrivals) throw w.Error("arrival", "closed_loop arrivals are not supported with dataset presets yet; use poisson, gamma, constant or closed_batches");
        batches = arrival as ClosedBatchArrivals;
        if (batches is not null && samples > 1) throw w.Error("n", "parallel sampling is not supported with closed_batches arrivals; use poisson, gamma or constant");
        var sampler = new ReasoningPresetSampler(preset, model.Reasoning);
        // Same stream split as synthetic workloads: arrivals do not change when only the dataset changes.
        var arrivalRng = new Random(SyntheticWorkload.Mix(seed, 1));
        var lengthRng = new Random(SyntheticWorkload.Mix(seed, 2));
        var list = new List<RequestSpec>(count);
        var components = new List<string>(count);
        double t = 0;
        for (int i = 0; i < count; i++)
        {
            if (i > 0 && batches is null) t += arrival.NextGapS(arrivalRng);   // closed batches: the simulator times arrivals
            var lengths = sampler.Sample(lengthRng);
            list.Add(ReasoningPresetSampler.ToRequest(i, t, lengths));
            components.Add(lengths.Component);
        }
        return ParallelSampling.Expand(list, samples, seed, (prompt, rng) => sampler.SampleOutput(components[(int)prompt.Id], rng));
    }
}
