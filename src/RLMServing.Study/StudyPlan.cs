using System.Globalization;
using System.Text;
using RLMServing.IO.Scenarios;
using YamlDotNet.RepresentationModel;

namespace RLMServing.Study;

/// <summary>The experiment names: finding ids are built from them, and each is one scenario file of the simulated study.</summary>
public static class Experiments
{
    public const string Bimodal = "bimodal-latency";
    public const string Batching = "batching";
    public const string Speculative = "speculative-decoding";
    public const string KvCompression = "kv-compression";
    public const string TokenBudget = "token-budget";
}

/// <summary>One experiment as a scenario file: its name, the YAML text (written to DIR/scenarios/NAME.yaml) and its tree.</summary>
public sealed record ExperimentScenario(string Experiment, string Yaml)
{
    public string FileName => Experiment + ".yaml";

    /// <summary>The scenario tree, parsed from the text as the scenario loader parses a file.</summary>
    public ConfigMap Tree()
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(Yaml));
        return (ConfigMap)ConfigNode.FromYaml((YamlMappingNode)stream.Documents[0].RootNode);
    }
}

/// <summary>
/// Turns a study into scenario files, one per experiment, each run a variant: the same workload description the
/// existing scenarios use (dataset presets, arrival processes, batching policies, serving policies), so every
/// number of the study can be rerun with <c>rlms simulate DIR/scenarios/NAME.yaml</c>.
/// </summary>
public static class StudyPlan
{
    /// <summary>
    /// "All requests at once": a constant arrival rate so high that the whole batch is queued before the first
    /// iteration ends, so the engine's max_num_seqs alone sets the concurrency (the bench's --max-concurrency with
    /// --request-rate inf).
    /// </summary>
    private const string AllAtOnce = "{ process: constant, rate: 1000000 }";

    public static IReadOnlyList<ExperimentScenario> Build(StudyFile s)
    {
        var list = new List<ExperimentScenario>();
        int maxBudget = s.TokenBudgets[^1];
        if (s.Bimodal is { } bm)
        {
            var variants = new List<string>();
            foreach (var (pair, i) in s.Models.Select((p, i) => (p, i)))
                foreach (var d in bm.Datasets)
                {
                    variants.Add(Variant(PairName(s, i, "reasoning") + "-" + d, $"model: {pair.Reasoning}, workload.dataset: {d}"));
                    if (pair.Standard is { } std) variants.Add(Variant(PairName(s, i, "standard") + "-" + d, $"model: {std}, workload.dataset: {d}"));
                }
            list.Add(new(Experiments.Bimodal, Scenario(s, Experiments.Bimodal,
                "Bimodality of end-to-end latency: each model on each dataset at the study's load and largest token budget.",
                s.Primary.Reasoning, bm.Datasets[0], Arrival(s.Load), maxBudget, "continuous", 256, variants)));
        }
        if (s.Batching is { } ba)
        {
            var variants = new List<string>();
            foreach (var p in ba.Policies)
                variants.Add(p switch
                {
                    "static_closed_batches" => Variant(p, $"workload.arrival: {{ process: closed_batches, batch: {ba.Batch} }}"),
                    "static" => Variant(p, "scheduler.batching: static"),
                    "chunked_prefill" => Variant(p, "scheduler.batching: chunked_prefill, scheduler.max_num_batched_tokens: 512"),
                    _ => Variant(p, ""),
                });
            list.Add(new(Experiments.Batching, Scenario(s, Experiments.Batching,
                $"Batching: the same {s.Requests} requests with at most {ba.Batch} in flight. static_closed_batches is the study's client " +
                "(a batch of N sent together, the next once all have finished) on a continuous engine; static is request-level static " +
                "batching in the engine; continuous and chunked_prefill get every request at once and keep the batch full.",
                s.Primary.Reasoning, ba.Dataset, AllAtOnce, maxBudget, "continuous", ba.Batch, variants)));
        }
        if (s.Speculative is { } sp)
        {
            string spec = sp.Method == "draft"
                ? $"{{ method: draft, draft_model: {sp.DraftModel}, num_speculative_tokens: {sp.NumSpeculativeTokens}, dataset: {sp.Dataset} }}"
                : $"{{ method: {sp.Method}, num_speculative_tokens: {sp.NumSpeculativeTokens}, dataset: {sp.Dataset} }}";
            var variants = new List<string>();
            foreach (var (suffix, value, _) in sp.Loads())
            {
                string arrival = sp.Batches is not null ? $"{{ process: closed_batches, batch: {Num(value)} }}" : $"{{ process: poisson, rate: {Num(value)} }}";
                variants.Add(Variant($"base-{suffix}", $"workload.arrival: {arrival}"));
                variants.Add(Variant($"spec-{suffix}", $"workload.arrival: {arrival}, speculative: {spec}"));
            }
            // Batches larger than the engine's default 256 sequences would queue in the engine instead of the client.
            int specSeqs = Math.Max(256, sp.Batches?.Max() ?? 0);
            list.Add(new(Experiments.Speculative, Scenario(s, Experiments.Speculative,
                $"Speculative decoding ({sp.Method}, k = {sp.NumSpeculativeTokens}) against none at each load ({(sp.Batches is null ? "Poisson rates" : "closed batches of each size")}).",
                s.Primary.Reasoning, sp.Dataset, Arrival(s.Load), maxBudget, "continuous", specSeqs, variants)));
        }
        if (s.KvCompression is { } kv)
        {
            var variants = new List<string> { Variant("full", "") };
            foreach (var b in kv.Budgets)
                variants.Add(Variant($"{kv.Policy}-{b}", $"kv_cache.compression: {{ policy: {kv.Policy}, budget_tokens: {b}, interval: 128 }}"));
            list.Add(new(Experiments.KvCompression, Scenario(s, Experiments.KvCompression,
                $"KV-cache compression ({kv.Policy}) at each budget against the full cache, Poisson {Num(kv.Rate)} req/s.",
                s.Primary.Reasoning, kv.Dataset, $"{{ process: poisson, rate: {Num(kv.Rate)} }}", maxBudget, "continuous", 256, variants)));
        }
        if (s.TokenBudget is { } tb)
        {
            var variants = new List<string>();
            foreach (var (pair, i) in s.Models.Select((p, i) => (p, i)))
                foreach (var d in tb.Datasets)
                    foreach (var b in s.TokenBudgets)
                    {
                        // max_tokens as the study set it; the static thinking budget at the same number only makes the
                        // simulator read the accuracy-vs-budget curve (thinking never exceeds max_tokens anyway).
                        variants.Add(Variant($"{PairName(s, i, "reasoning")}-{d}-{b}",
                            $"model: {pair.Reasoning}, workload.dataset: {d}, workload.max_output_tokens: {b}, thinking_budget: {{ policy: static, max_thinking_tokens: {b} }}"));
                        if (pair.Standard is { } std)
                            variants.Add(Variant($"{PairName(s, i, "standard")}-{d}-{b}", $"model: {std}, workload.dataset: {d}, workload.max_output_tokens: {b}"));
                    }
            list.Add(new(Experiments.TokenBudget, Scenario(s, Experiments.TokenBudget,
                "Token budget (max_tokens) against latency and estimated accuracy, reasoning and standard models.",
                s.Primary.Reasoning, tb.Datasets[0], Arrival(s.Load), maxBudget, "continuous", 256, variants)));
        }
        return list;
    }

    /// <summary>The variant name of a model pair's side: "reasoning" alone for a one-pair study, "p2-reasoning" for the third pair.</summary>
    public static string PairName(StudyFile s, int pair, string role) => s.Models.Count == 1 ? role : $"p{pair}-{role}";

    public static string Arrival(StudyLoad load) => load.ClosedBatch is { } b
        ? $"{{ process: closed_batches, batch: {b} }}"
        : $"{{ process: poisson, rate: {Num(load.Rates[0])} }}";

    public static string Num(double v) => v.ToString("G6", CultureInfo.InvariantCulture);

    private static string Variant(string name, string set) => $"  - {{ name: {name}, set: {{ {set} }} }}";

    private static string Scenario(StudyFile s, string name, string about, string model, string dataset, string arrival, int maxOutput,
        string batching, int maxSeqs, IEnumerable<string> variants)
    {
        var y = new StringBuilder();
        y.Append("# Written by rlms study from ").Append(Path.GetFileName(s.Path)).Append(" (study '").Append(s.Name).Append("').\n");
        y.Append("# ").Append(about).Append('\n');
        y.Append("name: ").Append(name).Append('\n');
        y.Append("seed: ").Append(s.Seed.ToString(CultureInfo.InvariantCulture)).Append('\n');
        y.Append("hardware: { gpu: ").Append(s.Gpu).Append(", replicas: 1, tensor_parallel: ").Append(s.TensorParallel.ToString(CultureInfo.InvariantCulture)).Append(" }\n");
        y.Append("model: ").Append(model).Append('\n');
        y.Append("cost_model: ").Append(s.CostModelFlow).Append('\n');
        y.Append("workload:\n");
        y.Append("  requests: ").Append(s.Requests.ToString(CultureInfo.InvariantCulture)).Append('\n');
        y.Append("  arrival: ").Append(arrival).Append('\n');
        y.Append("  dataset: ").Append(dataset).Append('\n');
        y.Append("  max_output_tokens: ").Append(maxOutput.ToString(CultureInfo.InvariantCulture)).Append('\n');
        y.Append("scheduler: { batching: ").Append(batching).Append(", max_num_seqs: ").Append(maxSeqs.ToString(CultureInfo.InvariantCulture))
            .Append(", max_num_batched_tokens: 8192, queue: fcfs, preemption: recompute }\n");
        y.Append("kv_cache: { block_size: 16, gpu_memory_utilization: 0.9 }\n");
        y.Append("variants:\n");
        foreach (var v in variants) y.Append(v).Append('\n');
        return y.ToString();
    }
}
