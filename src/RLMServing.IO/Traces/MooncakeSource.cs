using System.Buffers;
using System.Text;
using System.Text.Json;

namespace RLMServing.IO.Traces;

/// <summary>
/// Mooncake JSONL: one object per line with <c>timestamp</c> (ms), <c>input_length</c>, <c>output_length</c> and
/// <c>hash_ids</c> (ids of 512-token prefix blocks; equal ids are shared prefixes). Hash ids are kept as a
/// space-separated string so prefix caching can use them later.
/// </summary>
internal sealed class MooncakeSource : IRequestTraceSource
{
    public const int BlockTokens = 512;

    public string Format => "mooncake";

    public string Description => "Mooncake JSONL: timestamp (ms), input_length, output_length, hash_ids (512-token blocks)";

    public string Example => "{\"timestamp\": 27482, \"input_length\": 6955, \"output_length\": 52, \"hash_ids\": [46, 47, 48]}";

    public IEnumerable<RequestTraceRow> Read(string path, SourceContext context)
    {
        using var lines = new CsvLines(path);
        context.Metadata["rlms.hash_block_tokens"] = BlockTokens.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var order = new ArrivalOrder();
        var hashes = new StringBuilder();
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            string? line;
            while ((line = lines.Next()) is not null)
            {
                int needed = Encoding.UTF8.GetMaxByteCount(line.Length);
                if (needed > buffer.Length)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = ArrayPool<byte>.Shared.Rent(needed);
                }
                int length = Encoding.UTF8.GetBytes(line, buffer);
                var (row, column, problem) = Parse(buffer.AsSpan(0, length), hashes);
                problem ??= order.Check(row.ArrivalTimeS);
                if (problem is not null)
                {
                    context.Bad.Report(lines.LineNumber, column, problem);
                    continue;
                }
                order.Accept(row.ArrivalTimeS);
                yield return row;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static (RequestTraceRow Row, int Column, string? Problem) Parse(ReadOnlySpan<byte> json, StringBuilder hashes)
    {
        var reader = new Utf8JsonReader(json);
        double? timestampMs = null;
        int? input = null, output = null;
        string? hashIds = null;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return (default, 1, "expected a JSON object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string name = reader.GetString()!;
                if (!reader.Read()) break;
                int column = (int)reader.TokenStartIndex + 1;
                switch (name)
                {
                    case "timestamp":
                        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetDouble(out double ms) || !double.IsFinite(ms) || ms < 0)
                            return (default, column, "timestamp: expected a time in milliseconds >= 0");
                        timestampMs = ms;
                        break;
                    case "input_length":
                        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out int i) || i < 0)
                            return (default, column, "input_length: expected a non-negative integer");
                        input = i;
                        break;
                    case "output_length":
                        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out int o) || o < 0)
                            return (default, column, "output_length: expected a non-negative integer");
                        output = o;
                        break;
                    case "hash_ids":
                        if (reader.TokenType != JsonTokenType.StartArray) return (default, column, "hash_ids: expected an array of integers");
                        hashes.Clear();
                        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                        {
                            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long h))
                                return (default, (int)reader.TokenStartIndex + 1, "hash_ids: expected an array of integers");
                            if (hashes.Length > 0) hashes.Append(' ');
                            hashes.Append(h);
                        }
                        hashIds = hashes.ToString();
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }
        }
        catch (JsonException e)
        {
            return (default, (int)(e.BytePositionInLine ?? 0) + 1, $"invalid JSON: {e.Message.Split('.')[0]}");
        }
        if (timestampMs is null) return (default, 1, "timestamp: missing");
        if (input is null) return (default, 1, "input_length: missing");
        if (output is null) return (default, 1, "output_length: missing");
        return (new RequestTraceRow(timestampMs.Value / 1000.0, input.Value, output.Value, HashIds: hashIds), 0, null);
    }
}

/// <summary>Our own request-trace Parquet schema, validated row by row.</summary>
internal sealed class ParquetSource : IRequestTraceSource
{
    public string Format => "parquet";

    public string Description => "request-trace Parquet (this project's schema, see docs/request-traces.md)";

    public string Example => "rlms trace stats traces.parquet";

    public IEnumerable<RequestTraceRow> Read(string path, SourceContext context)
    {
        foreach (var (key, value) in RequestTraceReader.ReadMetadata(path))
            if (key.StartsWith("rlms.", StringComparison.Ordinal) && key is not (RequestTraceSchema.KeyRows or RequestTraceSchema.KeySchema
                or RequestTraceSchema.KeyVersion or RequestTraceSchema.KeyCreatedBy or RequestTraceSchema.KeySourceFormat or RequestTraceSchema.KeySourceFile))
                context.Metadata[key] = value;
        return RequestTraceReader.Read(path, context.Bad);
    }
}
