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
/// a factor, or a scheduler mismatch fails it; docs/fidelity.md has the 10% target. The profile is the serving grid
/// (the one scripts/fidelity-cpu.sh uses): the quick grid's two 16-step loops left the fit too few contexts once the
/// warm-up steps were left out, and its decode price halved in one run of three. It runs alone (the timing
/// collection): other tests on the sibling core would slow the replay but not the profile measured before it.
/// </summary>
[Collection("timing")]
public class CpuClosedLoopTests
{
    /// <summary>
    /// Loose on purpose. On the 2-vCPU development VM the host slows ONNX Runtime by up to 1.6x for seconds at a time
    /// (docs/fidelity.md, "A drifting machine") and this sub-second replay sits inside one such spell or not; and this
    /// 16-request burst replays 10-45% slower than predicted (TTFT errors −8…−47% in nine command-line repetitions on
    /// 2026-11-28, TPOT −36…+28%), for a reason not yet found — not JIT compilation (the CPU clock leaves it out), not
    /// tiered compilation (DOTNET_TieredCompilation=0: the same), not ONNX Runtime's first run at a new prompt length
    /// (measured: none on CPU). A factor of 2.5 in either direction still fails.
    /// </summary>
    private const double Bound = 0.6;

    [Fact]
    public void PredictionFollowsTheReplayWithinALooseBound()
    {
        var dir = RlmsProcess.TempDir();
        var profile = Path.Combine(dir, "profile");
        var calibration = Path.Combine(dir, "cpu-tiny-tp1.json");
        Assert.Equal(0, new ProfileCommand { Model = "tiny", Device = "cpu", Grid = "serving", Groups = ["generation"], KvMode = "serving", Threads = 1, Clock = "cpu", Out = profile, NoProgress = true }.Run());
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
        var metrics = new[] { ("ttft", report.Ttft), ("tpot", report.Tpot), ("e2el", report.E2el) };
        string all = string.Join("; ", metrics.Select(x => $"{x.Item1}: measured mean {x.Item2?.MeasuredMeanMs:F2} ms, predicted {x.Item2?.PredictedMeanMs:F2} ms ({x.Item2?.MeanError:P0})"));
        foreach (var (name, m) in metrics)
        {
            Assert.NotNull(m);
            Assert.True(Math.Abs(m.MeanError) < Bound, $"{name} outside ±{Bound:P0}: {all}");
        }
    }
}
