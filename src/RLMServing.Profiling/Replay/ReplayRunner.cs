using System.Globalization;
using System.Text.Json.Serialization;
using Parquet;
using Parquet.Serialization;
using RLMServing.Catalog;
using RLMServing.IO.Results;
using RLMServing.IO.Runs;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Runtime;
using RLMServing.Profiling.Traces;
using RLMServing.Simulation;

namespace RLMServing.Profiling.Replay;

/// <summary>One row of a replay's iterations.parquet (docs/metrics.md); times from the start of the run.</summary>
public sealed class ReplayIterationRow
{
    [JsonPropertyName("iteration")] public long Iteration { get; set; }
    [JsonPropertyName("start_time_s")] public double StartTimeS { get; set; }
    /// <summary>Wall time of the iteration: every call, input binding, KV slot moves and sampling.</summary>
    [JsonPropertyName("step_time_ms")] public double StepTimeMs { get; set; }
    /// <summary>Time inside ONNX Runtime's Run calls only.</summary>
    [JsonPropertyName("ort_time_ms")] public double OrtTimeMs { get; set; }
    [JsonPropertyName("ort_calls")] public int OrtCalls { get; set; }
    /// <summary>Wall time since the previous iteration ended (the scheduler's own time, or idling for arrivals).</summary>
    [JsonPropertyName("gap_ms")] public double GapMs { get; set; }
    /// <summary>
    /// The part of <see cref="GapMs"/> the engine waited for an arrival (slept on the wall clock, jumped on the CPU
    /// clock); the rest, gap_ms - idle_ms, is host work between iterations: the scheduler, bookkeeping, the engine's
    /// own reads (what rlms calibrate --host-overhead measures).
    /// </summary>
    [JsonPropertyName("idle_ms")] public double IdleMs { get; set; }
    [JsonPropertyName("prefill_requests")] public int PrefillRequests { get; set; }
    [JsonPropertyName("prefill_tokens")] public long PrefillTokens { get; set; }
    /// <summary>Tokens already cached before the iteration's prefill chunks, summed over chunks.</summary>
    [JsonPropertyName("prefill_context_tokens")] public long PrefillContextTokens { get; set; }
    [JsonPropertyName("decode_count")] public int DecodeCount { get; set; }
    /// <summary>Sum over decoding requests of the KV entries they attend to, the new token included.</summary>
    [JsonPropertyName("decode_context_sum")] public long DecodeContextSum { get; set; }
    /// <summary>Tokens sampled in the iteration: one per decode and one per prefill chunk that completes a prompt.</summary>
    [JsonPropertyName("tokens_generated")] public int TokensGenerated { get; set; }
    /// <summary>KV entries held by running requests at the end of the iteration, and their bytes.</summary>
    [JsonPropertyName("kv_tokens")] public long KvTokens { get; set; }
    [JsonPropertyName("kv_bytes")] public long KvBytes { get; set; }
    /// <summary>
    /// KV positions the engine copied between slots in the iteration (per sequence moved, all layers): it keeps the
    /// decoding requests in contiguous slots and compacts them when the decode set changes, which a paged-KV engine
    /// does not; inside step_time_ms.
    /// </summary>
    [JsonPropertyName("kv_moved_tokens")] public long KvMovedTokens { get; set; }
    /// <summary>
    /// Time the .NET garbage collector paused the process since the previous iteration ended (the gap before this
    /// iteration and the iteration itself): host stalls that no profile of the model sees.
    /// </summary>
    [JsonPropertyName("gc_pause_ms")] public double GcPauseMs { get; set; }
    /// <summary>Process resident memory (CPU) or device memory in use (CUDA), read every 64 iterations; null between.</summary>
    [JsonPropertyName("mem_bytes")] public long? MemBytes { get; set; }
}

/// <summary>A replayed run: the simulator-schema results (measured) and the executed iterations.</summary>
/// <param name="Clock">What the times were measured with: the wall clock or the engine thread's CPU time.</param>
/// <param name="Profile">The profile taken in the replay's idle moments (<c>--interleave-profile</c>), or null.</param>
public sealed record ReplayResult(SimulationResult Result, IReadOnlyList<ReplayIterationRow> Iterations, DeviceInfo Device, string Dtype,
    EngineClockKind Clock = EngineClockKind.Wall, InterleavedProfile? Profile = null);

/// <summary>
/// A profile taken in a replay's idle moments: its rows (rlms profile's iteration schema), the grid, and how much ran.
/// </summary>
/// <param name="ProfileS">Profile time on the engine's clock (warm-up visits included), seconds.</param>
/// <param name="BusyS">The replay's busy time on the same clock, seconds.</param>
/// <param name="Sessions">Idle moments in which profile points ran (the last one after the run).</param>
/// <param name="Visits">Every kept visit of a point with its time on the replay's clock and its speed (profile-visits.parquet).</param>
public sealed record InterleavedProfile(IReadOnlyList<IterationRow> Rows, string Grid, double Share, double ProfileS, double BusyS, int Sessions,
    int Points, int MinRepetitions, ModelArchitecture Model, bool Cuda, IReadOnlyList<ProfileVisitRow> Visits);

/// <summary>
/// <c>rlms replay</c>: runs a bound scenario on the real ONNX Runtime engine. The requests are the simulator's own
/// (same seed, same generator), the scheduling is the simulator's replica engine stepped one iteration at a time,
/// and every iteration is executed instead of priced, on the wall clock (or the engine thread's CPU time, <c>--clock cpu</c>).
/// </summary>
public static class ReplayRunner
{
    /// <summary>Allocation allowed without a garbage collection during one replayed run (then collections resume).</summary>
    public const long NoGcBudgetBytes = 256L << 20;

    /// <summary>What the real engine cannot do, as one line naming the scenario file and key.</summary>
    public static void Check(PreparedRun run, string file)
    {
        var hw = run.Scenario.Hardware;
        if (hw.Replicas != 1)
            throw new UserInputException($"{file}: hardware.replicas: rlms replay serves one replica, got {hw.Replicas} (run {run.Name})");
        if (hw.TensorParallel != 1)
            throw new UserInputException($"{file}: hardware.tensor_parallel: rlms replay runs tensor parallel 1, got {hw.TensorParallel} (run {run.Name})");
        if (run.Model.HeadDim % 16 != 0)
            throw new UserInputException($"{file}: model: {run.Model.Name}: head_dim {run.Model.HeadDim} is not a multiple of 16, which GroupQueryAttention with rotary needs");
    }

    /// <summary>
    /// Refuses a replay whose weights and KV slots (max_num_seqs + 1 slots of the longest request) would not fit in
    /// <paramref name="availableBytes"/> — a 70B model on a laptop's CPU — before anything is allocated.
    /// </summary>
    public static void CheckMemory(PreparedRun run, string file, OnnxType dtype, long availableBytes)
    {
        var s = run.Scenario;
        var requests = s.ReplayRequests ?? s.Workload!.Generate(s.Seed);
        long longest = requests.Count == 0 ? 16 : requests.Max(r => (long)r.PromptTokens + r.OutputTokens);
        int element = TransformerGraphs.ElementBytes(dtype);
        double weights = (double)run.Model.ParameterCount * element;
        double kv = (double)(s.Scheduler.MaxNumSeqs + 1) * longest * 2 * run.Model.Layers * run.Model.KvHeads * run.Model.HeadDim * element;
        if (weights + kv > availableBytes)
            throw new UserInputException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{file}: model: {run.Model.Name} needs about {(weights + kv) / (1L << 30):F1} GiB to replay ({weights / (1L << 30):F1} GiB of weights, " +
                $"{kv / (1L << 30):F1} GiB of KV slots for max_num_seqs {s.Scheduler.MaxNumSeqs} and requests of up to {longest:N0} tokens); " +
                $"{availableBytes / (double)(1L << 30):F1} GiB are available (run {run.Name})"));
    }

    public static ReplayResult Run(PreparedRun run, string? variant, DeviceContext device, OnnxType dtype,
        IProgress<double>? progress = null, CancellationToken cancel = default, bool checkInvariants = false,
        EngineClockKind clock = EngineClockKind.Wall, InterleaveOptions? interleave = null)
    {
        var s = run.Scenario;
        var requests = s.ReplayRequests ?? s.Workload!.Generate(s.Seed);
        int maxSeqTokens = requests.Count == 0 ? 16 : requests.Max(r => r.PromptTokens + r.OutputTokens);
        int maxPrefill = Math.Min(s.Scheduler.MaxNumBatchedTokens, requests.Count == 0 ? 16 : requests.Max(r => r.PromptTokens));
        var points = interleave is null ? [] : InterleavedProfiler.Fitting(interleave.Grid, s.Scheduler.MaxNumSeqs);
        if (interleave is not null && points.Count == 0)
            throw new UserInputException($"--interleave-profile {interleave.Grid.Name}: no generation point of the grid fits max_num_seqs {s.Scheduler.MaxNumSeqs} (run {run.Name})");
        // The profile's longest points may reach beyond the workload's longest request: slots are sized for both.
        if (points.Count > 0) maxSeqTokens = Math.Max(maxSeqTokens, points.Max(p => p.Prompt + p.Steps));
        using var engine = new OrtServingEngine(device, run.Model, dtype, s.Scheduler.MaxNumSeqs, maxSeqTokens, cancel, clock);
        engine.WarmUp(maxPrefill);
        var profiler = interleave is null ? null : new InterleavedProfiler(engine, interleave, points, cancel);
        // The instrument should not perturb what it measures: a .NET garbage collection stops the engine's thread for
        // 10-30 ms on small machines, which shows up as a few requests' TTFT tail. Start each run with a clean heap and
        // no collections for its first NoGcBudgetBytes of allocation (the hot path allocates ~1.4 kB per iteration:
        // about 180k iterations); beyond that the collector runs as usual. GC pauses are reported per iteration
        // (iterations.parquet gc_pause_ms).
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        bool noGc;
        try { noGc = GC.TryStartNoGCRegion(NoGcBudgetBytes); }
        catch (ArgumentOutOfRangeException) { noGc = false; }
        catch (InvalidOperationException) { noGc = false; }
        SimulationResult result;
        try
        {
            engine.StartClock();
            result = Simulator.Run(s, run.Model, run.Gpu, run.Cost, progress, checkInvariants, (IIterationExecutor?)profiler ?? engine);
            profiler?.Finish();
        }
        finally
        {
            if (noGc && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
        }
        result = result with { Summary = ScenarioRunner.Complete(result.Summary with { Variant = variant }, result.Requests, s) };
        var info = device.Describe();
        InterleavedProfile? profile = null;
        if (profiler is not null)
        {
            var who = new ServingProfileIdentity(info.DeviceName, run.Model.Name, TransformerGraphs.DtypeName(dtype), run.Model.Layers,
                engine.KvBytesPerToken, engine.WeightBytes);
            profile = new InterleavedProfile(profiler.Rows(who), interleave!.Grid.Name, interleave.Share, profiler.ProfileS, profiler.BusyS,
                profiler.Sessions, points.Count, interleave.MinRepetitions, run.Model, device.Spec.Cuda, profiler.Visits());
        }
        return new ReplayResult(result, Rows(engine.Iterations, engine.KvBytesPerToken), info, TransformerGraphs.DtypeName(dtype), clock, profile);
    }

    private static List<ReplayIterationRow> Rows(IReadOnlyList<ReplayIteration> iterations, long kvBytesPerToken)
    {
        var rows = new List<ReplayIterationRow>(iterations.Count);
        double lastEnd = 0;
        foreach (var it in iterations)
        {
            rows.Add(new ReplayIterationRow
            {
                Iteration = it.Index,
                StartTimeS = it.StartS,
                StepTimeMs = (it.EndS - it.StartS) * 1000,
                OrtTimeMs = it.OrtTimeUs / 1000,
                OrtCalls = it.OrtCalls,
                GapMs = (it.StartS - lastEnd) * 1000,
                PrefillRequests = it.PrefillRequests,
                PrefillTokens = it.PrefillTokens,
                PrefillContextTokens = it.PrefillContextTokens,
                DecodeCount = it.DecodeCount,
                DecodeContextSum = it.DecodeContextSum,
                TokensGenerated = it.TokensGenerated,
                KvTokens = it.KvTokens,
                KvBytes = it.KvTokens * kvBytesPerToken,
                MemBytes = it.MemBytes,
                GcPauseMs = it.GcPauseUs / 1000,
                IdleMs = it.IdleUs / 1000,
                KvMovedTokens = it.KvMovedTokens,
            });
            lastEnd = it.EndS;
        }
        return rows;
    }

    /// <summary>The simulator's metadata, marked as a measurement, with the device and runtime that measured it.</summary>
    public static Dictionary<string, string> Metadata(PreparedRun run, string? variant, string command, ReplayResult r, int threads)
    {
        // The identity only: a replay's machine is real, so cost_model.slowdown does not apply to it.
        var meta = ScenarioRunner.IdentityMetadata(run, variant, command);
        meta["rlms.source"] = "replay";
        meta[TraceMetadata.Device] = r.Device.DeviceName;
        meta[TraceMetadata.Ort] = r.Device.OrtVersion;
        meta[TraceMetadata.Driver] = r.Device.Driver;
        meta[TraceMetadata.Cuda] = r.Device.CudaVersion;
        meta[TraceMetadata.Dtype] = r.Dtype;
        meta["rlms.intra_op_threads"] = threads.ToString(CultureInfo.InvariantCulture);
        meta["rlms.clock"] = r.Clock == EngineClockKind.Cpu ? "cpu" : "wall";
        return meta;
    }

    /// <summary>The interleaved profile's file in a replay's run folder (rlms calibrate reads it when given the folder).</summary>
    public const string ProfileFile = "profile-iterations.parquet";

    /// <summary>The interleaved profile's visits, time-stamped on the replay's clock.</summary>
    public const string VisitsFile = "profile-visits.parquet";

    /// <summary>
    /// summary.json, requests.parquet, timeseries.parquet, iterations.parquet and, with an interleaved profile,
    /// profile-iterations.parquet and profile-visits.parquet: all or none (atomic moves).
    /// </summary>
    public static Task WriteAsync(string dir, ReplayResult r, IReadOnlyDictionary<string, string> metadata)
    {
        var iterMeta = new Dictionary<string, string>(metadata)
        {
            [TraceMetadata.Schema] = "replay_iteration",
            [TraceMetadata.SchemaVersion] = "1",
        };
        var extra = new List<(string, Func<string, Task>)>
        {
            ("iterations.parquet", p => ParquetSerializer.SerializeAsync(r.Iterations, p, new ParquetOptions(), iterMeta)),
        };
        if (r.Profile is { } profile)
        {
            var profileMeta = Profiler.TraceMetadataFor("iteration", r.Device, profile.Model, null, r.Dtype,
                metadata.GetValueOrDefault(TraceMetadata.Command) ?? "", profile.Grid, profile.Cuda, r.Clock);
            profileMeta["rlms.profile_mode"] = "interleaved";
            profileMeta["rlms.interleave_share"] = profile.Share.ToString("R", CultureInfo.InvariantCulture);
            profileMeta["rlms.interleave_profile_s"] = profile.ProfileS.ToString("F3", CultureInfo.InvariantCulture);
            profileMeta["rlms.interleave_busy_s"] = profile.BusyS.ToString("F3", CultureInfo.InvariantCulture);
            profileMeta["rlms.interleave_sessions"] = profile.Sessions.ToString(CultureInfo.InvariantCulture);
            if (metadata.TryGetValue("rlms.intra_op_threads", out var threads)) profileMeta["rlms.intra_op_threads"] = threads;
            extra.Add((ProfileFile, p => ParquetSerializer.SerializeAsync(profile.Rows, p, new ParquetOptions(), profileMeta)));
            var visitMeta = new Dictionary<string, string>(profileMeta)
            {
                [TraceMetadata.Schema] = "profile_visit",
                // 2: the factor column is `slowdown` (was `speed`) and `first_step` was added.
                [TraceMetadata.SchemaVersion] = "2",
            };
            extra.Add((VisitsFile, p => ParquetSerializer.SerializeAsync(profile.Visits, p, new ParquetOptions(), visitMeta)));
        }
        return ResultWriter.WriteRunAsync(dir, r.Result, metadata, extra);
    }
}
