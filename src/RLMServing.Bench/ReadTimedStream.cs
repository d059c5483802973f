using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace RLMServing.Bench;

/// <summary>
/// A response stream that notes when each read returned data. <see cref="System.Net.ServerSentEvents.SseParser{T}"/>
/// reads only when its buffer holds no complete line, so the event it hands out next was completed by the latest
/// read: that read's time is when the client had the event's bytes, before any SSE or JSON parsing, and is what a
/// delta is stamped with. Events that arrived in one read share its time, as they reached the client together.
/// </summary>
internal sealed class ReadTimedStream(Stream inner) : Stream
{
    /// <summary><see cref="Stopwatch.GetTimestamp"/> when the latest read that returned data came back (0: none yet).</summary>
    public long LastReadTimestamp { get; private set; }

    // Pooled: a read that waits for the network would otherwise allocate its state machine once per event.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (n > 0) LastReadTimestamp = Stopwatch.GetTimestamp();
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        if (n > 0) LastReadTimestamp = Stopwatch.GetTimestamp();
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync() => inner.DisposeAsync();
}
