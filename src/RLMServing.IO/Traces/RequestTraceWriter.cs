using Parquet;

namespace RLMServing.IO.Traces;

/// <summary>
/// Writes request-trace rows to Parquet in fixed-size row groups, so memory stays constant however long the trace.
/// Call <see cref="Complete"/> to write the footer with file metadata; disposing without completing leaves an
/// unusable file (importers write to a temporary path and delete it on failure).
/// </summary>
public sealed class RequestTraceWriter : IDisposable
{
    public const int DefaultRowGroupSize = 262_144;

    private readonly Stream _stream;
    private readonly ParquetWriter _writer;
    private readonly int _rowGroupSize;
    private readonly double[] _arrival;
    private readonly int[] _prompt, _output;
    private readonly int?[] _thinking, _turn;
    private readonly string?[] _session, _model, _status, _hashes;
    private readonly bool?[] _failed;
    private int _buffered;
    private bool _completed, _disposed;

    public RequestTraceWriter(string path, int rowGroupSize = DefaultRowGroupSize)
    {
        if (rowGroupSize <= 0) throw new ArgumentOutOfRangeException(nameof(rowGroupSize));
        _rowGroupSize = rowGroupSize;
        _arrival = new double[rowGroupSize];
        _prompt = new int[rowGroupSize];
        _output = new int[rowGroupSize];
        _thinking = new int?[rowGroupSize];
        _turn = new int?[rowGroupSize];
        _session = new string?[rowGroupSize];
        _model = new string?[rowGroupSize];
        _status = new string?[rowGroupSize];
        _hashes = new string?[rowGroupSize];
        _failed = new bool?[rowGroupSize];
        _stream = File.Create(path);
        try
        {
            var options = new ParquetOptions { CompressionMethod = CompressionMethod.Snappy };
            _writer = ParquetWriter.CreateAsync(RequestTraceSchema.Schema, _stream, options).GetAwaiter().GetResult();
        }
        catch
        {
            _stream.Dispose();
            throw;
        }
    }

    public long Rows { get; private set; }

    public void Write(in RequestTraceRow row)
    {
        int i = _buffered;
        _arrival[i] = row.ArrivalTimeS;
        _prompt[i] = row.PromptTokens;
        _output[i] = row.OutputTokens;
        _thinking[i] = row.ThinkingTokens;
        _session[i] = row.SessionId;
        _turn[i] = row.TurnIndex;
        _model[i] = row.Model;
        _failed[i] = row.Failed;
        _status[i] = row.Status;
        _hashes[i] = row.HashIds;
        _buffered++;
        Rows++;
        if (_buffered == _rowGroupSize) Flush();
    }

    /// <summary>Writes the remaining rows and the footer; <paramref name="metadata"/> becomes file-level key/values.</summary>
    public void Complete(IReadOnlyDictionary<string, string> metadata)
    {
        Flush();
        var custom = new Dictionary<string, string>(metadata)
        {
            [RequestTraceSchema.KeySchema] = RequestTraceSchema.SchemaName,
            [RequestTraceSchema.KeyVersion] = RequestTraceSchema.Version.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [RequestTraceSchema.KeyRows] = Rows.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [RequestTraceSchema.KeyCreatedBy] = "rlms",
        };
        _writer.CustomMetadata = custom;
        _completed = true;
        Dispose();
    }

    private void Flush()
    {
        if (_buffered == 0) return;
        int n = _buffered;
        using (var group = _writer.CreateRowGroup())
        {
            group.WriteAsync<double>(RequestTraceSchema.ArrivalTimeS, _arrival.AsMemory(0, n)).GetAwaiter().GetResult();
            group.WriteAsync<int>(RequestTraceSchema.PromptTokens, _prompt.AsMemory(0, n)).GetAwaiter().GetResult();
            group.WriteAsync<int>(RequestTraceSchema.OutputTokens, _output.AsMemory(0, n)).GetAwaiter().GetResult();
            group.WriteAsync<int>(RequestTraceSchema.ThinkingTokens, (ReadOnlyMemory<int?>)_thinking.AsMemory(0, n)).GetAwaiter().GetResult();
            group.WriteAsync(RequestTraceSchema.SessionId, new ArraySegment<string>(_session!, 0, n)).GetAwaiter().GetResult();
            group.WriteAsync<int>(RequestTraceSchema.TurnIndex, (ReadOnlyMemory<int?>)_turn.AsMemory(0, n)).GetAwaiter().GetResult();
            group.WriteAsync(RequestTraceSchema.Model, new ArraySegment<string>(_model!, 0, n)).GetAwaiter().GetResult();
            group.WriteAsync<bool>(RequestTraceSchema.Failed, (ReadOnlyMemory<bool?>)_failed.AsMemory(0, n)).GetAwaiter().GetResult();
            group.WriteAsync(RequestTraceSchema.Status, new ArraySegment<string>(_status!, 0, n)).GetAwaiter().GetResult();
            group.WriteAsync(RequestTraceSchema.HashIds, new ArraySegment<string>(_hashes!, 0, n)).GetAwaiter().GetResult();
        }
        Array.Clear(_session, 0, n);
        Array.Clear(_model, 0, n);
        Array.Clear(_status, 0, n);
        Array.Clear(_hashes, 0, n);
        _buffered = 0;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (_completed) _writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        finally
        {
            _stream.Dispose();
        }
    }
}
