using System.Globalization;
using Spectre.Console;

namespace RLMServing.Cli;

/// <summary>
/// How wide tables are drawn: to a pipe or a file at full width (a log takes long lines; wrapping every cell at
/// 80 columns makes a table unreadable), on a terminal at its width or at <c>COLUMNS</c> when that is set.
/// </summary>
internal static class ConsoleWidth
{
    /// <summary>The width used when stdout is not a terminal: wider than any table rlms draws, so none wraps.</summary>
    public const int Redirected = 4096;

    public static void Apply()
    {
        if (Console.IsOutputRedirected)
        {
            AnsiConsole.Profile.Width = Redirected;
            return;
        }
        if (int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), NumberStyles.None, CultureInfo.InvariantCulture, out int columns) && columns > 0)
            AnsiConsole.Profile.Width = columns;
    }
}
