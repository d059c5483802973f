using System.Text.Json;
using RLMServing.Bench;
using RLMServing.IO.Workloads;
using Xunit;

namespace RLMServing.Tests.Bench;

/// <summary>rlms bench's datasets beyond random, custom, trace and gsm8k: ShareGPT's JSON and the reasoning presets.</summary>
public class BenchDatasetTests
{
    private static string Conversation(string human, string gpt) =>
        JsonSerializer.Serialize(new { id = "x", conversations = new[] { new { from = "human", value = human }, new { from = "gpt", value = gpt } } });

    [Fact]
    public void ShareGptTakesTheFirstTurnAndSkipsWhatVllmSkips()
    {
        // Lengths are estimated at four characters per token: 40 characters are 10 tokens.
        string ok1 = new('a', 40), ok2 = new('b', 80);
        string[] conversations =
        [
            Conversation(ok1, new string('r', 120)),                                           // kept: 10 + 30 tokens
            JsonSerializer.Serialize(new { id = "one-turn", conversations = new[] { new { from = "human", value = new string('c', 40) } } }),
            Conversation("hi", new string('r', 120)),                                          // prompt under 4 tokens
            Conversation(new string('d', 40), "ok"),                                           // reply under 4 tokens
            Conversation(new string('e', 4 * 1025), new string('r', 40)),                      // prompt over 1,024 tokens
            Conversation(new string('f', 4 * 1000), new string('r', 4 * 1049)),                // pair over 2,048 tokens
            Conversation(ok2, new string('s', 4 * 1028)),                                       // kept: 20 + 1,028 = 2,048 tokens
        ];
        var path = Path.Combine(Cli.RlmsProcess.TempDir(), "sharegpt.json");
        File.WriteAllText(path, "[" + string.Join(",\n", conversations) + "]");

        var options = new BenchOptions { Model = "m", DatasetName = "sharegpt", DatasetPath = path, NumPrompts = 100, Seed = 4 };
        var prompts = BenchDatasets.Load(options);
        Assert.Equal([0L, 1L], prompts.Select(p => p.Id));
        Assert.Equal(new[] { ok1, ok2 }.Order(), prompts.Select(p => p.Prompt).Order());
        var byPrompt = prompts.ToDictionary(p => p.Prompt);
        Assert.Equal((10, 30), (byPrompt[ok1].PromptTokens, byPrompt[ok1].MaxTokens));
        Assert.Equal((20, 1028), (byPrompt[ok2].PromptTokens, byPrompt[ok2].MaxTokens));
        // Shuffled with the seed: the same seed gives the same order; --num-prompts takes the first of them.
        Assert.Equal(prompts.Select(p => p.Prompt), BenchDatasets.Load(options).Select(p => p.Prompt));
        Assert.Equal(prompts[0].Prompt, Assert.Single(BenchDatasets.Load(options with { NumPrompts = 1 })).Prompt);
        // --max-tokens overrides the replies' lengths.
        Assert.All(BenchDatasets.Load(options with { MaxTokens = 7 }), p => Assert.Equal(7, p.MaxTokens));
    }

    [Theory]
    [InlineData("math500")]
    [InlineData("aime24")]
    [InlineData("gpqa")]
    public void ReasoningPresetsDrawPromptAndBudgetLengthsFromTheCatalog(string name)
    {
        var preset = DatasetPresetLoader.Load(name);
        var options = new BenchOptions { Model = "m", DatasetName = name, NumPrompts = 400, Seed = 9 };
        var prompts = BenchDatasets.Load(options);
        Assert.Equal(400, prompts.Count);
        // Synthetic prompts of exactly their length in one-token words, within the preset's bounds.
        Assert.All(prompts, p => Assert.Equal(p.PromptTokens, p.Prompt.Split(' ').Length));
        Assert.All(prompts, p => Assert.InRange(p.PromptTokens, Math.Max(1, preset.PromptTokens.Min), preset.PromptTokens.Max));
        // The sample's median prompt is the preset's median (log-normal; 400 draws put it within a few percent).
        double median = prompts.Select(p => (double)p.PromptTokens).Order().ElementAt(200);
        Assert.InRange(median, preset.PromptTokens.Median * 0.85, preset.PromptTokens.Median * 1.15);
        // Budgets are thinking + answer of the preset's reasoning mixture: at least the smallest thinking and answer.
        int least = preset.Reasoning.Components.Min(c => (c.ThinkingTokens?.Min ?? 0) + c.AnswerTokens.Min);
        Assert.All(prompts, p => Assert.True(p.MaxTokens >= least, $"{p.MaxTokens} < {least}"));
        Assert.Equal(prompts, BenchDatasets.Load(options));
        Assert.NotEqual(prompts.Select(p => p.MaxTokens), BenchDatasets.Load(options with { Seed = 10 }).Select(p => p.MaxTokens));
    }
}
