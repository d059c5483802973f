namespace RLMServing.Tests.Cli;

/// <summary>A valid scenario of 20 requests that simulates in a blink: the base the CLI tests break in one place each.</summary>
public static class SmallScenario
{
    public const string Yaml = """
        name: t
        seed: 1
        hardware: { gpu: H100-SXM-80G, replicas: 1, tensor_parallel: 1 }
        model: DeepSeek-R1-Distill-Qwen-7B
        workload:
          requests: 20
          arrival: { process: poisson, rate: 4.0 }
          prompt_tokens: { dist: constant, value: 100 }
          output_tokens: { dist: constant, value: 50 }
        scheduler: { batching: continuous, max_num_seqs: 16, max_num_batched_tokens: 2048 }
        """;
}
