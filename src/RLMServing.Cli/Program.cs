using CommandLine;
using RLMServing.Cli;
using RLMServing;
using RLMServing.Cli.Commands;

// Every verb is an options class implementing ICommand; add new verbs to this list.
Type[] verbs =
[
    typeof(SimulateCommand),
    typeof(TraceCommand),
    typeof(ProfileCommand),
    typeof(ValidateCommand),
    typeof(CalibrateCommand),
    typeof(SweepCommand),
    typeof(ReplayCommand),
    typeof(ReportCommand),
    typeof(ServeCommand),
    typeof(BenchCommand),
    typeof(StudyCommand),
];

return RLMServing.Cli.CliHost.Run(SimulateCommand.NormalizeReportOption(args), verbs);

namespace RLMServing.Cli
{
    /// <summary>A parsed verb that knows how to run itself; returns the process exit code.</summary>
    public interface ICommand
    {
        int Run();
    }

    public static class CliHost
    {
        public const int UserError = 2;

        public static int Run(string[] args, Type[] verbs)
        {
            // Help is printed as the parser writes it; a mistake in the arguments is one line, not the whole help.
            var help = new StringWriter();
            var parser = new Parser(s => { s.HelpWriter = help; s.CaseInsensitiveEnumValues = true; s.AutoVersion = true; s.AllowMultiInstance = true; });
            var parsed = parser.ParseArguments(args, verbs);
            if (parsed is NotParsed<object> notParsed)
            {
                var errors = notParsed.Errors.ToList();
                if (errors.All(e => e is HelpRequestedError or HelpVerbRequestedError or VersionRequestedError))
                {
                    Console.Error.Write(help.ToString());
                    return 0;
                }
                if (errors.Any(e => e is NoVerbSelectedError or BadVerbSelectedError))
                {
                    Console.Error.Write(help.ToString());
                    return UserError;
                }
                Console.Error.WriteLine($"error: {ArgumentErrors.Describe(errors[0], args, verbs)}");
                return UserError;
            }
            ConsoleWidth.Apply();
            try
            {
                return ((ICommand)((Parsed<object>)parsed).Value).Run();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A write that failed after the checks (a disk that filled up): what this run started is removed by
                // the writers; the user gets the system's reason in one line.
                Console.Error.WriteLine($"error: {e.Message}");
                return 1;
            }
            catch (UserInputException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return UserError;
            }
            catch (RLMServing.Catalog.CatalogException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return UserError;
            }
        }
    }
}
