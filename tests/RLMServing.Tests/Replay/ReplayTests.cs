using System.Text.Json;
using Parquet;
using RLMServing.IO.Catalog;
using RLMServing.IO.Results;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Metrics;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Replay;
using RLMServing.Profiling.Runtime;
using RLMServing.Profiling.Traces;
using RLMServing.Simulation;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Replay;

/// <summary>rlms replay: the real ONNX Runtime engine behind the simulator's scheduler (tiny model, CPU, seconds).</summary>
public class ReplayTests
{
    private const string Base = """
        hardware: { gpu: CPU, replicas: 1, tensor_parallel: 1 }
        model: tiny
        cost_model: { kind: roofline }
        kv_cache: { block_size: 16, gpu_memory_utilization: 0.9, activation_reserve_gib: 0.01 }
        """;

    private static PreparedRun Prepare(string yaml, params string[] sets)
    {
        var dir = RlmsProcess.TempDir();
        var path = Path.Combine(dir, "s.yaml");
        File.WriteAllText(path, yaml);
        var file = ScenarioLoader.Load(path, sets);
        return ScenarioRunner.Prepare(file, CatalogLoader.LoadDefault()).Single();
    }

    private static string Small(string batching, int requests = 6, string arrival = "{ process: poisson, rate: 40 }") => $$"""
        name: small
        seed: 3
        {{Base}}
        workload:
          requests: {{requests}}
          arrival: {{arrival}}
          prompt_tokens: { dist: uniform, min: 8, max: 48 }
          output_tokens: { dist: uniform, min: 4, max: 24 }
        scheduler: { batching: {{batching}}, max_num_seqs: 3, max_num_batched_tokens: 64 }
        """;

    /// <summary>Wraps the engine to see each request's token history when it finishes.</summary>
    private sealed class Recording(OrtServingEngine engine) : IIterationExecutor
    {
        public Dictionary<long, int> TokensAtFinish { get; } = new();
        public double NowS => engine.NowS;
        public void WaitUntil(double timeS) => engine.WaitUntil(timeS);
        public double Execute(IReadOnlyList<ChunkWork> chunks, IReadOnlyList<DecodeWork> decodes) => engine.Execute(chunks, decodes);

        public void Release(long requestId, bool finished)
        {
            if (finished) TokensAtFinish[requestId] = engine.TokensOf(requestId).Count;
            engine.Release(requestId, finished);
        }
    }

    private static (SimulationResult Result, Recording Engine, IReadOnlyList<ReplayIteration> Iterations) ReplayRecorded(PreparedRun run)
    {
        var s = run.Scenario;
        var requests = s.Workload!.Generate(s.Seed);
        using var device = new DeviceContext(DeviceSpec.Parse("cpu"), 1);
        using var engine = new OrtServingEngine(device, run.Model, OnnxType.Float, s.Scheduler.MaxNumSeqs, requests.Max(r => r.PromptTokens + r.OutputTokens));
        var recording = new Recording(engine);
        engine.StartClock();
        var result = Simulator.Run(s, run.Model, run.Gpu, run.Cost, checkInvariants: true, executor: recording);
        return (result, recording, engine.Iterations.ToList());
    }

    [Fact]
    public async Task ReplayAndSimulateWriteTheSameSchema()
    {
        var run = Prepare(Small("continuous"));
        var measured = RlmsProcess.TempDir();
        var predicted = RlmsProcess.TempDir();
        using (var device = new DeviceContext(DeviceSpec.Parse("cpu"), 1))
        {
            var r = ReplayRunner.Run(run, null, device, OnnxType.Float);
            await ReplayRunner.WriteAsync(measured, r, ReplayRunner.Metadata(run, null, "test", r, 1));
        }
        await ResultWriter.WriteRunAsync(predicted, ScenarioRunner.Simulate(run, null), ScenarioRunner.Metadata(run, null, "test"));

        foreach (var f in new[] { "requests.parquet", "timeseries.parquet" })
            Assert.Equal(await Columns(Path.Combine(predicted, f)), await Columns(Path.Combine(measured, f)));
        Assert.Equal(JsonKeys(Path.Combine(predicted, "summary.json")), JsonKeys(Path.Combine(measured, "summary.json")));
        Assert.Equal("replay", TraceReader.Metadata(Path.Combine(measured, "requests.parquet"))["rlms.source"]);
        var iterations = TraceReader.Read<ReplayIterationRow>(Path.Combine(measured, "iterations.parquet"));
        Assert.NotEmpty(iterations);
        Assert.Empty(Directory.GetFiles(measured, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void DecodeStepsDoNotAllocateWithTheLongestSequence()
    {
        // A skewed batch (one long sequence among short ones): the step's mask is batch × longest wide, and allocating
        // it every step put large-object-heap garbage and gen-2 collections into skewed batches (docs/fidelity.md).
        const int batch = 8, longest = 1600;
        using var device = new DeviceContext(DeviceSpec.Parse("cpu"), 1);
        using var engine = new OrtServingEngine(device, CatalogLoader.LoadDefault().Model("tiny"), OnnxType.Float, batch, longest + 64);
        var decodes = new List<DecodeWork>();
        for (int i = 0; i < batch; i++)
        {
            int prompt = i == 0 ? longest : 16;
            engine.Execute([new ChunkWork(i + 1, prompt, 0, true)], []);
            decodes.Add(new DecodeWork(i + 1, prompt));
        }
        void Step()
        {
            engine.Execute([], decodes);
            for (int i = 0; i < batch; i++) decodes[i] = decodes[i] with { KvTokens = decodes[i].KvTokens + 1 };
        }
        for (int s = 0; s < 4; s++) Step();
        const int steps = 24;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int s = 0; s < steps; s++) Step();
        double perStep = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)steps;
        // The mask alone is batch × (longest + 1) × 8 bytes = 102 kB. What a step allocates now is a few small objects
        // (the input and mask tensors, ONNX Runtime's binding names): about 1.2 kB. Creating the KV views of every layer
        // per call, as the engine once did, added as much again and put 10-30 ms collections into replays.
        Assert.True(perStep < 2048, $"{perStep:F0} bytes allocated per decode step");
    }

    private static async Task<List<string>> Columns(string path)
    {
        await using var stream = File.OpenRead(path);
        await using var reader = await ParquetReader.CreateAsync(stream);
        return reader.Schema.DataFields.Select(f => $"{f.Name}:{f.ClrType.Name}:{f.IsNullable}").ToList();
    }

    private static List<string> JsonKeys(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>rlms replay sends closed batches as the simulator does: each batch at the last finish of the one before plus the gap.</summary>
    [Fact]
    public void ClosedBatchesWaitForTheirLastRequestOnTheRealEngine()
    {
        var run = Prepare(Small("continuous", requests: 8, arrival: "{ process: closed_batches, batch: 3, gap_ms: 20 }"));
        var (result, _, _) = ReplayRecorded(run);
        var rows = result.Requests.OrderBy(r => r.RequestId).ToList();
        Assert.Equal(8, rows.Count);
        double start = 0;
        foreach (var batch in rows.Chunk(3))
        {
            Assert.All(batch, r => Assert.Equal(start, r.ArrivalTimeS));
            Assert.All(batch, r => Assert.True(r.FirstScheduledTimeS >= start, $"request {r.RequestId} scheduled before its batch arrived"));
            start = batch.Max(r => r.CompletionTimeS!.Value) + 0.020;
        }
    }

    [Theory]
    [InlineData("static")]
    [InlineData("continuous")]
    [InlineData("chunked_prefill")]
    public void EveryRequestGetsItsTokensWithMonotoneTimestamps(string batching)
    {
        var run = Prepare(Small(batching, requests: 8));
        var specs = run.Scenario.Workload!.Generate(run.Scenario.Seed).ToDictionary(r => r.Id);
        var (result, engine, iterations) = ReplayRecorded(run);

        Assert.Equal(specs.Count, result.Requests.Count);
        foreach (var r in result.Requests)
        {
            Assert.Equal(RequestStatus.Completed, r.Status);
            Assert.Equal(specs[r.RequestId].OutputTokens, r.OutputTokens);
            // The engine fed the whole prompt and generated exactly the output the workload asked for.
            Assert.Equal(specs[r.RequestId].PromptTokens + specs[r.RequestId].OutputTokens, engine.TokensAtFinish[r.RequestId]);
            Assert.True(r.ArrivalTimeS <= r.FirstScheduledTimeS && r.FirstScheduledTimeS <= r.FirstTokenTimeS
                && r.FirstTokenTimeS <= r.FirstAnswerTokenTimeS && r.FirstAnswerTokenTimeS <= r.CompletionTimeS, $"request {r.RequestId}");
        }
        Assert.Equal(specs.Values.Sum(s => (long)s.OutputTokens), iterations.Sum(i => (long)i.TokensGenerated));
        for (int i = 1; i < iterations.Count; i++)
            Assert.True(iterations[i].StartS >= iterations[i - 1].EndS, $"iteration {i} starts before the previous one ended");
        // Prompts go into free slots from the top; a request's first decode moves it down to the decode set's slots,
        // so KV moves happen, and only in iterations that decode.
        Assert.True(iterations.Sum(i => i.KvMovedTokens) > 0);
        Assert.All(iterations.Where(i => i.DecodeCount == 0), i => Assert.Equal(0, i.KvMovedTokens));
    }

    [Fact]
    public void PreemptedRequestsRecomputeAndStillGetEveryToken()
    {
        // A KV cache of a few hundred tokens: decodes outgrow it and the latest admitted request is preempted.
        var run = Prepare(Small("continuous", requests: 8, arrival: "{ process: closed_loop, concurrency: 8 }"), Contended);
        Assert.InRange(KvCapacity(run), 200, 300);
        var specs = run.Scenario.Workload!.Generate(run.Scenario.Seed).ToDictionary(r => r.Id);
        var (result, engine, _) = ReplayRecorded(run);
        Assert.True(result.Summary.Preemptions > 0, "the scenario should preempt");
        foreach (var r in result.Requests)
            Assert.Equal(specs[r.RequestId].PromptTokens + specs[r.RequestId].OutputTokens, engine.TokensAtFinish[r.RequestId]);
    }

    /// <summary>Overrides that leave a KV cache of about <paramref name="tokens"/> tokens for tiny on the CPU entry.</summary>
    private static string[] SmallKv(int tokens)
    {
        var catalog = CatalogLoader.LoadDefault();
        var model = catalog.Model("tiny");
        double u = (model.WeightBytes + (tokens + 8.0) * model.KvBytesPerToken) / catalog.Gpu("CPU").MemoryBytes;
        return ["kv_cache.activation_reserve_gib=0", "kv_cache.gpu_memory_utilization=" + u.ToString("R", System.Globalization.CultureInfo.InvariantCulture)];
    }

    private static string[] Contended =>
        [.. SmallKv(256), "scheduler.max_num_seqs=6", "workload.output_tokens={dist: uniform, min: 40, max: 60}"];

    private static long KvCapacity(PreparedRun run) =>
        Memory.KvCachePlan.For(run.Model, run.Gpu, 1, run.Scenario.KvCache, run.Scenario.Scheduler).CapacityTokens;

    /// <summary>
    /// With every request there at time 0 (closed loop, no think time), scheduling does not depend on timing, so the
    /// real engine must make exactly the simulator's decisions: the same admission groups in the same order, the same
    /// iterations (mean batch size) and the same preemptions.
    /// </summary>
    [Theory]
    [InlineData("static")]
    [InlineData("continuous")]
    [InlineData("chunked_prefill")]
    public void ReplayMakesTheSimulatorsSchedulingDecisions(string batching)
    {
        var run = Prepare(Small(batching, requests: 8, arrival: "{ process: closed_loop, concurrency: 8 }"), Contended);
        var simulated = ScenarioRunner.Simulate(run, null);
        var (replayed, _, _) = ReplayRecorded(run);
        Assert.Equal(AdmissionGroups(simulated.Requests), AdmissionGroups(replayed.Requests));
        Assert.Equal(simulated.Requests.Select(r => r.Preemptions), replayed.Requests.Select(r => r.Preemptions));
        Assert.Equal(simulated.Summary.MeanBatchSize, replayed.Summary.MeanBatchSize, 9);
        Assert.Equal(simulated.Summary.Preemptions, replayed.Summary.Preemptions);
    }

    private static List<string> AdmissionGroups(IReadOnlyList<RequestRecord> records) =>
        records.GroupBy(r => r.FirstScheduledTimeS).OrderBy(g => g.Key)
            .Select(g => string.Join(",", g.Select(r => r.RequestId).Order())).ToList();

    [Fact]
    public void StaticBatchingNeverAdmitsMidBatch()
    {
        var run = Prepare(Small("static", requests: 10, arrival: "{ process: poisson, rate: 60 }"));
        var (result, _, _) = ReplayRecorded(run);
        var batches = result.Requests.GroupBy(r => r.FirstScheduledTimeS).OrderBy(g => g.Key).ToList();
        Assert.True(batches.Count > 1);
        for (int i = 0; i < batches.Count; i++)
        {
            Assert.InRange(batches[i].Count(), 1, run.Scenario.Scheduler.MaxNumSeqs);
            if (i > 0) Assert.True(batches[i].Key >= batches[i - 1].Max(r => r.CompletionTimeS!.Value), $"batch {i} began before batch {i - 1} ended");
        }
    }
}
