using System.Text.Json.Serialization;

namespace RLMServing.Calibration;

/// <summary>
/// calibration/*.json: a fitted cost model as plain data — its coefficients, the measurements' grid, where the
/// measurements came from and how well the fit reproduces and predicts them.
/// </summary>
public sealed record CalibrationFile
{
    [JsonPropertyName("format")] public string Format { get; init; } = "rlms-calibration/1";
    [JsonPropertyName("form")] public string Form { get; init; } = FormName;
    [JsonPropertyName("model")] public string Model { get; init; } = "";
    [JsonPropertyName("gpu")] public string Gpu { get; init; } = "";
    [JsonPropertyName("tensor_parallel")] public int TensorParallel { get; init; } = 1;
    [JsonPropertyName("dtype")] public string Dtype { get; init; } = "";
    /// <summary>The serving stack whose kernels were measured: vllm, sarathi-serve, distserve, ort, splitwise.</summary>
    [JsonPropertyName("engine")] public string Engine { get; init; } = "";
    /// <summary>Its version as the source records it (vLLM 0.19.0, ONNX Runtime 1.31, ...).</summary>
    [JsonPropertyName("engine_version")] public string EngineVersion { get; init; } = "";
    /// <summary>What the measurements are: rlms-profile, splitwise, vidur operators, llmservingsim operators, distserve vllm, ...</summary>
    [JsonPropertyName("source")] public string Source { get; init; } = "";
    [JsonPropertyName("coefficients")] public Dictionary<string, double> Coefficients { get; init; } = new();
    [JsonPropertyName("unidentified")] public List<string> Unidentified { get; init; } = [];
    /// <summary>Terms not fitted to measurements but taken from the roofline, each with why (operator profiles without that operator).</summary>
    [JsonPropertyName("derived")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, string>? Derived { get; init; }
    [JsonPropertyName("grid")] public CalibrationGrid Grid { get; init; } = new();
    /// <summary>Measured/regression ratios per phase on the measured grid, interpolated inside it (absent: the regression alone).</summary>
    [JsonPropertyName("residuals")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, ResidualTable>? Residuals { get; init; }
    /// <summary>
    /// The per-layer operator measurements themselves (LLMServingSim profiles), composed per iteration at simulation
    /// time as LLMServingSim composes them; when present they price iterations instead of the regression.
    /// </summary>
    [JsonPropertyName("operator_tables")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public OperatorTables? OperatorTables { get; init; }
    [JsonPropertyName("fit")] public CalibrationFitQuality Fit { get; init; } = new();
    /// <summary>
    /// Host work per iteration outside the measured steps (the serving engine's scheduler and bookkeeping between
    /// iterations), measured from replays of the engine (rlms calibrate --host-overhead); absent: none.
    /// </summary>
    [JsonPropertyName("host_overhead")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public HostOverhead? HostOverhead { get; init; }
    [JsonPropertyName("provenance")] public CalibrationProvenance Provenance { get; init; } = new();

    /// <summary>time_us = (base + per_token·tokens + per_sampled·sequences sampling + per_kv_token·KV entries read + per_attn_pair·prefill attention pairs) × interpolated residual inside the grid.</summary>
    public const string FormName = "iteration-linear/1";

    public IterationCoefficients ToCoefficients() =>
        IterationCoefficients.FromVector(IterationCoefficients.Names.Select(n => Coefficients.GetValueOrDefault(n)).ToArray());

    public CalibratedIterationModel ToModel() => CalibratedIterationModel.From(ToCoefficients(), Residuals);
}

/// <summary>Host time per iteration between the engine's measured steps, and what it was measured from.</summary>
public sealed record HostOverhead
{
    /// <summary>Mean host time per iteration, µs (added to every simulated iteration).</summary>
    [JsonPropertyName("per_iteration_us")] public double PerIterationUs { get; init; }
    [JsonPropertyName("median_us")] public double MedianUs { get; init; }
    [JsonPropertyName("iterations")] public long Iterations { get; init; }
    [JsonPropertyName("sources")] public List<string> Sources { get; init; } = [];
}

public sealed record CalibrationGrid
{
    [JsonPropertyName("min_batch")] public int MinBatch { get; init; }
    [JsonPropertyName("max_batch")] public int MaxBatch { get; init; }
    [JsonPropertyName("min_context")] public long MinContext { get; init; }
    [JsonPropertyName("max_context")] public long MaxContext { get; init; }
    [JsonPropertyName("max_prefill_tokens")] public long MaxPrefillTokens { get; init; }
    [JsonPropertyName("prefill_samples")] public int PrefillSamples { get; init; }
    [JsonPropertyName("decode_samples")] public int DecodeSamples { get; init; }
}

public sealed record CalibrationFitQuality
{
    [JsonPropertyName("samples")] public int Samples { get; init; }
    [JsonPropertyName("mape")] public double Mape { get; init; }
    [JsonPropertyName("mape_by_phase")] public Dictionary<string, double> MapeByPhase { get; init; } = new();
    [JsonPropertyName("leave_one_out_mape")] public double? LeaveOneOutMape { get; init; }
    [JsonPropertyName("max_abs_percent_error")] public double MaxAbsPercentError { get; init; }
    /// <summary>Held-out error of what the simulator uses: the regression with the residuals interpolated from the other samples.</summary>
    [JsonPropertyName("interpolated_leave_one_out_mape")] public double? InterpolatedLeaveOneOutMape { get; init; }
    [JsonPropertyName("interpolated_leave_one_out_by_phase")] public Dictionary<string, double>? InterpolatedLeaveOneOutByPhase { get; init; }
    /// <summary>Operator-level calibrations: each operator's own fit to its profile rows.</summary>
    [JsonPropertyName("mape_by_operator")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, OperatorFitQuality>? MapeByOperator { get; init; }
}

public sealed record OperatorFitQuality
{
    [JsonPropertyName("samples")] public int Samples { get; init; }
    [JsonPropertyName("mape")] public double Mape { get; init; }
    [JsonPropertyName("leave_one_out_mape")] public double? LeaveOneOutMape { get; init; }
}

public sealed record CalibrationProvenance
{
    [JsonPropertyName("sources")] public List<string> Sources { get; init; } = [];
    [JsonPropertyName("devices")] public List<string> Devices { get; init; } = [];
    [JsonPropertyName("trace_metadata")] public Dictionary<string, string> TraceMetadata { get; init; } = new();
    [JsonPropertyName("command")] public string Command { get; init; } = "";
}
