using RLMServing.Workloads.Presets;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace RLMServing.IO.Workloads;

/// <summary>
/// Reads reasoning-workload presets (<c>catalog/datasets/&lt;name&gt;.yaml</c>) for <c>workload: { dataset: NAME }</c>.
/// The bundled folder sits beside the binary; extra folders come from <c>RLMS_CATALOG</c> (each folder's
/// <c>datasets/</c> subfolder) or the caller. A later file with the same name replaces an earlier one.
/// </summary>
public static class DatasetPresetLoader
{
    public static string BundledDirectory => Path.Combine(AppContext.BaseDirectory, "catalog", "datasets");

    /// <summary>Every preset visible from the bundled folder, RLMS_CATALOG and <paramref name="extraDirectories"/>.</summary>
    public static IReadOnlyDictionary<string, string> Files(IEnumerable<string>? extraDirectories = null)
    {
        var dirs = new List<string> { BundledDirectory };
        var env = Environment.GetEnvironmentVariable(RLMServing.IO.Catalog.CatalogLoader.EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env))
            dirs.AddRange(env.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, "datasets")));
        if (extraDirectories is not null) dirs.AddRange(extraDirectories);
        var files = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var dir in dirs.Where(Directory.Exists))
            foreach (var file in Directory.EnumerateFiles(dir, "*.yaml").Order(StringComparer.Ordinal))
                files[Path.GetFileNameWithoutExtension(file)] = file;
        return files;
    }

    public static ReasoningPreset Load(string name, IEnumerable<string>? extraDirectories = null)
    {
        var files = Files(extraDirectories);
        if (!files.TryGetValue(name, out var file))
            throw new UserInputException($"workload.dataset: unknown dataset preset '{name}'; known: {string.Join(", ", files.Keys.Order(StringComparer.Ordinal))}");
        return LoadFile(file);
    }

    public static ReasoningPreset LoadFile(string path)
    {
        if (!File.Exists(path)) throw new UserInputException($"{path}: dataset preset file not found");
        var text = RLMServing.IO.Files.InputFile.ReadAllText(path);
        Scenarios.YamlGuard.Check(text, path);
        var deserializer = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build();
        PresetDocument doc;
        try
        {
            using var reader = new StringReader(text);
            doc = deserializer.Deserialize<PresetDocument>(reader) ?? throw new UserInputException($"{path}: the file is empty");
        }
        catch (YamlException e)
        {
            string inner = e.InnerException?.Message ?? e.Message;
            throw new UserInputException($"{path}:{e.Start.Line}:{e.Start.Column}: {inner}", e);
        }
        var preset = doc.ToPreset(path);
        preset.Validate(path);
        return preset;
    }

    private sealed class PresetDocument
    {
        public string? Name { get; set; }
        public string? Description { get; set; }
        public DistributionDocument? PromptTokens { get; set; }
        public MixtureDocument? Reasoning { get; set; }
        public MixtureDocument? NonReasoning { get; set; }
        public List<SourceDocument>? Sources { get; set; }
        public string? Notes { get; set; }

        public ReasoningPreset ToPreset(string path) => new(
            Name ?? throw new UserInputException($"{path}: name: is required"),
            Description ?? "",
            (PromptTokens ?? throw new UserInputException($"{path}: prompt_tokens: is required")).ToDistribution(path, "prompt_tokens"),
            (Reasoning ?? throw new UserInputException($"{path}: reasoning: is required")).ToMixture(path, "reasoning"),
            (NonReasoning ?? throw new UserInputException($"{path}: non_reasoning: is required")).ToMixture(path, "non_reasoning"),
            (Sources ?? []).Select((s, i) => s.ToSource(path, i)).ToList());
    }

    private sealed class DistributionDocument
    {
        public string? Dist { get; set; }
        public double Median { get; set; }
        public double Sigma { get; set; }
        public int Min { get; set; } = 1;
        public int Max { get; set; } = 131072;

        public LengthDistribution ToDistribution(string path, string where)
        {
            if (Dist is not (null or "lognormal")) throw new UserInputException($"{path}: {where}.dist: only 'lognormal' is supported, got '{Dist}'");
            return new LengthDistribution(Median, Sigma, Min, Max);
        }
    }

    private sealed class MixtureDocument
    {
        public List<ComponentDocument>? Components { get; set; }

        public DifficultyMixture ToMixture(string path, string where) =>
            new((Components ?? []).Select((c, i) => c.ToComponent(path, $"{where}.components[{i}]")).ToList());
    }

    private sealed class ComponentDocument
    {
        public string? Name { get; set; }
        public double Weight { get; set; } = 1;
        public DistributionDocument? ThinkingTokens { get; set; }
        public DistributionDocument? AnswerTokens { get; set; }
        public string? Note { get; set; }

        public DifficultyComponent ToComponent(string path, string where) => new(
            Name ?? where,
            Weight,
            ThinkingTokens?.ToDistribution(path, where + ".thinking_tokens"),
            (AnswerTokens ?? throw new UserInputException($"{path}: {where}.answer_tokens: is required")).ToDistribution(path, where + ".answer_tokens"));
    }

    private sealed class SourceDocument
    {
        public string? Citation { get; set; }
        public string? Url { get; set; }
        public string? UsedFor { get; set; }
        public bool Estimate { get; set; }

        public PresetSource ToSource(string path, int i) => new(
            Citation ?? throw new UserInputException($"{path}: sources[{i}].citation: is required"), Url, UsedFor ?? "", Estimate);
    }
}
