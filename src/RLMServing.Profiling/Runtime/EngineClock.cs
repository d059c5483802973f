using System.Diagnostics;
using System.Runtime.InteropServices;

namespace RLMServing.Profiling.Runtime;

/// <summary>
/// What a CPU replay or serving-engine profile measures time with. <c>wall</c>: the wall clock (what a user of the
/// engine sees, including time the process waits for a core). <c>cpu</c>: the CPU time of the engine's thread
/// (CLOCK_THREAD_CPUTIME_ID); ONNX Runtime with one intra-op thread computes on the calling thread, so this is the
/// engine's own work — calls, input binding, sampling and the scheduler — without the time other processes take the
/// core. Waiting for an arrival then costs no time: the clock jumps to it. It also leaves out the .NET JIT compiling
/// code on the engine's thread (each method's first call; a short replay's first iterations paid tens of
/// milliseconds for it, which a long-running server pays once at start). On a quiet machine the two agree; on a
/// shared one only the second is a measurement of the engine (docs/fidelity.md).
/// </summary>
public enum EngineClockKind
{
    Wall,
    Cpu,
}

/// <summary>A monotone clock in seconds from <see cref="Restart"/>; the CPU kind is bound to the thread that restarted it.</summary>
public sealed class EngineClock
{
    private readonly Stopwatch _wall = new();
    private double _skipped;
    private double _excluded;
    private double _lastCpu;
    private double _lastJit;
    private double _counted;
    private int _thread;
    private readonly Func<double> _cpuSeconds;
    private readonly Func<double> _jitSeconds;

    public EngineClock(EngineClockKind kind) : this(kind, ThreadCpuTime.Seconds, JitSeconds)
    {
    }

    /// <summary>A CPU clock over given sources of the thread's CPU time and the JIT's compilation time (tests).</summary>
    internal EngineClock(EngineClockKind kind, Func<double> cpuSeconds, Func<double> jitSeconds)
    {
        if (kind == EngineClockKind.Cpu && !ThreadCpuTime.Supported) throw new UserInputException(NotLinux);
        Kind = kind;
        _cpuSeconds = cpuSeconds;
        _jitSeconds = jitSeconds;
        Restart();
    }

    public EngineClockKind Kind { get; }

    private const string NotLinux = "--clock cpu: the thread CPU clock (clock_gettime CLOCK_THREAD_CPUTIME_ID) is available on Linux only";

    public static EngineClockKind Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "wall" => EngineClockKind.Wall,
        "cpu" => EngineClockKind.Cpu,
        _ => throw new UserInputException($"--clock: '{text}' is not wall or cpu"),
    };

    /// <summary>
    /// Checks that the CPU clock measures the engine: a CPU device and one ONNX Runtime intra-op thread (with more,
    /// the runtime computes on pool threads this clock does not see).
    /// </summary>
    public static void CheckUsable(EngineClockKind kind, DeviceSpec device, int intraOpThreads)
    {
        if (kind != EngineClockKind.Cpu) return;
        if (device.Cuda)
            throw new UserInputException($"--clock cpu: the thread CPU clock measures CPU work; --device {device} runs on a GPU (use --clock wall)");
        if (intraOpThreads != 1)
            throw new UserInputException($"--clock cpu needs --threads 1 (got {intraOpThreads}): with more ONNX Runtime threads the work runs on threads the clock does not see");
        if (!ThreadCpuTime.Supported) throw new UserInputException(NotLinux);
    }

    public void Restart()
    {
        _wall.Restart();
        _thread = Environment.CurrentManagedThreadId;
        _skipped = 0;
        _excluded = 0;
        _lastCpu = Kind == EngineClockKind.Cpu ? _cpuSeconds() : 0;
        _lastJit = Kind == EngineClockKind.Cpu ? _jitSeconds() : 0;
        _counted = 0;
    }

    /// <summary>
    /// Takes <paramref name="seconds"/> of work just done off the clock, as if it had not happened (work set aside
    /// from the run it measures, e.g. profile points run while a replay is idle). The clock stays monotone: only
    /// time measured since the work began may be excluded.
    /// </summary>
    public void Exclude(double seconds)
    {
        if (seconds > 0) _excluded += seconds;
    }

    /// <summary>Seconds since <see cref="Restart"/>.</summary>
    public double NowS
    {
        get
        {
            if (Kind == EngineClockKind.Wall) return _wall.Elapsed.TotalSeconds - _excluded;
            if (Environment.CurrentManagedThreadId != _thread)
                throw new InvalidOperationException("the CPU engine clock is read from another thread than the one that started it");
            // Advanced read by read: the thread's CPU time since the last read less the JIT's compilation time since
            // then. The JIT's time is wall time: on a loaded machine a compile that waits for a core can add more to it
            // than to the thread's CPU time, and the difference would step the clock back; such a read advances it by 0
            // instead, and the excess is not carried over, so the clock stays monotone and keeps counting at once.
            double cpu = _cpuSeconds(), jit = _jitSeconds();
            double step = (cpu - _lastCpu) - (jit - _lastJit);
            if (step > 0) _counted += step;
            _lastCpu = cpu;
            _lastJit = jit;
            return _counted + _skipped - _excluded;
        }
    }

    /// <summary>Time the JIT has spent compiling on the calling thread.</summary>
    private static double JitSeconds() => System.Runtime.JitInfo.GetCompilationTime(currentThread: true).TotalSeconds;

    /// <summary>
    /// Returns when <see cref="NowS"/> has reached <paramref name="timeS"/>: the wall clock sleeps (short pieces, so
    /// cancellation stays responsive, spinning the last millisecond); the CPU clock jumps there at once.
    /// </summary>
    public void WaitUntil(double timeS, CancellationToken cancel)
    {
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            double left = timeS - NowS;
            if (left <= 0) return;
            if (Kind == EngineClockKind.Cpu)
            {
                _skipped += left;
                return;
            }
            if (left > 0.002) Thread.Sleep(TimeSpan.FromSeconds(Math.Min(left - 0.001, 0.05)));
            else Thread.Yield();
        }
    }
}

/// <summary>CPU time of the calling thread (Linux clock_gettime with CLOCK_THREAD_CPUTIME_ID).</summary>
public static class ThreadCpuTime
{
    private const int ThreadCpuClock = 3;   // CLOCK_THREAD_CPUTIME_ID

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec ts);

    public static bool Supported => OperatingSystem.IsLinux();

    public static double Seconds() =>
        ClockGetTime(ThreadCpuClock, out var ts) == 0 ? ts.Seconds + ts.Nanoseconds / 1e9 : throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
}
