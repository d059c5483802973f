using CommandLine;

namespace RLMServing.Cli.Commands;

[Verb("simulate", HelpText = "Run a scenario file through the discrete-event simulator.")]
public sealed class SimulateCommand : ICommand
{
    [Value(0, MetaName = "FILE", Required = true, HelpText = "Scenario YAML file.")]
    public string File { get; set; } = "";

    [Option("out", HelpText = "Output folder (default: results/<scenario name>).")]
    public string? Out { get; set; }

    [Option("seed", HelpText = "Override the scenario seed.")]
    public int? Seed { get; set; }

    [Option("set", HelpText = "Override a scenario key: dotted.key=value (repeatable).")]
    public IEnumerable<string> Set { get; set; } = [];

    public int Run() => throw new UserInputException("simulate: not wired yet");
}
