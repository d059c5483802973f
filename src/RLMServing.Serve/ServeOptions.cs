namespace RLMServing.Serve;

/// <summary>Which engine generates the tokens.</summary>
public enum ServeEngineKind { Twin, Onnx }

/// <summary>Which field of a streamed or returned chat message carries the reasoning text.</summary>
public enum ReasoningField { Reasoning, ReasoningContent, Both }

/// <summary>What goes wrong on purpose when failure injection picks a request (--failure-types).</summary>
public enum FailureType { ServerError, RateLimit, Abort }

/// <summary>The settings of one <c>rlms serve</c> (the command line, checked).</summary>
public sealed record ServeOptions
{
    public ServeEngineKind Engine { get; init; } = ServeEngineKind.Twin;
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 picks a free port (tests).</summary>
    public int Port { get; init; } = 8000;
    /// <summary>The model name clients must send; null: the scenario's model.</summary>
    public string? ServedModelName { get; init; }
    public string? ApiKey { get; init; }
    /// <summary>Simulated seconds per wall second (the twin).</summary>
    public double TimeScale { get; init; } = 1.0;
    public string? RecordDir { get; init; }
    public double FailureInjectionRate { get; init; }
    public IReadOnlyList<FailureType> FailureTypes { get; init; } = [FailureType.ServerError, FailureType.RateLimit, FailureType.Abort];
    public ReasoningField ReasoningField { get; init; } = ReasoningField.Reasoning;
    /// <summary>Requests allowed to wait for the scheduler before new ones get 429.</summary>
    public int MaxWaiting { get; init; } = 1024;
    /// <summary>Longest prompt plus output a request may ask for; null: the KV cache's capacity (twin), 4096 (onnx).</summary>
    public int? MaxModelLen { get; init; }
    /// <summary>The ONNX Runtime engine: cpu, cuda or cuda:N, and its intra-op threads (0: the runtime's default).</summary>
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }

    public static ReasoningField ParseReasoningField(string text) => text switch
    {
        "reasoning" => ReasoningField.Reasoning,
        "reasoning_content" => ReasoningField.ReasoningContent,
        "both" => ReasoningField.Both,
        _ => throw new UserInputException($"--reasoning-field: expected reasoning, reasoning_content or both, got '{text}'"),
    };

    public static FailureType ParseFailureType(string text) => text switch
    {
        "server_error" => FailureType.ServerError,
        "rate_limit" => FailureType.RateLimit,
        "abort" => FailureType.Abort,
        _ => throw new UserInputException($"--failure-types: expected server_error, rate_limit or abort, got '{text}'"),
    };

    public static ServeEngineKind ParseEngine(string text) => text switch
    {
        "twin" => ServeEngineKind.Twin,
        "onnx" => ServeEngineKind.Onnx,
        _ => throw new UserInputException($"--engine: expected twin or onnx, got '{text}'"),
    };

    /// <summary>Checks the ranges; one line naming the flag on failure.</summary>
    public void Check()
    {
        if (Port is < 0 or > 65535) throw new UserInputException($"--port: must be 0-65535, got {Port}");
        if (!(TimeScale > 0) || double.IsInfinity(TimeScale)) throw new UserInputException($"--time-scale: must be a positive number, got {TimeScale}");
        if (Engine == ServeEngineKind.Onnx && TimeScale != 1.0) throw new UserInputException("--time-scale: only the twin runs scaled time; the ONNX Runtime engine runs in real time");
        if (FailureInjectionRate is < 0 or > 1 || double.IsNaN(FailureInjectionRate))
            throw new UserInputException($"--failure-injection-rate: must be from 0 to 1, got {FailureInjectionRate}");
        if (FailureInjectionRate > 0 && FailureTypes.Count == 0) throw new UserInputException("--failure-types: name at least one of server_error, rate_limit, abort");
        if (MaxWaiting < 1) throw new UserInputException($"--max-waiting: must be at least 1, got {MaxWaiting}");
        if (MaxModelLen is < 2) throw new UserInputException($"--max-model-len: must be at least 2, got {MaxModelLen}");
        if (ServedModelName is "") throw new UserInputException("--served-model-name: must not be empty");
    }
}
