using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using RLMServing.Profiling.Measurement;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Runtime;

namespace RLMServing.Profiling;

/// <summary>How the KV cache is held between steps.</summary>
public enum KvMode
{
    /// <summary>One buffer of prompt + steps tokens bound as both past and present (GenAI's past_present_share_buffer).</summary>
    Shared,

    /// <summary>Each step's present tensors, allocated by the runtime, become the next step's past (Optimum style).</summary>
    Concat,

    /// <summary>
    /// Through rlms replay's serving engine (<see cref="Replay.OrtServingEngine"/>): KV slots in shared buffers, one
    /// batch-1 call per prompt, decode steps timed on the wall clock with input binding and sampling, as replay runs them.
    /// </summary>
    Serving,
}

/// <summary>One step of one loop, as measured.</summary>
public sealed record StepSample(int Step, long NewTokens, long Context, double TimeUs, long KvBytesMeasured, long? MemBytes);

/// <summary>Per-step statistics of a generation loop over repetitions.</summary>
public sealed record StepStats(int Step, long NewTokens, long Context, TimingStats Time, long KvBytesComputed, long KvBytesMeasured,
    long? MemBytes, long? PeakMemBytes);

/// <summary>
/// A real generation loop: prefill the prompt for the whole batch, then decode one token per sequence per step with
/// a growing KV cache, timing every step. Token ids are pseudo-random (timing does not depend on them; sampling is
/// measured on its own in the lm_head operator rows).
/// </summary>
public sealed class GenerationLoop(GraphSession session, DecoderSignature signature, DeviceContext device, KvMode mode)
{
    private readonly Random _random = new(1234);

    /// <summary>Runs <paramref name="reps"/> measured loops after one warm-up loop and summarises each step.</summary>
    public IReadOnlyList<StepStats> Profile(GenerationPoint point, int reps, double unstableCv, CancellationToken cancel)
    {
        var runs = new List<IReadOnlyList<StepSample>>();
        device.ResetPeakMemory();
        for (int r = 0; r <= reps && !cancel.IsCancellationRequested; r++)
        {
            var samples = RunOnce(point, cancel);
            if (r > 0) runs.Add(samples);
        }
        if (runs.Count == 0) return [];
        long? peak = device.PeakMemoryBytes();
        int steps = runs.Min(x => x.Count);
        var result = new List<StepStats>();
        for (int s = 0; s < steps; s++)
        {
            var first = runs[0][s];
            var time = TimingStats.FromSamples(runs.Select(x => x[s].TimeUs).ToArray(), 1, unstableCv);
            result.Add(new StepStats(s, first.NewTokens, first.Context, time, point.Batch * first.Context * signature.KvBytesPerToken,
                first.KvBytesMeasured, runs.Max(x => x[s].MemBytes), peak));
        }
        return result;
    }

    /// <summary>One loop: prefill then <see cref="GenerationPoint.Steps"/> decode steps.</summary>
    public IReadOnlyList<StepSample> RunOnce(GenerationPoint point, CancellationToken cancel = default)
    {
        int b = point.Batch;
        long maxLen = point.Prompt + point.Steps;
        var samples = new List<StepSample>();
        var sharedBuffers = new List<DeviceBuffer>();
        IDisposableReadOnlyCollection<OrtValue>? previous = null;
        var sw = new Stopwatch();
        try
        {
            long[] kvShape = [b, signature.KvHeads, maxLen, signature.HeadDim];
            if (mode == KvMode.Shared)
            {
                long bytes = kvShape.Aggregate(1L, (x, y) => x * y) * TransformerGraphs.ElementBytes(signature.KvType);
                foreach (var layer in signature.Layers)
                {
                    foreach (var (pastName, presentName) in new[] { (layer.PastKey, layer.PresentKey), (layer.PastValue, layer.PresentValue) })
                    {
                        var buffer = session.Allocate(bytes);
                        sharedBuffers.Add(buffer);
                        session.BindInput(pastName, session.View(buffer, signature.KvType, kvShape));
                        using var present = session.View(buffer, signature.KvType, kvShape);
                        session.BindOutput(presentName, present);
                    }
                }
            }
            else
            {
                foreach (var layer in signature.Layers)
                {
                    long[] empty = [b, signature.KvHeads, 0, signature.HeadDim];
                    session.BindInput(layer.PastKey, OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance,
                        (Microsoft.ML.OnnxRuntime.Tensors.TensorElementType)(int)signature.KvType, empty));
                    session.BindInput(layer.PastValue, OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance,
                        (Microsoft.ML.OnnxRuntime.Tensors.TensorElementType)(int)signature.KvType, empty));
                    session.BindOutputToDevice(layer.PresentKey);
                    session.BindOutputToDevice(layer.PresentValue);
                }
            }
            session.BindOutputToDevice(signature.Logits);

            long context = 0;
            for (int step = 0; step <= point.Steps; step++)
            {
                if (step > 0 && cancel.IsCancellationRequested) break;
                long fresh = step == 0 ? point.Prompt : 1;
                BindTokens(b, fresh, context);
                session.RebindDeviceOutputs();
                sw.Restart();
                session.Run();
                sw.Stop();
                context += fresh;

                long kvMeasured;
                if (mode == KvMode.Concat)
                {
                    var outputs = session.OutputValues();
                    var names = session.OutputNames();
                    kvMeasured = 0;
                    var byName = new Dictionary<string, OrtValue>(StringComparer.Ordinal);
                    for (int i = 0; i < names.Length; i++) byName[names[i]] = outputs[i];
                    foreach (var layer in signature.Layers)
                    {
                        kvMeasured += byName[layer.PresentKey].GetTensorSizeInBytes() + byName[layer.PresentValue].GetTensorSizeInBytes();
                        session.BindInput(layer.PastKey, byName[layer.PresentKey], owned: false);
                        session.BindInput(layer.PastValue, byName[layer.PresentValue], owned: false);
                    }
                    previous?.Dispose();
                    previous = outputs;
                }
                else
                {
                    kvMeasured = sharedBuffers.Sum(x => x.Bytes);
                }
                samples.Add(new StepSample(step, fresh, context, sw.Elapsed.TotalMicroseconds, kvMeasured, device.MemoryUsedBytes()));
            }
            return samples;
        }
        finally
        {
            // Rebind the KV inputs to nothing that outlives this loop before freeing what they point at.
            previous?.Dispose();
            foreach (var buffer in sharedBuffers) session.Free(buffer);
        }
    }

    private void BindTokens(int batch, long fresh, long context)
    {
        int vocab = Math.Max(2, Math.Min(signature.Vocab ?? 100, 32000));
        var ids = new long[batch * fresh];
        for (int i = 0; i < ids.Length; i++) ids[i] = _random.Next(vocab);
        session.BindInput(signature.InputIds, ids, [batch, fresh]);
        long total = context + fresh;
        if (signature.AttentionMask is not null)
            session.BindInput(signature.AttentionMask, Enumerable.Repeat(1L, (int)(batch * total)).ToArray(), [batch, total]);
        if (signature.PositionIds is not null)
        {
            var pos = new long[batch * fresh];
            for (int s = 0; s < batch; s++)
                for (int t = 0; t < fresh; t++) pos[s * fresh + t] = context + t;
            session.BindInput(signature.PositionIds, pos, [batch, fresh]);
        }
    }
}
