using RLMServing.IO.Traces;
using RLMServing.Profiling.Importers;

namespace RLMServing.Cli;

/// <summary>
/// The composition root of <c>rlms trace import</c>'s formats: GPU-profile importers live in RLMServing.Profiling,
/// which RLMServing.IO cannot reference.
/// </summary>
public static class CliImporters
{
    public static TraceImporterRegistry Create() =>
        new([.. TraceImporterRegistry.OwnImporters, .. GpuProfileImporters.All]);
}

