using RLMServing.Calibration;
using RLMServing.Catalog;
using RLMServing.Costs;
using RLMServing.IO.Catalog;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Runs;

public sealed class MoeAndEngineTests
{
    private static readonly HardwareCatalog Catalog = CatalogLoader.LoadDefault([]);

    [Fact]
    public void MixtureOfExperts_ComputesTopKExperts_AndReadsOnlyTheExpertsItsTokensTouch()
    {
        var m = Catalog.Model("Mixtral-8x7B-v0.1");
        long attention = (long)m.Hidden * m.QkvWidth + (long)m.Heads * m.HeadDim * m.Hidden;
        long expert = 3L * m.Hidden * m.ExpertFfn;
        Assert.Equal(attention + (long)m.Hidden * m.Experts + 2L * m.Hidden + 8 * expert, m.ParamsPerLayer);
        Assert.Equal(attention + (long)m.Hidden * m.Experts + 2L * m.Hidden + 2 * expert, m.ActiveParamsPerLayer);
        // Mixtral-8x7B: about 46.7 B parameters, 12.9 B active per token (Mistral AI's model card).
        Assert.InRange(m.ParameterCount / 1e9, 46.0, 47.5);
        Assert.InRange((m.Layers * m.ActiveParamsPerLayer + 2L * m.Vocab * m.Hidden) / 1e9, 12.5, 13.3);
        Assert.Equal([2.0, 4, 8, 8], new[] { 1, 2, 4, 100 }.Select(t => m.ExpertsTouched(t)));

        var gpu = Catalog.Gpu("H100-SXM-80G");
        var roofline = new RooflineCostModel(m, gpu, 1, 0.6, 0.85, 0, 0);
        double bytes = m.BytesPerParam;
        // One decode token reads the shared weights, its 2 experts and the LM head; 100 tokens read all 8 experts.
        double one = roofline.Decode(1, 1).Bytes - 2 * m.KvBytesPerToken, hundred = roofline.Decode(100, 100).Bytes - 200 * m.KvBytesPerToken;
        Assert.Equal(6 * m.Layers * expert * bytes, hundred - one, 0);
        var sharded = new RooflineCostModel(m with { ExpertShards = 2 }, gpu, 1, 0.6, 0.85, 0, 0);
        // Half the experts on each of two ranks: 100 tokens touch 4 of them.
        Assert.Equal(4 * m.Layers * expert * bytes, hundred - (sharded.Decode(100, 100).Bytes - 200 * m.KvBytesPerToken), 0);
    }

    [Fact]
    public void ExpertParallel_SpreadsTheExpertsOverReplicas_AndNeedsAMixtureOfExperts()
    {
        var root = RlmsProcess.RepoRoot();
        string Scenario(string model, int replicas) =>
            $"name: ep\nhardware: {{ gpu: H100-SXM-80G, replicas: {replicas}, tensor_parallel: 2, expert_parallel: true }}\nmodel: {model}\n" +
            "workload: { requests: 10, arrival: { process: poisson, rate: 1 }, prompt_tokens: { dist: constant, value: 100 }, output_tokens: { dist: constant, value: 10 } }\n";
        var dir = RlmsProcess.TempDir();
        try
        {
            var good = Path.Combine(dir, "good.yaml");
            File.WriteAllText(good, Scenario("Mixtral-8x7B-v0.1", 2));
            var run = ScenarioRunner.Prepare(ScenarioLoader.Load(good), Catalog).Single();
            Assert.Equal(2, run.Model.ExpertShards);
            Assert.Equal(4, (int)(Catalog.Model("Mixtral-8x7B-v0.1").ParamsPerLayer - run.Model.ParamsPerLayer) / (int)run.Model.ParamsPerExpert);
            var dense = Path.Combine(dir, "dense.yaml");
            File.WriteAllText(dense, Scenario("Llama-3.1-8B", 2));
            var e = Assert.Throws<UserInputException>(() => ScenarioRunner.Prepare(ScenarioLoader.Load(dense), Catalog));
            Assert.Contains("hardware.expert_parallel: Llama-3.1-8B is not a mixture of experts", e.Message);
        }
        finally { Directory.Delete(dir, true); }
        _ = root;
    }

    [Fact]
    public void EngineWarning_WhenTheCalibrationWasMeasuredOnAnotherStack_Only()
    {
        var ort = new CalibrationFile { Engine = "ort", EngineVersion = "ONNX Runtime 1.31.0" };
        var vllm = new CalibrationFile { Engine = "vllm", EngineVersion = "vLLM 0.19.0 (eager kernels)" };
        Assert.Contains("measured on ort (ONNX Runtime 1.31.0), used to predict engine vllm-v1", ScenarioRunner.EngineMismatch(ort, "vllm-v1", "h200.json"));
        Assert.Null(ScenarioRunner.EngineMismatch(vllm, "vllm-v1"));
        Assert.Null(ScenarioRunner.EngineMismatch(vllm, "vllm-v0"));
        Assert.Null(ScenarioRunner.EngineMismatch(ort, "ort"));
        Assert.NotNull(ScenarioRunner.EngineMismatch(vllm, "ort"));
    }

    [Fact]
    public void Simulate_SaysOnceOnStderrAndInSummary_WhenAnOrtCalibrationPredictsVllm()
    {
        var root = RlmsProcess.RepoRoot();
        var dir = RlmsProcess.TempDir();
        try
        {
            // calibrated-h200.yaml models the ORT engine its calibration measured; asked to predict vLLM V1 instead, it warns.
            var outcome = RlmsProcess.RunIn(root, "simulate", "scenarios/calibrated-h200.yaml", "--out", dir, "--quiet",
                "--set", "workload.requests=40", "--set", "engine=vllm-v1");
            Assert.Equal(0, outcome.ExitCode);
            var lines = outcome.Stderr.Split('\n').Where(l => l.Contains("used to predict engine vllm-v1")).ToList();
            Assert.Single(lines);
            // The scenario's calibrated variant carries the warning; its roofline variant has no calibration to warn about.
            Assert.Contains("used to predict engine vllm-v1", File.ReadAllText(Path.Combine(dir, "calibrated-ort", "summary.json")));
            Assert.DoesNotContain("used to predict engine", File.ReadAllText(Path.Combine(dir, "roofline", "summary.json")));
        }
        finally { Directory.Delete(dir, true); }
    }
}
