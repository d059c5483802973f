using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace RLMServing.Cli;

/// <summary>
/// The progress every long verb shows, the same way: a Spectre.Console bar with the elapsed time and an ETA on a
/// terminal, a line per tenth of the work on stderr when the output goes to a log (batch schedulers, CI), nothing
/// with <c>--quiet</c>.
/// </summary>
internal static class ProgressDisplay
{
    public static T Run<T>(string description, bool quiet, Func<ProgressSink?, T> work)
    {
        if (quiet) return work(null);
        if (!AnsiConsole.Profile.Capabilities.Interactive) return work(new LineSink(description));
        T result = default!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(),
                new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(description), maxValue: 1.0);
                result = work(new BarSink(task, description));
                task.Value = 1.0;
            });
        return result;
    }

    private sealed class BarSink(ProgressTask task, string description) : ProgressSink
    {
        public override void Report(double fraction) => task.Value = Math.Clamp(fraction, 0, 1);
        public override void Status(string status) => task.Description = Markup.Escape($"{description}: {status}");
    }

    private sealed class LineSink(string description) : ProgressSink
    {
        private readonly Stopwatch _sw = Stopwatch.StartNew();
        private readonly Lock _gate = new();
        private string? _status;
        private int _tenths;

        public override void Report(double fraction)
        {
            lock (_gate)
            {
                int tenths = (int)Math.Floor(Math.Clamp(fraction, 0, 1) * 10);
                if (tenths <= _tenths) return;
                _tenths = tenths;
                double elapsed = _sw.Elapsed.TotalSeconds, eta = fraction > 0 ? elapsed / fraction * (1 - fraction) : 0;
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{description}: {tenths * 10}% done, {elapsed:F0} s elapsed, ETA {eta:F0} s{(_status is null ? "" : $" ({_status})")}"));
            }
        }

        public override void Status(string status)
        {
            lock (_gate) _status = status;
        }
    }
}

/// <summary>Where work reports how far it is (a fraction of the whole) and, optionally, what it is doing now.</summary>
internal abstract class ProgressSink : IProgress<double>
{
    public abstract void Report(double fraction);

    public abstract void Status(string status);
}
