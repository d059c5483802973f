using System.Reflection;
using CommandLine;
using CommandLine.Text;

namespace RLMServing.Cli;

/// <summary>One line for a command-line mistake: the option, the value given and what it takes.</summary>
internal static class ArgumentErrors
{
    public static string Describe(Error error, string[] args, Type[] verbs)
    {
        string sentence = SentenceBuilder.Create().FormatError(error).TrimEnd('.');
        string verb = args.Length > 0 ? args[0] : "";
        string usage = $"see 'rlms {verb} --help'";
        if (error is not NamedError named) return $"{sentence}; {usage}";
        string option = named.NameInfo.LongName.Length > 0 ? "--" + named.NameInfo.LongName : "-" + named.NameInfo.ShortName;
        if (error is BadFormatConversionError)
        {
            var type = OptionType(verbs, verb, named.NameInfo.LongName);
            string given = ValueAfter(args, option) is { } v ? $" {RLMServing.IO.Files.ErrorText.Clip(v)}" : "";
            return $"{option}{given}: expected {Expected(type)}";
        }
        return $"{option}: {sentence}; {usage}";
    }

    private static Type? OptionType(Type[] verbs, string verb, string longName)
    {
        var verbType = verbs.FirstOrDefault(t => t.GetCustomAttribute<VerbAttribute>()?.Name == verb);
        var property = verbType?.GetProperties().FirstOrDefault(p => p.GetCustomAttribute<OptionAttribute>()?.LongName == longName);
        return property is null ? null : Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
    }

    private static string Expected(Type? type) => type switch
    {
        _ when type == typeof(int) => $"a whole number from {int.MinValue:N0} to {int.MaxValue:N0}",
        _ when type == typeof(long) => "a whole number",
        _ when type == typeof(double) => "a number",
        _ when type == typeof(bool) => "no value (a switch)",
        _ when type is { IsEnum: true } => "one of " + string.Join(", ", Enum.GetNames(type).Select(n => n.ToLowerInvariant())),
        _ => "a value of another form",
    };

    private static string? ValueAfter(string[] args, string option)
    {
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == option) return i + 1 < args.Length ? args[i + 1] : null;
            if (args[i].StartsWith(option + "=", StringComparison.Ordinal)) return args[i][(option.Length + 1)..];
        }
        return null;
    }
}
