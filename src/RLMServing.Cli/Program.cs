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
            var parser = new Parser(s => { s.HelpWriter = Console.Error; s.CaseInsensitiveEnumValues = true; s.AutoVersion = true; s.AllowMultiInstance = true; });
            var parsed = parser.ParseArguments(args, verbs);
            if (parsed is NotParsed<object> notParsed)
                return notParsed.Errors.All(e => e is HelpRequestedError or HelpVerbRequestedError or VersionRequestedError) ? 0 : UserError;
            try
            {
                return ((ICommand)((Parsed<object>)parsed).Value).Run();
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
