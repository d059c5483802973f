using Parquet.Schema;

namespace RLMServing.IO.Traces;

/// <summary>
/// One row of a request trace (docs/request-traces.md). Output tokens include thinking tokens where those are known.
/// Source extras (model, failed, status, Mooncake prefix-block hashes) travel as data so they can be filtered later.
/// </summary>
public readonly record struct RequestTraceRow(
    double ArrivalTimeS,
    int PromptTokens,
    int OutputTokens,
    int? ThinkingTokens = null,
    string? SessionId = null,
    int? TurnIndex = null,
    string? Model = null,
    bool? Failed = null,
    string? Status = null,
    string? HashIds = null);

/// <summary>The Parquet schema of request traces and the keys of its file-level metadata.</summary>
public static class RequestTraceSchema
{
    public const string SchemaName = "rlms.request-trace";
    public const int Version = 1;

    public const string KeySchema = "rlms.schema";
    public const string KeyVersion = "rlms.schema_version";
    public const string KeySourceFormat = "rlms.source_format";
    public const string KeySourceFile = "rlms.source_file";
    public const string KeyRows = "rlms.rows";
    public const string KeyCreatedBy = "rlms.created_by";

    public static readonly DataField<double> ArrivalTimeS = new("arrival_time_s");
    public static readonly DataField<int> PromptTokens = new("prompt_tokens");
    public static readonly DataField<int> OutputTokens = new("output_tokens");
    public static readonly DataField<int?> ThinkingTokens = new("thinking_tokens");
    public static readonly DataField<string> SessionId = new("session_id", nullable: true);
    public static readonly DataField<int?> TurnIndex = new("turn_index");
    public static readonly DataField<string> Model = new("model", nullable: true);
    public static readonly DataField<bool?> Failed = new("failed");
    public static readonly DataField<string> Status = new("status", nullable: true);
    public static readonly DataField<string> HashIds = new("hash_ids", nullable: true);

    public static ParquetSchema Schema { get; } = new(
        ArrivalTimeS, PromptTokens, OutputTokens, ThinkingTokens, SessionId, TurnIndex, Model, Failed, Status, HashIds);
}
