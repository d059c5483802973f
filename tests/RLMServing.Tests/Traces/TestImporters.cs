using RLMServing.IO.Traces;

namespace RLMServing.Tests.Traces;

/// <summary>The registry the CLI builds (every format), for tests that import directly.</summary>
internal static class TestImporters
{
    public static TraceImporterRegistry Registry { get; } = RLMServing.Cli.CliImporters.Create();
}
