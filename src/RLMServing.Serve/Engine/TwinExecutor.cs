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
/// Times are simulated seconds (wall seconds times the scale). The twin's clock is the simulation's: an iteration
/// starts when the previous one ended (or at the arrival that woke an idle replica), never when the host thread got
/// round to it, so the twin's timings given the arrivals are the simulator's whatever the host's load. A host too
/// slow for real time releases tokens late instead; <see cref="MaxLateS"/> says by how much at worst.
/// </remarks>
internal sealed class TwinExecutor : IIterationExecutor, ILiveClock
{
    private readonly PricedCostModel _prices;
    private readonly double _timeScale;
    private readonly Slowdown? _slowdown;
    private readonly long _startTicks = Stopwatch.GetTimestamp();
    private readonly ManualResetEventSlim _interrupted = new();
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

    /// <summary>The most an iteration's tokens came out after their simulated time (simulated seconds): host overload.</summary>
    public double MaxLateS { get; private set; }

    public double NowS => _clockS;

    public double ArrivalS => WallS;

    /// <summary>An idle replica's clock follows the wall clock (a static batch waiting for its timeout).</summary>
    public void CatchUp() => _clockS = Math.Max(_clockS, WallS);

    /// <summary>
    /// The server is stopping: a wait in progress ends at once. At a small time scale one iteration lasts many wall
    /// seconds, and the shutdown must not wait it out.
    /// </summary>
    public void Interrupt() => _interrupted.Set();

    public void WaitUntil(double timeS)
    {
        SleepUntil(timeS);
        _clockS = Math.Max(_clockS, timeS);
    }

    public double Execute(IReadOnlyList<ChunkWork> chunks, IReadOnlyList<DecodeWork> decodes)
    {
        double start = _clockS;
        double priced = _prices.Last.TimeS * (_slowdown?.At(start) ?? 1.0);
        double end = start + priced;
        SleepUntil(end);
        MaxLateS = Math.Max(MaxLateS, WallS - end);
        _clockS = end;
        return end;
    }

    public void Release(long requestId, bool finished) { }

    /// <summary>
    /// Sleeps until the target: tokens come out up to about a millisecond late (a sleep's granularity), which does not
    /// add up because the clock is the simulation's. No spinning: the twin shares its machine with its clients.
    /// </summary>
    private void SleepUntil(double timeS)
    {
        double targetWallS = timeS / _timeScale;
        while (true)
        {
            double left = targetWallS - Stopwatch.GetElapsedTime(_startTicks).TotalSeconds;
            if (left <= 0) return;
            if (_interrupted.Wait(Math.Max(1, (int)Math.Min(left * 1000, int.MaxValue))))
                throw new OperationCanceledException("the server is stopping");
        }
    }
}

/// <summary>The live replica's view of its executor's clock; <see cref="ArrivalS"/> is read from any thread.</summary>
public interface ILiveClock
{
    /// <summary>Now, on the executor's time base: the arrival time of a request received now.</summary>
    double ArrivalS { get; }

    /// <summary>Called on the engine thread when the replica idles with nothing to run: the clock may move to now.</summary>
    void CatchUp();

    /// <summary>
    /// Called from any thread when the server stops: a wait of the engine thread may end early by throwing
    /// <see cref="OperationCanceledException"/>.
    /// </summary>
    void Interrupt();
}
