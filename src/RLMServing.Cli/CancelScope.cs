using System.Runtime.InteropServices;
using RLMServing.IO.Results;

namespace RLMServing.Cli;

/// <summary>
/// What Ctrl-C (SIGINT) and SIGTERM do, the same for every verb. A verb that checks <see cref="Token"/> (replay,
/// profile) stops at its next step and says what it kept; for the others the interrupt removes this run's temporary
/// files and the folders it created, releases its folder locks, says what was kept (<see cref="Kept"/>) and exits
/// with 130 at once. A second interrupt always exits at once.
/// </summary>
internal sealed class CancelScope : IDisposable
{
    public const int InterruptedExitCode = 130;

    private readonly CancellationTokenSource _cts = new();
    private readonly bool _cooperative;
    private readonly PosixSignalRegistration? _term;
    private int _signals;

    private CancelScope(bool cooperative)
    {
        _cooperative = cooperative;
        Console.CancelKeyPress += OnCancelKey;
        if (!OperatingSystem.IsWindows()) _term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnTerm);
    }

    /// <summary>For a verb whose work cannot stop part way: an interrupt cleans up and exits.</summary>
    public static CancelScope Start() => new(cooperative: false);

    /// <summary>For a verb that checks <see cref="Token"/> and winds down itself.</summary>
    public static CancelScope StartCooperative() => new(cooperative: true);

    public CancellationToken Token => _cts.Token;

    /// <summary>What an interrupt now would leave behind, said on the way out ("nothing was written to DIR").</summary>
    public string Kept { get; set; } = "nothing was written";

    private void OnCancelKey(object? sender, ConsoleCancelEventArgs e)
    {
        e.Cancel = true;
        Interrupt();
    }

    private void OnTerm(PosixSignalContext context)
    {
        context.Cancel = true;
        Interrupt();
    }

    private void Interrupt()
    {
        if (_cooperative && Interlocked.Increment(ref _signals) == 1)
        {
            _cts.Cancel();
            return;
        }
        int removed = TempFiles.RemoveAllLive();
        FolderLock.ReleaseAll();
        Console.Error.WriteLine($"interrupted: {(removed > 0 ? $"{removed} temporary file(s) removed; " : "")}{Kept}");
        Environment.Exit(InterruptedExitCode);
    }

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancelKey;
        _term?.Dispose();
        _cts.Dispose();
    }
}
