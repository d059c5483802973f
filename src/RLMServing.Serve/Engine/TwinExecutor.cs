using System.Diagnostics;
using RLMServing.Costs;
using RLMServing.Simulation;

namespace RLMServing.Serve.Engine;

/// <summary>
/// The digital twin's executor: an iteration takes the time the scenario's cost model prices it at (times
/// <c>cost_model.slowdown</c>), waited out on the wall clock divided by the time scale, so the replica engine's
/// scheduler runs in real time and its tokens come out when the simulator says they would.
/// </summary>
/// <remarks>
/// Times are simulated seconds (wall seconds times the scale). The twin keeps its own clock: an iteration starts when
/// the previous one ended, not when the host thread got round to it, so scheduling jitter of the host does not add
/// up over a stream. Only when the host falls behind real time by more than <see cref="ToleranceWallS"/> (an overloaded
/// machine) does the clock jump to the wall clock; that lag is counted in <see cref="LagS"/>.
/// </remarks>
internal sealed class TwinExecutor : IIterationExecutor, IArrivalClock
{
    /// <summary>How far the host may trail the twin's clock before the clock follows the wall clock, wall seconds.</summary>
    public const double ToleranceWallS = 0.005;

    private readonly PricedCostModel _prices;
    private readonly double _timeScale;
    private readonly Slowdown? _slowdown;
    private readonly long _startTicks = Stopwatch.GetTimestamp();
    private double _clockS;

    public TwinExecutor(PricedCostModel prices, double timeScale, Slowdown? slowdown)
    {
        if (!(timeScale > 0)) throw new ArgumentOutOfRangeException(nameof(timeScale), "the time scale must be positive");
        _prices = prices;
        _timeScale = timeScale;
        _slowdown = slowdown;
    }

    /// <summary>Wall time since the start, in simulated seconds.</summary>
    public double WallS => Stopwatch.GetElapsedTime(_startTicks).TotalSeconds * _timeScale;

    /// <summary>Simulated seconds the twin fell behind the wall clock, summed (host overload, not the model).</summary>
    public double LagS { get; private set; }

    private double ToleranceS => ToleranceWallS * _timeScale;

    public double NowS => Math.Max(_clockS, WallS - ToleranceS);

    public double ArrivalS => WallS;

    public void WaitUntil(double timeS)
    {
        SleepUntil(timeS);
        _clockS = Math.Max(_clockS, timeS);
    }

    public double Execute(IReadOnlyList<ChunkWork> chunks, IReadOnlyList<DecodeWork> decodes)
    {
        double behind = WallS - ToleranceS - _clockS;
        if (behind > 0) LagS += behind;
        double start = NowS;
        double priced = _prices.Last.TimeS * (_slowdown?.At(start) ?? 1.0);
        double end = start + priced;
        SleepUntil(end);
        _clockS = end;
        return end;
    }

    public void Release(long requestId, bool finished) { }

    /// <summary>Sleeps to within a millisecond of the target, then yields until it (a sleep alone overshoots by up to a tick).</summary>
    private void SleepUntil(double timeS)
    {
        double targetWallS = timeS / _timeScale;
        while (true)
        {
            double left = targetWallS - Stopwatch.GetElapsedTime(_startTicks).TotalSeconds;
            if (left <= 0) return;
            if (left > 0.0015) Thread.Sleep(TimeSpan.FromSeconds(left - 0.0012));
            else Thread.Yield();
        }
    }
}

/// <summary>The clock a live request's arrival is stamped with, on the executor's time base; read from any thread.</summary>
public interface IArrivalClock
{
    double ArrivalS { get; }
}
