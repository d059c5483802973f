using System.Text.Json.Serialization;
using RLMServing.Profiling.Measurement;
using RLMServing.Profiling.Traces;
using RLMServing.Simulation;

namespace RLMServing.Profiling.Replay;

/// <summary>The kept repetitions of one generation point run by the serving engine: its prefill calls and each decode step.</summary>
public sealed class ServingPointSamples(GenerationPoint point)
{
    public GenerationPoint Point { get; } = point;

    /// <summary>One sample per prompt of every kept repetition (each prompt is its own batch-1 call), µs.</summary>
    public List<double> PrefillUs { get; } = [];

    /// <summary>Per decode step (index 0 is step 1), one sample per kept repetition, µs.</summary>
    public List<double>[] StepUs { get; } = Enumerable.Range(0, point.Steps).Select(_ => new List<double>()).ToArray();

    public int Repetitions { get; private set; }

    internal void Counted() => Repetitions++;
}

/// <summary>
/// One kept visit of a point in an interleaved profile (profile-visits.parquet): when it ran on the replay's clock and
/// its mean decode step after the warm-up steps (from <c>first_step</c> to <c>decode_steps</c>); <c>slowdown</c> is that mean over the point's mean across its visits (above
/// 1: the machine was slower than on average for that point). A record of the machine's speed over the run, readable
/// as <c>cost_model.slowdown.file</c>.
/// </summary>
public sealed class ProfileVisitRow
{
    [JsonPropertyName("time_s")] public double TimeS { get; set; }
    [JsonPropertyName("batch")] public int Batch { get; set; }
    [JsonPropertyName("prompt_tokens")] public int PromptTokens { get; set; }
    [JsonPropertyName("decode_steps")] public int DecodeSteps { get; set; }
    /// <summary>The first decode step in <see cref="MeanStepUs"/> (steps from 1; the ones before it warm up); step s reads a context of prompt + s.</summary>
    [JsonPropertyName("first_step")] public int FirstStep { get; set; }
    [JsonPropertyName("mean_step_us")] public double MeanStepUs { get; set; }
    [JsonPropertyName("slowdown")] public double Slowdown { get; set; }
}

/// <summary>Who measured a serving-engine profile: what its iteration rows say about the device, model and run.</summary>
public sealed record ServingProfileIdentity(string Device, string Model, string Dtype, int Layers, long KvBytesPerToken, long WeightBytes);

/// <summary>
/// Generation points executed by the serving engine of <c>rlms replay</c> (<see cref="OrtServingEngine"/>): shared by
/// <c>rlms profile --kv-mode serving</c> (a profile run of its own) and <c>rlms replay --interleave-profile</c> (the
/// same points run while the replay's engine is idle). Each prompt is its own batch-1 prefill call and each decode
/// step one call over the batch, timed around the engine's whole step (binding, the call, sampling) on the engine's
/// clock, as replay measures its iterations.
/// </summary>
public static class ServingProfile
{
    /// <summary>
    /// Decode steps after a loop's prompts that still warm up on the CPU serving engine (rlms calibrate leaves them out
    /// of serving-engine loops; docs/calibration.md).
    /// </summary>
    public const int WarmUpSteps = 6;

    /// <summary>The first decode step (1-based) a visit's mean covers: the one after <see cref="WarmUpSteps"/>, or 1 for a point with no more.</summary>
    public static int FirstMeanStep(GenerationPoint p) => p.Steps > WarmUpSteps ? WarmUpSteps + 1 : 1;

    /// <summary>The mean of the last kept repetition's decode steps from <see cref="FirstMeanStep"/> on.</summary>
    public static double LastVisitMeanStepUs(ServingPointSamples s)
    {
        int from = FirstMeanStep(s.Point) - 1;
        var steps = s.StepUs.Skip(from).Where(l => l.Count > 0).Select(l => l[^1]).ToList();
        return steps.Count > 0 ? steps.Average() : double.NaN;
    }

    /// <summary>
    /// Runs one repetition of <paramref name="p"/> with fresh request ids from <paramref name="newId"/>, and adds its
    /// timings to <paramref name="keep"/> (null: a warm-up repetition, not kept). The sequences are released at the end.
    /// </summary>
    public static void RunPoint(OrtServingEngine engine, GenerationPoint p, Func<long> newId, ServingPointSamples? keep, CancellationToken cancel)
    {
        var ids = new long[p.Batch];
        try
        {
            for (int b = 0; b < p.Batch; b++)
            {
                ids[b] = newId();
                engine.Execute([new ChunkWork(ids[b], p.Prompt, 0, true)], []);
                keep?.PrefillUs.Add(LastStepUs(engine));
            }
            var decodes = new DecodeWork[p.Batch];
            for (int s = 0; s < p.Steps && !cancel.IsCancellationRequested; s++)
            {
                for (int b = 0; b < p.Batch; b++) decodes[b] = new DecodeWork(ids[b], p.Prompt + s);
                engine.Execute([], decodes);
                keep?.StepUs[s].Add(LastStepUs(engine));
            }
            keep?.Counted();
        }
        finally
        {
            foreach (var x in ids) if (x != 0) engine.Release(x, finished: true);
        }
    }

    /// <summary>The trace rows of one point: its prefill (step 0) and every decode step that has samples.</summary>
    public static List<IterationRow> Rows(ServingPointSamples s, ServingProfileIdentity who, double unstableCv)
    {
        var p = s.Point;
        IterationRow Row(int step, int batch, long newTokens, long context, List<double> samples) => new IterationRow
        {
            Source = "rlms-profile",
            Device = who.Device,
            Model = who.Model,
            Dtype = who.Dtype,
            Layers = who.Layers,
            Batch = batch,
            PromptTokens = p.Prompt,
            Step = step,
            Phase = step == 0 ? "prefill" : "decode",
            NewTokens = newTokens,
            Context = context,
            KvMode = "serving",
            KvBytesComputed = batch * context * who.KvBytesPerToken,
            Extra = $"weight_bytes={who.WeightBytes}",
        }.WithTiming(TimingStats.FromSamples(samples, 1, unstableCv));
        var rows = new List<IterationRow>();
        if (s.PrefillUs.Count == 0) return rows;
        rows.Add(Row(0, 1, p.Prompt, p.Prompt, s.PrefillUs));
        for (int i = 0; i < p.Steps; i++)
            if (s.StepUs[i].Count > 0) rows.Add(Row(i + 1, p.Batch, 1, p.Prompt + i + 1, s.StepUs[i]));
        return rows;
    }

    private static double LastStepUs(OrtServingEngine engine)
    {
        var it = engine.Iterations[^1];
        return (it.EndS - it.StartS) * 1e6;
    }
}
