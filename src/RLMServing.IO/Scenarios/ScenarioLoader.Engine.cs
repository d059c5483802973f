using RLMServing.Catalog;
using RLMServing.Scenarios;
using RLMServing.Simulation.Batching;

namespace RLMServing.IO.Scenarios;

/// <summary>What the scenario's engine sets when the scenario leaves a key out (docs/engines.md, with sources).</summary>
internal sealed record EngineDefaults(string Engine, BatchingPolicy Batching, int MaxNumSeqs, int MaxNumBatchedTokens, bool PrefixCaching, double Watermark);

public static partial class ScenarioLoader
{
    /// <summary>
    /// <c>engine</c>: a name (<c>vllm-v1</c>, the default; <c>vllm-v0</c>; <c>ort</c>) or a map with <c>name</c>,
    /// <c>version</c>, <c>cuda_graph_sizes</c>, <c>enforce_eager</c> and <c>async_scheduling</c>. CUDA-graph sizes
    /// follow the scheduler's max_num_seqs, so the engine is completed once the scheduler is bound.
    /// </summary>
    /// <summary>The <c>engine</c> key as written, before the scheduler it depends on is bound (CompleteEngine fills the defaults).</summary>
    private sealed record EngineKeys(string Name, string? Version = null, List<int>? GraphSizes = null, bool? Eager = null, bool? Async = null);

    private static EngineKeys ReadEngine(MapReader r)
    {
        var node = r.Raw("engine");
        if (node is null or ConfigScalar { IsNull: true }) return new EngineKeys(EngineConfig.VllmV1);
        if (node is ConfigScalar) return new EngineKeys(CheckEngineName(r, "engine", r.RequiredString("engine")));
        var e = r.Map("engine")!;
        string name = CheckEngineName(e, "name", e.String("name") ?? EngineConfig.VllmV1);
        string? version = e.String("version");
        List<int>? sizes = null;
        if (e.List("cuda_graph_sizes") is { } list)
        {
            sizes = new List<int>();
            for (int i = 0; i < list.Items.Count; i++)
            {
                if (list.Items[i] is not ConfigScalar sc || !int.TryParse(sc.Value, out int v) || v <= 0)
                    throw e.Error("cuda_graph_sizes", $"item {i}: expected a positive whole number", list.Items[i]);
                sizes.Add(v);
            }
            if (sizes.Count == 0) throw e.Error("cuda_graph_sizes", "expected at least one size (or enforce_eager: true)");
        }
        bool? eager = e.Bool("enforce_eager");
        bool? async = e.Bool("async_scheduling");
        if (eager == true && sizes is not null) throw e.Error("cuda_graph_sizes", "conflicts with enforce_eager: true");
        if (name == EngineConfig.Ort && (sizes is not null || async == true))
            throw e.Error(sizes is not null ? "cuda_graph_sizes" : "async_scheduling", "the ort engine runs eagerly and schedules in series");
        e.Done();
        return new EngineKeys(name, version, sizes, eager, async);
    }

    private static string CheckEngineName(MapReader r, string key, string name)
    {
        foreach (var n in EngineConfig.Names) if (string.Equals(n, name, StringComparison.OrdinalIgnoreCase)) return n;
        throw r.Error(key, $"unknown engine '{name}'; expected one of {string.Join(", ", EngineConfig.Names)}");
    }

    /// <summary>
    /// The engine's defaults for keys the scenario leaves out. vLLM V1 as `vllm serve` sets them
    /// (vllm/engine/arg_utils.py, _set_default_args, 0.11-0.19): its own scheduler (chunked prefill always on),
    /// prefix caching on, no watermark, and max_num_batched_tokens / max_num_seqs of 8192 / 1024 on GPUs of 70 GiB or
    /// more other than the A100, 2048 / 256 elsewhere. vLLM V0 (vllm/config.py SchedulerConfig and CacheConfig,
    /// 0.6-0.8): prefill-first continuous batching, max_num_batched_tokens = max(max_model_len, 2048), 256 sequences,
    /// a 0.01 block watermark. ORT (rlms replay's engine): continuous batching, 8192 / 256.
    /// </summary>
    private static EngineDefaults DefaultsFor(string engine, ModelArchitecture model, GpuSpec gpu) => engine switch
    {
        EngineConfig.VllmV1 => gpu.MemoryGib >= 70 && !gpu.Name.Contains("A100", StringComparison.OrdinalIgnoreCase)
            ? new EngineDefaults(engine, BatchingPolicy.VllmV1, 1024, 8192, true, 0)
            : new EngineDefaults(engine, BatchingPolicy.VllmV1, 256, 2048, true, 0),
        EngineConfig.VllmV0 => new EngineDefaults(engine, BatchingPolicy.VllmV0, 256, Math.Max(model.MaxContext, 2048), false, 0.01),
        _ => new EngineDefaults(engine, BatchingPolicy.Continuous, 256, 8192, false, 0),
    };

    private static EngineConfig CompleteEngine(EngineKeys e, SchedulerConfig scheduler) =>
        e.Name switch
        {
            EngineConfig.VllmV1 => new EngineConfig(e.Name, e.Version ?? "0.19",
                e.Eager == true ? null : e.GraphSizes ?? EngineConfig.DefaultCudaGraphSizes(scheduler.MaxNumSeqs), e.Async ?? VllmV1AsyncSchedulingDefault),
            EngineConfig.VllmV0 => new EngineConfig(e.Name, e.Version ?? "0.8",
                e.Eager == true ? null : e.GraphSizes ?? EngineConfig.DefaultCudaGraphSizes(scheduler.MaxNumSeqs), e.Async ?? false),
            _ => EngineConfig.OrtEngine with { Version = e.Version ?? EngineConfig.OrtEngine.Version },
        };

    /// <summary>
    /// vLLM V1 schedules asynchronously unless told otherwise from 0.12 on (PR #27614 made async_scheduling the
    /// default; vllm/v1/engine/core.py step_with_batch_queue): the host's turn overlaps the GPU's previous step.
    /// </summary>
    private const bool VllmV1AsyncSchedulingDefault = true;
}
