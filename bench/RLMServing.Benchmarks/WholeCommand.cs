using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace RLMServing.Benchmarks;

/// <summary>
/// `whole-command RLMS [--requests N] [--runs R] [--scenario FILE]`: the simulator as a user runs it —
/// `RLMS simulate FILE --set workload.requests=N --quiet --out TEMP`, process start to exit — R times, reporting each
/// run's wall time and CPU time (user + system, from getrusage of the waited-for child, so time spent waiting for a
/// busy machine's CPU is not counted) and the children's peak resident memory. Pin it to one core with taskset, as
/// the numbers in docs/performance.md were: `taskset -c 1 dotnet ...Benchmarks.dll whole-command DIR/rlms`.
/// </summary>
internal static class WholeCommand
{
    public static int Run(string[] args)
    {
        if (args.Length < 2) { Console.Error.WriteLine("usage: whole-command RLMS [--requests N] [--runs R] [--scenario FILE]"); return 2; }
        string rlms = Path.GetFullPath(args[1]);
        int requests = 100_000, runs = 5;
        string scenario = Path.Combine(FindRepo(), "scenarios", "bench-100k.yaml");
        for (int i = 2; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--requests": requests = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--runs": runs = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--scenario": scenario = Path.GetFullPath(args[i + 1]); break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        var outDir = Path.Combine(Path.GetTempPath(), $"rlms-whole-command-{Environment.ProcessId}");
        Console.WriteLine($"{rlms} simulate {scenario} --set workload.requests={requests} --quiet, {runs} runs");
        Console.WriteLine("run   wall_s   cpu_s");
        var walls = new List<double>();
        var cpus = new List<double>();
        try
        {
            for (int run = 1; run <= runs; run++)
            {
                var before = Children();
                var psi = new ProcessStartInfo(rlms) { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var a in new[] { "simulate", scenario, "--set", $"workload.requests={requests}", "--quiet", "--out", outDir }) psi.ArgumentList.Add(a);
                var sw = Stopwatch.StartNew();
                using var p = Process.Start(psi)!;
                var stdout = p.StandardOutput.ReadToEndAsync();
                var stderr = p.StandardError.ReadToEndAsync();
                p.WaitForExit();
                double wall = sw.Elapsed.TotalSeconds;
                if (p.ExitCode != 0) { Console.Error.WriteLine($"rlms exited {p.ExitCode}: {stderr.Result}"); return 1; }
                var after = Children();
                double cpu = after.CpuS - before.CpuS;
                walls.Add(wall);
                cpus.Add(cpu);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{run,3}   {wall,6:F2}   {cpu,5:F2}"));
            }
        }
        finally
        {
            if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
        }
        walls.Sort();
        cpus.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"median wall {walls[walls.Count / 2]:F2} s, median CPU {cpus[cpus.Count / 2]:F2} s, peak resident memory {Children().MaxRssKb / 1024.0:F0} MB"));
        return 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeVal { public long Sec; public long Usec; }

    [StructLayout(LayoutKind.Sequential)]
    private struct RUsage
    {
        public TimeVal UTime, STime;
        public long MaxRss, IxRss, IdRss, IsRss, MinFlt, MajFlt, NSwap, InBlock, OuBlock, MsgSnd, MsgRcv, NSignals, NVcsw, NIvcsw;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int getrusage(int who, out RUsage usage);

    /// <summary>CPU seconds and peak resident memory (KiB, Linux) of this process's waited-for children so far.</summary>
    private static (double CpuS, long MaxRssKb) Children()
    {
        const int RusageChildren = -1;
        if (getrusage(RusageChildren, out var u) != 0) throw new InvalidOperationException($"getrusage failed: errno {Marshal.GetLastWin32Error()}");
        return (u.UTime.Sec + u.UTime.Usec / 1e6 + u.STime.Sec + u.STime.Usec / 1e6, u.MaxRss);
    }

    private static string FindRepo()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "RLMServing.sln"))) return d.FullName;
        return Directory.GetCurrentDirectory();
    }
}
