using System.Diagnostics;

namespace RLMServing.Tests.Cli;

/// <summary>Runs the real <c>rlms</c> binary (built beside the tests) as a user would, capturing output and exit code.</summary>
public static class RlmsProcess
{
    public sealed record Outcome(int ExitCode, string Stdout, string Stderr);

    public static Outcome Run(params string[] args) => RunIn(Directory.GetCurrentDirectory(), args);

    public static Outcome RunIn(string workingDirectory, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rlms.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException($"rlms {string.Join(' ', args)} did not finish"); }
        return new Outcome(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The repository root (for scenarios/), found by walking up from the test binary.</summary>
    public static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "RLMServing.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("repository root not found");
    }

    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "rlms-tests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return dir;
    }
}
