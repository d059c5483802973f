using System.Text.Json.Nodes;
using MathNet.Numerics.Distributions;
using RLMServing.IO.Catalog;
using RLMServing.Study;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Study;

public class StudyTests
{
    /// <summary>A study small enough to simulate in seconds: every experiment, few requests, two budgets.</summary>
    public const string Tiny = """
        name: tiny
        seed: 5
        hardware: { gpu: H100-SXM-80G, tensor_parallel: 1 }
        models:
          - { reasoning: DeepSeek-R1-Distill-Qwen-7B, standard: Qwen2.5-7B-Instruct }
        datasets: [gsm8k]
        token_budgets: [256, 4096]
        requests: 40
        load: { rates: [2] }
        experiments:
          bimodal_latency: {}
          batching: { dataset: gsm8k, batch: 16, policies: [static, continuous, chunked_prefill] }
          speculative_decoding: { dataset: math500, method: draft, draft_model: DeepSeek-R1-Distill-Qwen-1.5B, num_speculative_tokens: 2, rates: [0.5, 4] }
          kv_compression: { dataset: gsm8k, policy: rkv, budgets: [512, 1024], rate: 0.5 }
          token_budget: {}
        """;

    private static string Write(string yaml)
    {
        var path = Path.Combine(RlmsProcess.TempDir(), "study.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    private static StudyFile Load(string yaml) => StudyLoader.Load(Write(yaml), CatalogLoader.LoadDefault());

    [Theory]
    [InlineData("token_budget: {}", "token_budgets: {}", "experiments.token_budgets: unknown key; did you mean 'experiments.token_budget'?")]
    [InlineData("requests: 40", "requests: 40\nrequets: 3", "requets: unknown key; did you mean 'requests'?")]
    [InlineData("reasoning: DeepSeek-R1-Distill-Qwen-7B", "reasoning: DeepSeek-R1-Distill-Qwen-7", "models[0].reasoning: unknown model 'DeepSeek-R1-Distill-Qwen-7'; did you mean 'DeepSeek-R1-Distill-Qwen-7B'?")]
    [InlineData("standard: Qwen2.5-7B-Instruct", "standard: DeepSeek-R1-Distill-Qwen-14B", "models[0].standard: 'DeepSeek-R1-Distill-Qwen-14B' is a reasoning model")]
    [InlineData("datasets: [gsm8k]", "datasets: [gsm8K2]", "datasets: unknown dataset 'gsm8K2'")]
    [InlineData("token_budgets: [256, 4096]", "token_budgets: [4096, 256]", "token_budgets: expected increasing budgets without repeats")]
    [InlineData("load: { rates: [2] }", "load: { closed_batches: 8, rates: [2] }", "load.rates: give closed_batches or rates, not both")]
    [InlineData("policies: [static, continuous, chunked_prefill]", "policies: [static, chunked]", "experiments.batching.policies: unknown policy 'chunked'")]
    [InlineData("rates: [0.5, 4] }", "rates: [0.5] }", "experiments.speculative_decoding.rates: give at least two loads")]
    [InlineData("rates: [0.5, 4] }", "rates: [0.5, 4], batches: [1, 8] }", "experiments.speculative_decoding.rates: give batches (closed batches of each size) or rates (Poisson), not both")]
    public void ABadStudyFileIsOneLineNamingTheKeyAndExitsWith2(string from, string to, string expected)
    {
        var path = Write(Tiny.Replace(from, to));
        var o = RlmsProcess.Run("study", path, "--out", Path.Combine(RlmsProcess.TempDir(), "out"), "--quiet");
        Assert.Equal(2, o.ExitCode);
        var line = Assert.Single(o.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: {path}: ", line);
        Assert.Contains(expected, line);
        Assert.Matches(@"\(line \d+\)$", line);
        Assert.Empty(o.Stdout);
    }

    [Fact]
    public void TheTinyStudyBinds()
    {
        var s = Load(Tiny);
        Assert.Equal("DeepSeek-R1-Distill-Qwen-7B", s.Primary.Reasoning);
        Assert.Equal([256, 4096], s.TokenBudgets);
        Assert.Equal(["static", "continuous", "chunked_prefill"], s.Batching!.Policies);
        Assert.Equal(5, StudyPlan.Build(s).Count);
    }

    [Fact]
    public void TheShippedStudyBindsEveryRun()
    {
        // scenarios/study/rlmserving.yaml: every experiment's runs bind through the scenario loader, as the study does first.
        var catalog = CatalogLoader.LoadDefault();
        var s = StudyLoader.Load(Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "study", "rlmserving.yaml"), catalog);
        Assert.Equal(64, s.Load.ClosedBatch);
        var bound = StudyRunner.Bind(s, StudyPlan.Build(s), new RLMServing.IO.Scenarios.ScenarioInputs(catalog), RlmsProcess.TempDir());
        Assert.Equal([Experiments.Bimodal, Experiments.Batching, Experiments.Speculative, Experiments.KvCompression, Experiments.TokenBudget],
            bound.Select(b => b.Scenario.Experiment));
        Assert.Equal(2 * 4 * 7, bound.Single(b => b.Scenario.Experiment == Experiments.TokenBudget).Runs.Count);
    }

    [Fact]
    public void ClosedBatchesBecomeTheStudysArrivalProcess()
    {
        var s = Load(Tiny.Replace("load: { rates: [2] }", "load: { closed_batches: 64 }"));
        Assert.Equal(64, s.Load.ClosedBatch);
        Assert.Equal("{ process: closed_batches, batch: 64 }", StudyPlan.Arrival(s.Load));
        Assert.Contains("arrival: { process: closed_batches, batch: 64 }", StudyPlan.Build(s).Single(e => e.Experiment == Experiments.TokenBudget).Yaml);
        var spec = Load(Tiny.Replace("rates: [0.5, 4] }", "batches: [1, 64] }"));
        var yaml = StudyPlan.Build(spec).Single(e => e.Experiment == Experiments.Speculative).Yaml;
        Assert.Contains("{ name: spec-b64, set: { workload.arrival: { process: closed_batches, batch: 64 }, speculative:", yaml);
    }

    // ---- the bimodality test ----

    private static double[] Sample(Func<Random, double> draw, int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => draw(rng)).ToArray();
    }

    [Fact]
    public void TwoSeparatedLogNormalGroupsAreBimodal()
    {
        // Quick answers around 2 s and long chains of thought around 30 s, 60/40.
        var x = Sample(r => r.NextDouble() < 0.6 ? LogNormal.Sample(r, Math.Log(2000), 0.3) : LogNormal.Sample(r, Math.Log(30_000), 0.3), 600, 1);
        var t = Bimodality.Test(x);
        Assert.True(t.Bimodal, $"ΔBIC {t.DeltaBic}, modes {t.ModesMs.Count}");
        Assert.Equal(2, t.ModesMs.Count);
        Assert.InRange(t.ModesMs[0], 1500, 2700);
        Assert.InRange(t.ModesMs[1], 22_000, 40_000);
    }

    [Fact]
    public void OneLogNormalIsNotBimodal()
    {
        var t = Bimodality.Test(Sample(r => LogNormal.Sample(r, Math.Log(5000), 0.8), 600, 2));
        Assert.False(t.Bimodal, $"ΔBIC {t.DeltaBic}, modes {t.ModesMs.Count}");
    }

    [Fact]
    public void ASkewedUnimodalSampleIsNotCalledBimodal()
    {
        // log of a Gamma(1.5) sample is left-skewed: two components fit it better by BIC, but it has one mode.
        var t = Bimodality.Test(Sample(r => Gamma.Sample(r, 1.5, 0.001), 2000, 3));
        Assert.True(t.DeltaBic > Bimodality.StrongEvidence, $"ΔBIC {t.DeltaBic}: the mixture alone would not have called it bimodal");
        Assert.Single(t.ModesMs);
        Assert.False(t.Bimodal);
    }

    [Fact]
    public void OverlappingGroupsAreNotBimodal()
    {
        // Two groups half a standard deviation apart: one hump, whatever the mixture says.
        var t = Bimodality.Test(Sample(r => r.NextDouble() < 0.5 ? LogNormal.Sample(r, 8, 0.5) : LogNormal.Sample(r, 8.25, 0.5), 800, 4));
        Assert.False(t.Bimodal, $"ΔBIC {t.DeltaBic}, modes {t.ModesMs.Count}");
    }

    [Fact]
    public void HalvesOfTheSampleSupportClearModesAndNotABorderlineSample()
    {
        var clear = Sample(r => r.NextDouble() < 0.6 ? LogNormal.Sample(r, Math.Log(2000), 0.3) : LogNormal.Sample(r, Math.Log(30_000), 0.3), 400, 1);
        Assert.Equal(1.0, Bimodality.Support(clear, seed: 5, resamples: 60));
        Assert.Equal(0.0, Bimodality.Support(Sample(r => LogNormal.Sample(r, Math.Log(5000), 0.8), 400, 2), seed: 5, resamples: 60));
        // Two groups 2.6 standard deviations apart, 400 draws: one draw passes the test, another of the same
        // population does not. Its halves say so on either: the verdict must not rest on which one was drawn.
        double[] Borderline(int seed) => Sample(r => r.NextDouble() < 0.6 ? LogNormal.Sample(r, 7.3, 0.5) : LogNormal.Sample(r, 8.6, 0.5), 400, seed);
        Assert.True(Bimodality.Test(Borderline(1)).Bimodal);
        Assert.False(Bimodality.Test(Borderline(2)).Bimodal);
        var borderline = Borderline(1);
        double support = Bimodality.Support(borderline, seed: 5, resamples: 60);
        Assert.InRange(support, 0.05, 0.8);
        Assert.Equal(support, Bimodality.Support(borderline, seed: 5, resamples: 60));   // reproducible from the seed
        Assert.Equal(0.0, Bimodality.Support(clear[..19], seed: 5, resamples: 10));     // halves below the test's minimum
    }

    // ---- verdicts on constructed numbers ----

    [Theory]
    [InlineData(0.38, "reproduced")]
    [InlineData(0.26, "reproduced")]
    [InlineData(0.24, "differs")]
    [InlineData(0.51, "differs")]
    public void AUtilisationGainIsJudgedAgainst30To45Percent(double gain, string verdict) =>
        Assert.Equal(verdict, Verdict.InRange(gain, 0.30, 0.45, 0.05));

    [Fact]
    public void SpeculativeDecodingIsReproducedOnlyWhenTheGainIsConfinedToARegime()
    {
        Assert.Equal(Verdict.Reproduced, Verdict.Speculative([1.18, 1.05, 0.95, 0.82]));   // 18% at low load, little elsewhere
        Assert.Equal(Verdict.Differs, Verdict.Speculative([1.22, 1.21, 1.14]));             // large everywhere: not "little in general"
        Assert.Equal(Verdict.Differs, Verdict.Speculative([1.02, 1.01, 0.9]));              // no regime with 15-20%
        Assert.Equal(Verdict.Differs, Verdict.Speculative([2.0, 1.0, 0.9]));                // far more than 20%
        Assert.Equal(Verdict.NotMeasured, Verdict.Speculative([]));
        // In general is the study's own load when the loads include it: a gain there is not "little in general".
        Assert.Equal(Verdict.Reproduced, Verdict.Speculative([1.2, 1.19, 1.18, 1.05], general: 1.05));
        Assert.Equal(Verdict.Differs, Verdict.Speculative([1.2, 1.05, 1.02, 1.01], general: 1.2));
    }

    [Fact]
    public void KvCompressionNeedsAbout40PercentAtKeptQuality()
    {
        Assert.Equal(Verdict.Reproduced, Verdict.KvCompression(0.42));
        Assert.Equal(Verdict.Differs, Verdict.KvCompression(0.65));
        Assert.Equal(Verdict.Differs, Verdict.KvCompression(null));   // no budget kept quality
    }

    [Fact]
    public void TheTokenBudgetTradeOffNeedsLatencyAndAccuracyToGrowAndTheStandardModelFlatter()
    {
        Assert.Equal(Verdict.Reproduced, Verdict.TokenBudget([1000, 3000, 9000], [0.5, 0.7, 0.8], [900, 1000, 1000]));
        Assert.Equal(Verdict.Differs, Verdict.TokenBudget([1000, 3000, 9000], [0.5, 0.7, 0.6], [900, 1000, 1000]));   // accuracy falls
        Assert.Equal(Verdict.Differs, Verdict.TokenBudget([1000, 1100, 1200], [0.5, 0.7, 0.8], null));               // latency barely moves
        Assert.Equal(Verdict.Differs, Verdict.TokenBudget([1000, 3000, 9000], null, [500, 2000, 9000]));             // standard grows as much
        Assert.Equal(Verdict.Reproduced, Verdict.TokenBudget([1000, 3000, 9000], null, null));
    }

    [Fact]
    public void BimodalityIsReproducedOnMostDatasets()
    {
        Assert.Equal(Verdict.Reproduced, Verdict.Bimodal([true, true, false]));
        Assert.Equal(Verdict.Differs, Verdict.Bimodal([true, false]));
        Assert.Equal(Verdict.NotMeasured, Verdict.Bimodal([]));
    }

    // ---- end to end ----

    [Fact]
    public void ATinyStudyWritesFindingsReportAndScenarios()
    {
        var dir = RlmsProcess.TempDir();
        var path = Write(Tiny);
        var outDir = Path.Combine(dir, "out");
        var o = RlmsProcess.Run("study", path, "--out", outDir, "--jobs", "2", "--quiet");
        Assert.True(o.ExitCode == 0, o.Stderr);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "findings.json")))!;
        Assert.Equal("simulated", json["source"]!.GetValue<string>());
        var findings = json["findings"]!.AsArray();
        Assert.Equal(FindingsBuilder.Ids, findings.Select(f => f!["id"]!.GetValue<string>()));
        foreach (var f in findings)
        {
            Assert.Contains(f!["verdict"]!.GetValue<string>(), new[] { Verdict.Reproduced, Verdict.Differs, Verdict.NotMeasured });
            Assert.False(string.IsNullOrWhiteSpace(f["claim"]!.GetValue<string>()));
            Assert.False(string.IsNullOrWhiteSpace(f["ours"]!.GetValue<string>()));
            Assert.StartsWith("rlms simulate ", f["command"]!.GetValue<string>());
        }
        // Every experiment ran, so none is "not measured" in the simulator.
        Assert.DoesNotContain(findings, f => f!["verdict"]!.GetValue<string>() == Verdict.NotMeasured);
        Assert.True(File.Exists(Path.Combine(outDir, "report.html")));
        foreach (var id in StudyReport.ChartIds) Assert.Contains($"id=\"{id}\"", File.ReadAllText(Path.Combine(outDir, "report.html")));

        // A finding's command reruns its experiment: the scenario file the study wrote binds and simulates.
        var batching = Path.Combine(outDir, "scenarios", "batching.yaml");
        var rerun = RlmsProcess.Run("simulate", batching, "--out", Path.Combine(dir, "rerun"), "--quiet");
        Assert.True(rerun.ExitCode == 0, rerun.Stderr);
        var comparison = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "rerun", "comparison.json")))!;
        var busy = findings.Single(f => f!["id"]!.GetValue<string>() == FindingsBuilder.BatchingId)!["values"]!["continuous.gpu_busy_fraction"]!.GetValue<double>();
        var cont = comparison["summaries"]!.AsArray().Single(v => v!["variant"]!.GetValue<string>() == "continuous")!;
        Assert.Equal(busy, Math.Round(cont["gpu_busy_fraction"]!.GetValue<double>(), 4));

        // Reproducible: the same study gives the same findings whatever the number of jobs.
        var again = Path.Combine(dir, "again");
        Assert.Equal(0, RlmsProcess.Run("study", path, "--out", again, "--jobs", "1", "--quiet").ExitCode);
        Assert.Equal(File.ReadAllText(Path.Combine(outDir, "findings.json")).Replace(outDir, "X"), File.ReadAllText(Path.Combine(again, "findings.json")).Replace(again, "X"));
    }

    [Fact]
    public void AnExperimentTheSimulatorCannotBindNamesTheStudyFileAndExperiment()
    {
        // No cited acceptance rate for a draft model on GSM8K: the generated scenario does not bind.
        var path = Write(Tiny.Replace("speculative_decoding: { dataset: math500,", "speculative_decoding: { dataset: gsm8k,"));
        var o = RlmsProcess.Run("study", path, "--out", Path.Combine(RlmsProcess.TempDir(), "x"), "--quiet");
        Assert.Equal(2, o.ExitCode);
        var line = Assert.Single(o.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: {path}: experiments.speculative_decoding: ", line);
        Assert.Contains("no cited acceptance rate", line);
    }

    [Fact]
    public void EvaluateWithoutLiveIsRefused()
    {
        var o = RlmsProcess.Run("study", Write(Tiny), "--evaluate", "--out", Path.Combine(RlmsProcess.TempDir(), "x"));
        Assert.Equal(2, o.ExitCode);
        Assert.Contains("--evaluate", o.Stderr);
    }
}

/// <summary>The study's live path against <c>rlms serve --engine twin</c>, started in-process.</summary>
public class StudyLiveTests
{
    private const string LiveStudy = """
        name: live
        seed: 3
        hardware: { gpu: H100-SXM-80G, tensor_parallel: 1 }
        models:
          - { reasoning: DeepSeek-R1-Distill-Qwen-7B, standard: Qwen2.5-7B-Instruct }
        datasets: [gsm8k]
        token_budgets: [16, 64]
        requests: 12
        load: { rates: [40] }
        experiments:
          bimodal_latency: {}
          batching: { dataset: gsm8k, batch: 4, policies: [static, continuous, chunked_prefill] }
          speculative_decoding: { dataset: math500, method: draft, draft_model: DeepSeek-R1-Distill-Qwen-1.5B, rates: [0.5, 4] }
          kv_compression: { dataset: aime24, budgets: [2048], rate: 0.1 }
          token_budget: {}
        """;

    [Fact]
    public async Task ALiveStudyAgainstTheTwinGivesTheSameFindingIdsAndSaysWhatItCouldNotMeasure()
    {
        var dir = RlmsProcess.TempDir();
        var path = Path.Combine(dir, "live.yaml");
        File.WriteAllText(path, LiveStudy);
        var study = StudyLoader.Load(path, CatalogLoader.LoadDefault());
        await using var server = await RLMServing.Tests.Serve.RunningServer.StartAsync(options: new RLMServing.Serve.ServeOptions { TimeScale = 20 });
        var results = await StudyLive.RunAsync(study, server.Host.BaseAddress.ToString(), evaluate: false, Path.Combine(dir, "out"), null, CancellationToken.None);
        var analysis = FindingsBuilder.Build(study, results);
        Assert.Equal(FindingsBuilder.Ids, analysis.Findings.Select(f => f.Id));
        var byId = analysis.Findings.ToDictionary(f => f.Id);
        // Engine settings a client cannot change are not measured, with the reason.
        Assert.Equal(Verdict.NotMeasured, byId[FindingsBuilder.SpeculativeId].Verdict);
        Assert.Contains("engine setting", byId[FindingsBuilder.SpeculativeId].Ours);
        Assert.Equal(Verdict.NotMeasured, byId[FindingsBuilder.KvId].Verdict);
        // What a client can run was measured: latencies, and the batch occupancy read from the twin's /metrics.
        Assert.NotEqual(Verdict.NotMeasured, byId[FindingsBuilder.BimodalId].Verdict);
        Assert.NotEqual(Verdict.NotMeasured, byId[FindingsBuilder.TokenBudgetId].Verdict);
        Assert.NotNull(byId[FindingsBuilder.BatchingId].Values["continuous.batch_occupancy"]);
        Assert.Null(byId[FindingsBuilder.BatchingId].Values["continuous.gpu_busy_fraction"]);   // not observable from a client
        Assert.Equal(12, results.Get(Experiments.TokenBudget, "reasoning-gsm8k-64")!.E2eMs.Length);
        Assert.Contains("DeepSeek-R1-Distill-Qwen-7B", results.Server["served_models"]);
        Assert.StartsWith("rlms bench --base-url ", byId[FindingsBuilder.TokenBudgetId].Command);
        Assert.True(File.Exists(Path.Combine(dir, "out", "live", Experiments.TokenBudget, "reasoning-gsm8k", "budget-64", "summary.json")));
    }

    [Fact]
    public async Task LiveEvaluateReportsTheGradedAccuracyPerBudget()
    {
        // A fixture server that knows GSM8K's answers: right for some questions (fixed by the question), wrong for the rest.
        var references = File.ReadLines(RLMServing.Bench.BenchDatasets.Gsm8kPath).Select(l => JsonNode.Parse(l)!)
            .ToDictionary(n => (string)n["question"]!, n => ((string)n["answer"]!).Split("####")[^1].Trim().Replace(",", ""));
        static bool Right(string q) => q.Sum(c => c) % 3 == 0;
        await using var server = await RLMServing.Tests.Bench.FakeOpenAiServer.StartAsync((_, body) =>
        {
            string q = (string)body["messages"]![0]!["content"]!;
            // math500's prompts are synthesised: not GSM8K questions, answered wrong like the rest.
            string answer = references.TryGetValue(q, out var reference) && Right(q) ? reference : "-1";
            return new RLMServing.Tests.Bench.FakeReply([
                new(0, RLMServing.Tests.Bench.FakeOpenAiServer.Role()), new(0, RLMServing.Tests.Bench.FakeOpenAiServer.Reasoning("thinking ")),
                new(0, RLMServing.Tests.Bench.FakeOpenAiServer.Content($"The answer is {answer}.", "stop")),
                new(0, RLMServing.Tests.Bench.FakeOpenAiServer.Usage(20, 10, 5)), new(0, RLMServing.Tests.Bench.FakeOpenAiServer.Done)]);
        });
        var dir = RlmsProcess.TempDir();
        var path = Path.Combine(dir, "s.yaml");
        File.WriteAllText(path, LiveStudy.Replace("datasets: [gsm8k]", "datasets: [gsm8k, math500]")
            .Replace("  bimodal_latency: {}\n", "").Replace("  batching: { dataset: gsm8k, batch: 4, policies: [static, continuous, chunked_prefill] }\n", ""));
        var study = StudyLoader.Load(path, CatalogLoader.LoadDefault());
        var results = await StudyLive.RunAsync(study, server.BaseUrl, evaluate: true, Path.Combine(dir, "out"), null, CancellationToken.None);
        var f = FindingsBuilder.Build(study, results).Findings.Single(x => x.Id == FindingsBuilder.TokenBudgetId);
        var asked = server.Bodies.Select(b => (string)b["messages"]![0]!["content"]!).Where(references.ContainsKey).Distinct().ToList();
        var sent = results.Get(Experiments.TokenBudget, "reasoning-gsm8k-16")!;
        Assert.Equal(12, sent.E2eMs.Length);
        // The same 12 questions at both budgets (the ready check sends the first of them once more).
        Assert.Equal(12, asked.Count);
        var expected = Math.Round((double)asked.Count(Right) / 12, 4);
        Assert.InRange(expected, 0.01, 0.99);   // some right, some wrong: the accuracy is not trivially 0 or 1
        Assert.Equal(expected, f.Values["reasoning.gsm8k.16.accuracy"]);
        Assert.Equal(expected, f.Values["reasoning.gsm8k.64.accuracy"]);
        Assert.Null(f.Values["reasoning.math500.16.accuracy"]);   // synthesised prompts: nothing to grade against
        Assert.Contains("not graded", results.Server["evaluate"]);
        // Synthesised prompts carry the preset's lengths (ignore_eos, cut at the budget); GSM8K's real questions do not.
        var math = server.Bodies.Where(b => !references.ContainsKey((string)b["messages"]![0]!["content"]!)).ToList();
        Assert.NotEmpty(math);
        Assert.All(math, b => Assert.True((bool)b["ignore_eos"]!));
        Assert.All(server.Bodies.Where(b => references.ContainsKey((string)b["messages"]![0]!["content"]!)), b => Assert.Null(b["ignore_eos"]));
        Assert.Contains("--evaluate", f.Command);
    }
}
