namespace RLMServing.Costs;

/// <summary>
/// An engine that cannot fuse an iteration into one forward pass: each prefill chunk runs as its own call and the
/// decode batch as one more (rlms replay's ONNX Runtime engine; <c>cost_model.iteration_calls: per_prefill_chunk</c>).
/// The iteration costs the sum of its calls, each priced by the inner model, so every call pays the fixed per-call
/// cost the inner model was fitted with — which a single-call price would count once.
/// </summary>
public sealed class PerCallCostModel(ICostModel inner) : ICostModel
{
    public double PeakFlops => inner.PeakFlops;
    public double PeakBandwidth => inner.PeakBandwidth;
    public double FixedStepS => inner.FixedStepS;

    public IterationCost Iteration(in BatchShape shape)
    {
        int chunks = shape.Prefills.Length;
        if (chunks + (shape.DecodeCount > 0 ? 1 : 0) <= 1) return inner.Iteration(shape);
        double time = 0, flops = 0, bytes = 0;
        for (int i = 0; i < chunks; i++)
        {
            var c = inner.Iteration(new BatchShape(shape.Prefills.Slice(i, 1), 0, 0));
            time += c.TimeS;
            flops += c.Flops;
            bytes += c.Bytes;
        }
        if (shape.DecodeCount > 0)
        {
            var d = inner.Decode(shape.DecodeCount, shape.DecodeKvSum, shape.DecodeKvSpread);
            time += d.TimeS;
            flops += d.Flops;
            bytes += d.Bytes;
        }
        return new IterationCost(time, flops, bytes);
    }

    public IterationCost Decode(int decodeCount, long kvSum, KvSpread spread = default) => inner.Decode(decodeCount, kvSum, spread);

    public bool UsesKvSpread => inner.UsesKvSpread;
}
