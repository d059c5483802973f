using RLMServing.Cli.Commands;
using RLMServing.IO.Catalog;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Profiling.Onnx;
using RLMServing.Profiling.Replay;
using RLMServing.Profiling.Runtime;
using RLMServing.Tests.Cli;
using RLMServing.Validation;
using Xunit;

namespace RLMServing.Tests.Replay;

/// <summary>
/// The CPU closed loop in miniature: profile tiny → calibrate → simulate vs replay → validate, with a loose bound.
/// Every request arrives at time 0 (closed loop), so the schedule does not depend on timing. Profile and replay run on
/// the engine thread's CPU clock (--clock cpu; ONNX Runtime computes on the calling thread with one intra-op thread),
/// so a test machine shared with other work does not stretch the replay. A broken replay clock, a calibration off by
/// a factor, or a scheduler mismatch fails it; docs/fidelity.md has the 10% target. It runs alone (the timing
/// collection): other tests on the sibling core would slow the replay but not the profile measured before it.
/// </summary>
[Collection("timing")]
public class CpuClosedLoopTests
{
    private const double Bound = 0.5;

    [Fact]
    public void PredictionFollowsTheReplayWithinALooseBound()
    {
        var dir = RlmsProcess.TempDir();
        var profile = Path.Combine(dir, "profile");
        var calibration = Path.Combine(dir, "cpu-tiny-tp1.json");
        Assert.Equal(0, new ProfileCommand { Model = "tiny", Device = "cpu", Grid = "quick", Groups = ["generation"], KvMode = "serving", Threads = 1, Clock = "cpu", Out = profile, NoProgress = true }.Run());
        Assert.Equal(0, new CalibrateCommand { Traces = [profile], Out = calibration, Gpu = "CPU" }.Run());

        var scenario = Path.Combine(dir, "loop.yaml");
        File.WriteAllText(scenario, $$"""
            name: loop
            seed: 9
            hardware: { gpu: CPU, replicas: 1, tensor_parallel: 1 }
            model: tiny
            cost_model: { kind: calibrated, file: {{calibration}}, iteration_calls: per_prefill_chunk }
            workload:
              requests: 16
              arrival: { process: closed_loop, concurrency: 16 }
              prompt_tokens: { dist: uniform, min: 16, max: 96 }
              output_tokens: { dist: uniform, min: 32, max: 128 }
            scheduler: { batching: continuous, max_num_seqs: 4, max_num_batched_tokens: 256 }
            kv_cache: { block_size: 16, gpu_memory_utilization: 0.9, activation_reserve_gib: 0.01 }
            """);
        var run = ScenarioRunner.Prepare(ScenarioLoader.Load(scenario), CatalogLoader.LoadDefault()).Single();
        var predicted = ScenarioRunner.Simulate(run, null);
        using var device = new DeviceContext(DeviceSpec.Parse("cpu"), 1);
        var measured = ReplayRunner.Run(run, null, device, OnnxType.Float, clock: EngineClockKind.Cpu).Result;
        var report = Validator.Compare(measured.Requests, predicted.Requests, Bound);
        foreach (var (name, m) in new[] { ("ttft", report.Ttft), ("tpot", report.Tpot), ("e2el", report.E2el) })
        {
            Assert.NotNull(m);
            Assert.True(Math.Abs(m.MeanError) < Bound,
                $"{name}: measured mean {m.MeasuredMeanMs:F2} ms, predicted {m.PredictedMeanMs:F2} ms ({m.MeanError:P0})");
        }
    }
}
