using RLMServing.IO.Traces;
using RLMServing.IO.Workloads;
using Xunit;
using YamlDotNet.RepresentationModel;

namespace RLMServing.Tests.Traces;

/// <summary>The shipped scenarios/trace-*.yaml and preset-*.yaml files point at traces and presets that load.</summary>
public class ScenarioFileTests
{
    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "RLMServing.sln")) && Directory.Exists(Path.Combine(dir.FullName, "scenarios")))
                return dir.FullName;
        throw new InvalidOperationException("repository root not found");
    }

    private static YamlMappingNode Workload(string file)
    {
        var yaml = new YamlStream();
        using (var reader = File.OpenText(file)) yaml.Load(reader);
        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        return (YamlMappingNode)root.Children[new YamlScalarNode("workload")];
    }

    private static string? Scalar(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var node) ? ((YamlScalarNode)node).Value : null;

    public static TheoryData<string> TraceScenarios => [.. Directory.GetFiles(Path.Combine(RepoRoot(), "scenarios"), "trace-*.yaml").Select(f => Path.GetFileName(f)).Order()];

    public static TheoryData<string> PresetScenarios => [.. Directory.GetFiles(Path.Combine(RepoRoot(), "scenarios"), "preset-*.yaml").Select(f => Path.GetFileName(f)).Order()];

    [Theory]
    [MemberData(nameof(TraceScenarios))]
    public void TraceScenarioReplaysItsTrace(string name)
    {
        string file = Path.Combine(RepoRoot(), "scenarios", name);
        var workload = Workload(file);
        string trace = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(file)!, Scalar(workload, "trace")!));
        var requests = RequestTraceWorkload.Load(trace, Scalar(workload, "format"), double.Parse(Scalar(workload, "time_scale") ?? "1", System.Globalization.CultureInfo.InvariantCulture),
            limit: 200, seed: 42);
        Assert.Equal(200, requests.Count);
    }

    [Theory]
    [MemberData(nameof(PresetScenarios))]
    public void PresetScenarioNamesABundledPreset(string name)
    {
        var workload = Workload(Path.Combine(RepoRoot(), "scenarios", name));
        var preset = DatasetPresetLoader.Load(Scalar(workload, "dataset")!);
        Assert.NotNull(preset);
    }

    [Fact]
    public void EveryTraceAndPresetHasAScenario()
    {
        Assert.Equal(6, TraceScenarios.Count);
        Assert.True(PresetScenarios.Count >= 6);
    }
}
