using Parquet;
using RLMServing.IO.ParquetFiles;

namespace RLMServing.IO.Traces;

/// <summary>
/// Writes request-trace rows to Parquet in fixed-size row groups, so memory stays constant however long the trace.
/// A full row group is encoded on a background task while the caller fills the next one (two buffers, so parsing and
/// encoding overlap). Call <see cref="Complete"/> to write the footer with file metadata; disposing without completing
/// leaves an unusable file (importers write to a temporary path and delete it on failure).
/// </summary>
public sealed class RequestTraceWriter : IDisposable
{
    public const int DefaultRowGroupSize = 262_144;

    private readonly Stream _stream;
    private readonly ParquetWriter _writer;
    private readonly int _rowGroupSize;
    private Batch _current;
    private Batch? _free, _pendingBatch;
    private Task? _pending;
    private bool _completed, _disposed;

    public RequestTraceWriter(string path, int rowGroupSize = DefaultRowGroupSize)
    {
        if (rowGroupSize <= 0) throw new ArgumentOutOfRangeException(nameof(rowGroupSize));
        _rowGroupSize = rowGroupSize;
        _current = new Batch(rowGroupSize);
        _stream = File.Create(path);
        try
        {
            var options = ParquetColumns.WriterOptions();
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
        var b = _current;
        int i = b.Count;
        b.Arrival[i] = row.ArrivalTimeS;
        b.Prompt[i] = row.PromptTokens;
        b.Output[i] = row.OutputTokens;
        b.Thinking[i] = row.ThinkingTokens;
        b.Session[i] = row.SessionId;
        b.Turn[i] = row.TurnIndex;
        b.Model[i] = row.Model;
        b.Failed[i] = row.Failed;
        b.Status[i] = row.Status;
        b.Hashes[i] = row.HashIds;
        b.Count++;
        Rows++;
        if (b.Count == _rowGroupSize) Flush();
    }

    /// <summary>Writes the remaining rows and the footer; <paramref name="metadata"/> becomes file-level key/values.</summary>
    public void Complete(IReadOnlyDictionary<string, string> metadata)
    {
        Flush();
        WaitPending();
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
        if (_current.Count == 0) return;
        WaitPending();
        var batch = _current;
        _pendingBatch = batch;
        _pending = Task.Run(() => WriteRowGroup(batch));
        _current = _free ?? new Batch(_rowGroupSize);
        _free = null;
    }

    private void WaitPending()
    {
        if (_pending is null) return;
        try
        {
            _pending.GetAwaiter().GetResult();
        }
        finally
        {
            _pending = null;
            _pendingBatch!.Clear();
            _free = _pendingBatch;
            _pendingBatch = null;
        }
    }

    private void WriteRowGroup(Batch b)
    {
        int n = b.Count;
        using var group = _writer.CreateRowGroup();
        group.WriteAsync<double>(RequestTraceSchema.ArrivalTimeS, b.Arrival.AsMemory(0, n)).GetAwaiter().GetResult();
        group.WriteAsync<int>(RequestTraceSchema.PromptTokens, b.Prompt.AsMemory(0, n)).GetAwaiter().GetResult();
        group.WriteAsync<int>(RequestTraceSchema.OutputTokens, b.Output.AsMemory(0, n)).GetAwaiter().GetResult();
        group.WriteAsync<int>(RequestTraceSchema.ThinkingTokens, (ReadOnlyMemory<int?>)b.Thinking.AsMemory(0, n)).GetAwaiter().GetResult();
        group.WriteAsync(RequestTraceSchema.SessionId, new ArraySegment<string>(b.Session!, 0, n)).GetAwaiter().GetResult();
        group.WriteAsync<int>(RequestTraceSchema.TurnIndex, (ReadOnlyMemory<int?>)b.Turn.AsMemory(0, n)).GetAwaiter().GetResult();
        group.WriteAsync(RequestTraceSchema.Model, new ArraySegment<string>(b.Model!, 0, n)).GetAwaiter().GetResult();
        group.WriteAsync<bool>(RequestTraceSchema.Failed, (ReadOnlyMemory<bool?>)b.Failed.AsMemory(0, n)).GetAwaiter().GetResult();
        group.WriteAsync(RequestTraceSchema.Status, new ArraySegment<string>(b.Status!, 0, n)).GetAwaiter().GetResult();
        group.WriteAsync(RequestTraceSchema.HashIds, new ArraySegment<string>(b.Hashes!, 0, n)).GetAwaiter().GetResult();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (!_completed)
            {
                // Failure path: let a running row group finish (its error, if any, is secondary) before closing.
                try { WaitPending(); } catch (Exception) { }
            }
            if (_completed) _writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        finally
        {
            _stream.Dispose();
        }
    }

    /// <summary>Column buffers for one row group.</summary>
    private sealed class Batch(int size)
    {
        public readonly double[] Arrival = new double[size];
        public readonly int[] Prompt = new int[size], Output = new int[size];
        public readonly int?[] Thinking = new int?[size], Turn = new int?[size];
        public readonly string?[] Session = new string?[size], Model = new string?[size], Status = new string?[size], Hashes = new string?[size];
        public readonly bool?[] Failed = new bool?[size];
        public int Count;

        public void Clear()
        {
            Array.Clear(Session, 0, Count);
            Array.Clear(Model, 0, Count);
            Array.Clear(Status, 0, Count);
            Array.Clear(Hashes, 0, Count);
            Count = 0;
        }
    }
}
