using FsCheck;
using FsCheck.Xunit;
using RLMServing.IO.Workloads;
using RLMServing.Workloads;
using RLMServing.Workloads.Presets;
using Xunit;

namespace RLMServing.Tests.Workloads;

/// <summary>Dataset presets, difficulty mixtures and thinking budgets.</summary>
public class ReasoningPresetTests
{
    public static TheoryData<string> PresetNames => ["gsm8k", "math500", "aime24", "gpqa", "livecodebench", "sharegpt"];

    private static double MeanThinking(ReasoningPreset preset, int n = 20000)
    {
        var sampler = new ReasoningPresetSampler(preset);
        var random = new Random(1);
        return Enumerable.Range(0, n).Average(_ => sampler.Sample(random).ThinkingTokens);
    }

    [Theory]
    [MemberData(nameof(PresetNames))]
    public void BundledPresetLoadsWithCitedSources(string name)
    {
        var preset = DatasetPresetLoader.Load(name);
        Assert.Equal(name, preset.Name);
        Assert.Contains(preset.Sources, s => !s.Estimate);
        Assert.All(preset.Reasoning.Components, c => Assert.NotNull(c.ThinkingTokens));
    }

    [Fact]
    public void HarderDatasetsThinkLonger()
    {
        double gsm8k = MeanThinking(DatasetPresetLoader.Load("gsm8k"));
        double math500 = MeanThinking(DatasetPresetLoader.Load("math500"));
        double aime24 = MeanThinking(DatasetPresetLoader.Load("aime24"));
        Assert.True(gsm8k < math500 && math500 < aime24, $"{gsm8k} < {math500} < {aime24}");
    }

    [Fact]
    public void NonReasoningModelsDoNotThink()
    {
        var sampler = new ReasoningPresetSampler(DatasetPresetLoader.Load("gpqa"), reasoningModel: false);
        var random = new Random(3);
        Assert.All(Enumerable.Range(0, 1000).Select(_ => sampler.Sample(random)), s => Assert.Equal(0, s.ThinkingTokens));
    }

    [Fact]
    public void MixtureIsBimodal()
    {
        // sharegpt's reasoning mixture follows ServeGen's R1 data: a main mode and a 4k-16k second mode.
        var sampler = new ReasoningPresetSampler(DatasetPresetLoader.Load("sharegpt"));
        var random = new Random(5);
        var outputs = Enumerable.Range(0, 20000).Select(_ => { var s = sampler.Sample(random); return s.ThinkingTokens + s.AnswerTokens; }).ToList();
        double main = outputs.Count(o => o is >= 256 and < 2048) / 20000.0;
        double second = outputs.Count(o => o is >= 4096 and < 16384) / 20000.0;
        Assert.InRange(main, 0.6, 0.9);
        Assert.InRange(second, 0.05, 0.15);
    }

    [Fact]
    public void UnknownKeyInPresetFileIsAnError()
    {
        string path = Path.Combine(Path.GetTempPath(), $"preset-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, File.ReadAllText(Path.Combine(DatasetPresetLoader.BundledDirectory, "gsm8k.yaml")) + "\ntypo_key: 1\n");
        try
        {
            var e = Assert.Throws<UserInputException>(() => DatasetPresetLoader.LoadFile(path));
            Assert.StartsWith(path + ":", e.Message);
        }
        finally { File.Delete(path); }
    }

    [Property(MaxTest = 200)]
    public bool SamplesRespectBoundsAndBudget(int seed, NonNegativeInt budget)
    {
        var preset = DatasetPresetLoader.Load("aime24");
        int max = budget.Get % 40000;
        var sampler = new ReasoningPresetSampler(preset, true, max);
        var random = new Random(seed);
        for (int i = 0; i < 50; i++)
        {
            var s = sampler.Sample(random);
            var component = preset.Reasoning.Components.Single(c => c.Name == s.Component);
            var t = component.ThinkingTokens!;
            if (s.ThinkingTokens > max) return false;
            if (s.ThinkingTruncated && s.ThinkingTokens != max) return false;
            if (!s.ThinkingTruncated && (s.ThinkingTokens < t.Min || s.ThinkingTokens > t.Max)) return false;
            if (s.AnswerTokens < component.AnswerTokens.Min || s.AnswerTokens > component.AnswerTokens.Max) return false;
            if (s.PromptTokens < preset.PromptTokens.Min || s.PromptTokens > preset.PromptTokens.Max) return false;
        }
        return true;
    }

    [Property(MaxTest = 100)]
    public bool SameSeedGivesTheSameRequests(int seed)
    {
        var sampler = new ReasoningPresetSampler(DatasetPresetLoader.Load("math500"), true, 8192);
        var a = Enumerable.Range(0, 20).Select(i => sampler.CreateRequest(i, i, new Random(seed + i))).ToList();
        var b = Enumerable.Range(0, 20).Select(i => sampler.CreateRequest(i, i, new Random(seed + i))).ToList();
        return a.SequenceEqual(b);
    }

    [Property(MaxTest = 300)]
    public bool BudgetTruncatesThinkingAndKeepsTheAnswer(NonNegativeInt thinking, NonNegativeInt budget, NonNegativeInt answer)
    {
        var request = new RequestSpec(1, 0, 10, thinking.Get, answer.Get);
        var capped = ThinkingBudget.Apply(request, budget.Get);
        return capped.ThinkingTokens == Math.Min(thinking.Get, budget.Get)
            && capped.AnswerTokens == answer.Get
            && capped.ThinkingTruncated == (thinking.Get > budget.Get);
    }
}
