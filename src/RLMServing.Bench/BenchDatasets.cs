using System.Text;
using System.Text.Json;
using RLMServing.IO.Traces;
using RLMServing.IO.Workloads;
using RLMServing.Workloads;
using RLMServing.Workloads.Presets;

namespace RLMServing.Bench;

/// <summary>
/// One prompt to send: its text, its length in tokens (an estimate until the server's usage says), its
/// max_tokens, and where a dataset has them its own arrival time and reference answer.
/// </summary>
public sealed record BenchPrompt(long Id, string Prompt, int PromptTokens, int MaxTokens, double? ArrivalS = null, string? ReferenceAnswer = null);

/// <summary>
/// The datasets behind <c>--dataset-name</c>. Without a tokenizer on the client, prompt lengths of real text are
/// estimated at four characters per token; synthetic prompts are built of words that are one token each in
/// common BPE vocabularies, so their length in tokens is their length in words (near enough; the server's usage
/// replaces the estimate whenever it reports prompt_tokens).
/// </summary>
public static class BenchDatasets
{
    public static IReadOnlyList<string> Names { get; } = ["random", "sharegpt", "custom", "trace", "gsm8k", "math500", "aime24", "gpqa"];

    /// <summary>Where the bundled GSM8K test split lies (copied beside the binary with the catalog).</summary>
    public static string Gsm8kPath => Path.Combine(DatasetPresetLoader.BundledDirectory, "prompts", "gsm8k", "test.jsonl");

    private static readonly string[] Words =
    [
        "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he",
        "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were", "their",
        "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would", "who", "so", "no",
    ];

    /// <summary>Loads <see cref="BenchOptions.NumPrompts"/> prompts of the options' dataset, reproducibly from the seed.</summary>
    public static IReadOnlyList<BenchPrompt> Load(BenchOptions o)
    {
        var random = new Random(o.Seed);
        var prompts = o.DatasetName switch
        {
            "random" => Random(o, random),
            "sharegpt" => ShareGpt(o, random),
            "custom" => Custom(o),
            "trace" => Trace(o),
            "gsm8k" => Gsm8k(o, random),
            _ => Preset(o, random),
        };
        if (prompts.Count == 0) throw new UserInputException($"--dataset-path: {o.DatasetPath ?? o.DatasetName}: no usable prompts");
        return o.MaxTokens is { } max ? prompts.Select(p => p with { MaxTokens = max }).ToList() : prompts;
    }

    /// <summary>A prompt of exactly <paramref name="tokens"/> one-token words; the first words are unique per request so no prefix cache serves it.</summary>
    internal static string SyntheticPrompt(long id, int tokens, Random random)
    {
        var sb = new StringBuilder(tokens * 5);
        sb.Append(id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        for (int i = 1; i < tokens; i++) sb.Append(' ').Append(Words[random.Next(Words.Length)]);
        return sb.ToString();
    }

    internal static int EstimateTokens(string text) => Math.Max(1, (text.Length + 3) / 4);

    private static List<BenchPrompt> Random(BenchOptions o, Random random) =>
        Enumerable.Range(0, o.NumPrompts).Select(i => new BenchPrompt(i, SyntheticPrompt(i, o.InputLen, random), o.InputLen, o.OutputLen)).ToList();

    /// <summary>
    /// ShareGPT's JSON: the first human turn is the prompt, the reply's length the output budget. As vLLM's
    /// ShareGPTDataset (vllm/benchmarks/datasets.py): conversations with fewer than two turns are skipped, as are
    /// prompts or replies under 4 tokens, prompts over 1,024 and pairs over 2,048; the rest shuffled with the seed.
    /// </summary>
    private static List<BenchPrompt> ShareGpt(BenchOptions o, Random random)
    {
        string path = o.DatasetPath!;
        JsonElement root;
        try
        {
            using var stream = OpenFile(path);
            root = JsonDocument.Parse(stream).RootElement.Clone();
        }
        catch (JsonException e) { throw new UserInputException($"{path}:{e.LineNumber + 1}: not valid JSON ({e.Message})"); }
        if (root.ValueKind != JsonValueKind.Array) throw new UserInputException($"{path}: expected a JSON array of conversations");
        var entries = root.EnumerateArray().ToArray();
        random.Shuffle(entries);
        var prompts = new List<BenchPrompt>();
        foreach (var entry in entries)
        {
            if (prompts.Count >= o.NumPrompts) break;
            if (!entry.TryGetProperty("conversations", out var conv) || conv.ValueKind != JsonValueKind.Array || conv.GetArrayLength() < 2) continue;
            string? prompt = conv[0].TryGetProperty("value", out var p) ? p.GetString() : null;
            string? reply = conv[1].TryGetProperty("value", out var r) ? r.GetString() : null;
            if (prompt is null || reply is null) continue;
            int promptTokens = EstimateTokens(prompt), outputTokens = EstimateTokens(reply);
            if (promptTokens < 4 || outputTokens < 4 || promptTokens > 1024 || promptTokens + outputTokens > 2048) continue;
            prompts.Add(new BenchPrompt(prompts.Count, prompt, promptTokens, outputTokens));
        }
        return prompts;
    }

    /// <summary>JSON lines with a "prompt" (vLLM's custom dataset) and optionally "max_tokens" or "output_tokens".</summary>
    private static List<BenchPrompt> Custom(BenchOptions o)
    {
        string path = o.DatasetPath!;
        var prompts = new List<BenchPrompt>();
        int lineNo = 0;
        using var reader = new StreamReader(OpenFile(path));
        while (reader.ReadLine() is { } line && prompts.Count < o.NumPrompts)
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement row;
            try { row = JsonDocument.Parse(line).RootElement.Clone(); }
            catch (JsonException e) { throw new UserInputException($"{path}:{lineNo}: not valid JSON ({e.Message})"); }
            if (row.ValueKind != JsonValueKind.Object || !row.TryGetProperty("prompt", out var p) || p.ValueKind != JsonValueKind.String)
                throw new UserInputException($"{path}:{lineNo}: prompt: a string is required");
            int output = o.OutputLen;
            foreach (var key in new[] { "max_tokens", "output_tokens" })
                if (row.TryGetProperty(key, out var m))
                {
                    if (m.ValueKind != JsonValueKind.Number || !m.TryGetInt32(out output) || output < 1)
                        throw new UserInputException($"{path}:{lineNo}: {key}: must be a positive integer");
                    break;
                }
            string text = p.GetString()!;
            prompts.Add(new BenchPrompt(prompts.Count, text, EstimateTokens(text), output,
                ReferenceAnswer: row.TryGetProperty("answer", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null));
        }
        return prompts;
    }

    /// <summary>
    /// Any file <c>rlms trace import</c> reads: its arrival times (rebased to 0; rescaled to --request-rate's mean when
    /// that is given), prompt and output lengths, prompts synthesised.
    /// </summary>
    private static List<BenchPrompt> Trace(BenchOptions o)
    {
        var requests = RequestTraceWorkload.Load(o.DatasetPath!, null, limit: o.NumPrompts, seed: o.Seed,
            rateOverride: double.IsPositiveInfinity(o.RequestRate) ? null : o.RequestRate);
        var random = new Random(o.Seed);
        return requests.Select(r => new BenchPrompt(r.Id, SyntheticPrompt(r.Id, Math.Max(1, r.PromptTokens), random), Math.Max(1, r.PromptTokens),
            Math.Max(1, r.ThinkingTokens + r.AnswerTokens), r.ArrivalTimeS)).ToList();
    }

    /// <summary>
    /// GSM8K's real questions (the bundled test split, MIT), drawn without repetition until used up, each with its
    /// reference answer for grading; max_tokens from the gsm8k preset's reasoning lengths.
    /// </summary>
    private static List<BenchPrompt> Gsm8k(BenchOptions o, Random random)
    {
        string path = o.DatasetPath ?? Gsm8kPath;
        var rows = new List<(string Question, string Answer)>();
        int lineNo = 0;
        using (var reader = new StreamReader(OpenFile(path)))
            while (reader.ReadLine() is { } line)
            {
                lineNo++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                try
                {
                    var row = JsonDocument.Parse(line).RootElement;
                    rows.Add((row.GetProperty("question").GetString()!, row.GetProperty("answer").GetString()!));
                }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
                {
                    throw new UserInputException($"{path}:{lineNo}: expected {{\"question\": ..., \"answer\": ...}} ({e.Message})");
                }
            }
        var sampler = Sampler("gsm8k", o);
        var lengthRandom = LengthRandom(o);
        var order = Enumerable.Range(0, rows.Count).ToArray();
        random.Shuffle(order);
        var prompts = new List<BenchPrompt>(o.NumPrompts);
        for (int i = 0; i < o.NumPrompts; i++)
        {
            var (question, answer) = rows[order[i % order.Length]];
            var lengths = sampler.Sample(lengthRandom);
            prompts.Add(new BenchPrompt(i, question, EstimateTokens(question), lengths.ThinkingTokens + lengths.AnswerTokens, ReferenceAnswer: answer));
        }
        return prompts;
    }

    /// <summary>math500, aime24, gpqa: prompt and budget lengths drawn from catalog/datasets/NAME.yaml, prompts synthesised.</summary>
    private static List<BenchPrompt> Preset(BenchOptions o, Random random)
    {
        var sampler = Sampler(o.DatasetName, o);
        var lengthRandom = LengthRandom(o);
        var prompts = new List<BenchPrompt>(o.NumPrompts);
        for (int i = 0; i < o.NumPrompts; i++)
        {
            var lengths = sampler.Sample(lengthRandom);
            int promptTokens = Math.Max(1, lengths.PromptTokens);
            prompts.Add(new BenchPrompt(i, SyntheticPrompt(i, promptTokens, random), promptTokens, Math.Max(1, lengths.ThinkingTokens + lengths.AnswerTokens)));
        }
        return prompts;
    }

    /// <summary>
    /// The preset lengths' own stream, the one a scenario with <c>workload.dataset</c> and the same seed draws its
    /// requests' lengths from (SyntheticWorkload.Mix(seed, 2)): the bench's k-th request has the simulator's k-th
    /// request's lengths, so a live run and its simulation differ by the server alone, not by the sample.
    /// </summary>
    private static Random LengthRandom(BenchOptions o) => new(SyntheticWorkload.Mix(o.Seed, 2));

    private static ReasoningPresetSampler Sampler(string preset, BenchOptions o) =>
        new(DatasetPresetLoader.Load(preset), reasoningModel: o.PresetLengths != "standard");

    private static FileStream OpenFile(string path)
    {
        try { return File.OpenRead(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserInputException($"--dataset-path: {path}: {(e is FileNotFoundException or DirectoryNotFoundException ? "file not found" : e.Message)}");
        }
    }
}
