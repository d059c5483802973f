using RLMServing.Profiling.Replay;
using RLMServing.Simulation;

namespace RLMServing.Serve.Engine;

/// <summary>
/// The ONNX Runtime serving engine (rlms replay's) behind the live scheduler: real token generation on the
/// synthesised model, on the engine's wall clock. Keeps each request's generated token ids for its stream.
/// </summary>
/// <param name="stop">The engine's cancellation: cancelled, its waits end and its next step throws instead of running.</param>
internal sealed class OnnxExecutor(OrtServingEngine engine, CancellationTokenSource stop) : IIterationExecutor, ILiveClock, ITokenIds
{
    private readonly Dictionary<long, List<long>> _generated = new();

    public double NowS => engine.NowS;

    public double ArrivalS => engine.NowS;

    public void CatchUp() { }   // the engine's clock is the wall clock already

    public void Interrupt() => stop.Cancel();   // a step already in ONNX Runtime finishes; none starts after it

    public void WaitUntil(double timeS) => engine.WaitUntil(timeS);

    public double Execute(IReadOnlyList<ChunkWork> chunks, IReadOnlyList<DecodeWork> decodes)
    {
        double end = engine.Execute(chunks, decodes);
        // The engine appends each sampled token to the request's ids: the newest id is this iteration's token.
        foreach (var c in chunks)
            if (c.SamplesToken) Keep(c.RequestId);
        foreach (var d in decodes) Keep(d.RequestId);
        return end;
    }

    public void Release(long requestId, bool finished) => engine.Release(requestId, finished);

    public long At(long requestId, int index) => _generated.TryGetValue(requestId, out var ids) && index < ids.Count ? ids[index] : 0;

    public void Forget(long requestId) => _generated.Remove(requestId);

    private void Keep(long requestId)
    {
        var all = engine.TokensOf(requestId);
        if (all.Count == 0) return;
        if (!_generated.TryGetValue(requestId, out var ids)) _generated[requestId] = ids = new List<long>();
        ids.Add(all[^1]);
    }
}
