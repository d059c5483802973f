using FsCheck;
using FsCheck.Xunit;
using RLMServing.IO.Catalog;
using RLMServing.IO.Sweeps;
using RLMServing.Sweeps;
using RLMServing.Tests.Cli;
using Xunit;

namespace RLMServing.Tests.Sweeps;

/// <summary>
/// Capacity answers that do not depend on how long a probe runs: the search doubles the horizon until the answer
/// settles, says when it did not, and gives the same answer when the sweep's own request count is doubled.
/// </summary>
public class CapacityConvergenceTests
{
    private static readonly CapacitySearchOptions Options = new(StartRate: 1, MinRate: 0.01, MaxRate: 1000, Tolerance: 0.02, MaxProbes: 60);
    private static readonly ConvergenceOptions Settle = new(BaseRequests: 1000, MaxRequests: 64_000, MaxChange: 0.02, MinServiceTimes: 10, ServiceTimes: 20);

    [Property(MaxTest = 100)]
    public bool AnyHintLandsOnTheSameGridRate(PositiveInt a, PositiveInt b)
    {
        double threshold = 0.05 + a.Get % 50_000 / 100.0, hint = 0.02 + b.Get % 9000 / 10.0;
        var plain = CapacitySearch.Find(r => r <= threshold, Options);
        var hinted = CapacitySearch.Find(r => r <= threshold, Options, hint);
        return plain.MaxRate == hinted.MaxRate && plain.MaxRate <= threshold && plain.MaxRate >= threshold / (1 + Options.Tolerance);
    }

    [Fact]
    public void AStableSystemSettlesAtTheSecondHorizon()
    {
        // The threshold and figures do not move with the horizon, and the steady window is 30 service times long.
        var answer = CapacitySearch.FindConverged((rate, _) => new ProbeOutcome(rate <= 3.3, [0.97, 1200], 3000, 100), Options, Settle);
        Assert.True(answer.Converged);
        Assert.Equal(2000, answer.Requests);
        Assert.InRange(answer.MaxRate, 3.3 / 1.02, 3.3);
    }

    [Fact]
    public void ASystemWhoseAnswerKeepsFallingWithTheHorizonDoesNotConverge()
    {
        // The overload shows later the longer the run: the passing threshold falls by a fifth with every doubling.
        var answer = CapacitySearch.FindConverged((rate, n) => new ProbeOutcome(rate <= 10 * Math.Pow(0.8, Math.Log2(n / 1000.0)), [0.97], 100 * Math.Sqrt(n), 100), Options, Settle);
        Assert.False(answer.Converged);
        Assert.Equal(64_000, answer.Requests);
        Assert.Equal(7, answer.Horizons.Count);
        Assert.True(answer.Horizons.Select(h => h.MaxRate).Zip(answer.Horizons.Skip(1).Select(h => h.MaxRate)).All(p => p.First > p.Second));
    }

    [Fact]
    public void AnAnswerThatFlipsAtTheThresholdIsNotConvergedUntilItStops()
    {
        // The grid rate just below 3.3 passes at 2,000 and 8,000 requests only (a rate at the threshold decided by
        // noise); from 16,000 requests on it fails for good: the answer settles one step lower at 32,000.
        double edge = Options.RateAt(Options.IndexOf(3.3) - 1);
        var answer = CapacitySearch.FindConverged((rate, n) => new ProbeOutcome(rate < edge || rate == edge && n is 2000 or 8000, [0.97], 3000, 100), Options, Settle);
        Assert.True(answer.Converged);
        Assert.Equal(32_000, answer.Requests);
        Assert.True(answer.MaxRate < edge);
    }

    [Fact]
    public void FiguresThatStillMoveKeepTheHorizonGrowingUntilTheWindowIsLongEnough()
    {
        // Same decisions everywhere, but the p99 latency halves at each doubling; the steady window grows with n
        // and spans 20 service times at 32,000 requests.
        var answer = CapacitySearch.FindConverged((rate, n) => new ProbeOutcome(rate <= 3.3, [1e6 / n], n / 16.0, 100), Options, Settle);
        Assert.True(answer.Converged);
        Assert.Equal(32_000, answer.Requests);
    }

    [Fact]
    public void TwoShortRunsAgreeingByChanceAreNotConvergence()
    {
        // Figures equal at every horizon, but at 2,000 requests the window is only 5 service times (n / 4 s against
        // 100 s): the answer counts only from 4,000 requests, where it spans 10.
        var answer = CapacitySearch.FindConverged((rate, n) => new ProbeOutcome(rate <= 3.3, [0.97], n / 4.0, 100), Options, Settle);
        Assert.True(answer.Converged);
        Assert.Equal(4000, answer.Requests);
    }

    /// <summary>A small capacity sweep (R1-Distill-Qwen-7B, short answers, an A100 at TP 1 and 2) with its request count set.</summary>
    private static string SmallSweep(string dir, int requests, string extra = "")
    {
        var path = Path.Combine(dir, $"capacity-{requests}.yaml");
        File.WriteAllText(path, $$"""
            base: {{Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "capacity-r1-32b.yaml")}}
            set:
              workload.requests: {{requests}}
              model: DeepSeek-R1-Distill-Qwen-7B
              workload.output_tokens: { dist: lognormal, median: 400, sigma: 0.5 }
            axes:
              hardware.gpu: [A100-SXM-80G]
              hardware.tensor_parallel: [1, 2]
            seeds: 1
            capacity: { start_rate: 4, tolerance: 0.05, target_rate: 50, slo: { goodput_fraction: 0.95 }{{extra}} }
            """);
        return path;
    }

    private static List<object?[]> RunAll(string sweepPath)
    {
        var runner = new SweepRunner(SweepLoader.Load(sweepPath), CatalogLoader.LoadDefault());
        return runner.Configurations.SelectMany(runner.Run).ToList();
    }

    private static object? Cell(SweepRunner runner, object?[] row, string column) => row[runner.Columns.ToList().FindIndex(c => c.Name == column)];

    [Fact]
    public void TheCapacityTableDoesNotChangeWhenTheRequestsAreDoubled()
    {
        var dir = RlmsProcess.TempDir();
        string[] columns = [SweepColumns.MaxRate, SweepColumns.GpusForTarget, SweepColumns.Converged, SweepColumns.RequestsUsed, "steady_state.p99_e2el_ms"];
        List<object?[]> Table(int requests)
        {
            var runner = new SweepRunner(SweepLoader.Load(SmallSweep(dir, requests)), CatalogLoader.LoadDefault());
            return runner.Configurations.SelectMany(runner.Run).Select(row => columns.Select(c => Cell(runner, row, c)).ToArray()).ToList();
        }
        var single = Table(1000);
        var doubled = Table(2000);
        Assert.All(single, row => Assert.Equal(true, row[2]));
        Assert.Equal(single, doubled);
    }

    [Fact]
    public void AHorizonCapTooShortForTheLongestRequestsIsReportedAsNotConverged()
    {
        // The 32B reasoning workload's longest requests are served for minutes: 400 requests cannot span ten of them.
        var dir = RlmsProcess.TempDir();
        var path = Path.Combine(dir, "short.yaml");
        File.WriteAllText(path, $$"""
            base: {{Path.Combine(RlmsProcess.RepoRoot(), "scenarios", "capacity-r1-32b.yaml")}}
            set: { workload.requests: 200, hardware.gpu: B200 }
            seeds: [7, 8]
            capacity: { start_rate: 2, tolerance: 0.1, slo: { goodput_fraction: 0.95 }, convergence: { max_requests: 400 } }
            """);
        var runner = new SweepRunner(SweepLoader.Load(path), CatalogLoader.LoadDefault());
        var rows = runner.Configurations.SelectMany(runner.Run).ToList();
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal(false, Cell(runner, r, SweepColumns.Converged)));
        Assert.All(rows, r => Assert.Equal(400, Cell(runner, r, SweepColumns.RequestsUsed)));
        // Two seeds: a 95% interval around their mean, the same on both rows.
        var rates = rows.Select(r => (double)Cell(runner, r, SweepColumns.MaxRate)!).ToList();
        var low = (double)Cell(runner, rows[0], SweepColumns.CiLow)!;
        var high = (double)Cell(runner, rows[0], SweepColumns.CiHigh)!;
        Assert.True(low <= rates.Average() && rates.Average() <= high);
        Assert.Equal(low, Cell(runner, rows[1], SweepColumns.CiLow));
        Assert.Equal(SweepRunner.ConfidenceInterval(rates), (low, high));
    }

    [Fact]
    public void TheIntervalOfTwoSeedsIsTheStudentTInterval()
    {
        // Mean 3, s = √2, t(0.975, 1) = 12.706: 3 ± 12.706.
        var (low, high) = SweepRunner.ConfidenceInterval([2.0, 4.0]);
        Assert.Equal(3 - 12.7062047, low!.Value, 5);
        Assert.Equal(3 + 12.7062047, high!.Value, 5);
        Assert.Equal((null, null), SweepRunner.ConfidenceInterval([2.0]));
    }
}
