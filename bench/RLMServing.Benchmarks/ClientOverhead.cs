using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RLMServing.Bench;

namespace RLMServing.Benchmarks;

/// <summary>
/// What <c>rlms bench</c> itself costs. A server that answers at once runs in a child process pinned to the second
/// core; the client (the real BenchRunner path: HTTP, SSE parsing, per-chunk records) runs pinned to the first.
/// (1) Throughput: streamed requests per second, and per second of the client's CPU time, at --max-concurrency 64.
/// (2) Timestamp error: the server writes its monotonic clock (CLOCK_MONOTONIC, shared by processes) into every chunk
/// just before writing it; the client's timestamp of that chunk minus the stamp is the delay from the server's write
/// to the client's record, for the first chunk (TTFT) and all chunks: the floor (one stream at a time, an idle
/// client), at STREAMS open streams in steady state, and the difference, which is what the open streams add.
/// Usage: client-overhead [REQUESTS] [STREAMS] [kestrel|raw]. With `raw` the server is a bare socket loop that writes
/// each pre-formatted chunk with one send() right after stamping it, so the delay measured is the loopback plus the
/// client, not Kestrel's write path on the server's core.
/// </summary>
public static class ClientOverhead
{
    public static int Run(string[] args)
    {
        int requests = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20_000;
        int streams = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1_000;
        bool raw = args.Length > 3 && args[3] == "raw";
        bool pinned = Environment.ProcessorCount >= 2 && OperatingSystem.IsLinux();
        if (pinned && OperatingSystem.IsLinux()) Process.GetCurrentProcess().ProcessorAffinity = 1;
        using var server = StartServer(pinned, raw);
        string baseUrl = server.StandardOutput.ReadLine() ?? throw new InvalidOperationException("the server did not start");
        try
        {
            Console.WriteLine($"client on core 0, instant {(raw ? "raw-socket" : "Kestrel")} server on core 1: {pinned}; server {baseUrl}; " +
                $"client sees {Environment.ProcessorCount} processors, socket completions inline: {Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") == "1"}");
            Throughput(baseUrl, Math.Min(2_000, requests), report: false);   // JIT and connection warm-up
            Throughput(baseUrl, requests, report: true);
            // The floor: one stream at a time, so every chunk finds the client idle; what remains is the server's
            // send, the loopback and the wake-up of the client's core, plus the client's own path for one event.
            var floor = Floor(baseUrl, requests: 40, chunks: 5);
            Print("floor, 1 stream at a time", floor);
            var load = Steady(baseUrl, streams, requests: 4 * streams, chunks: 20);
            Print($"{streams} concurrent streams, steady state", load);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"added by {streams} concurrent streams (TTFT delay minus the floor's): median {Q(load.Ttft, 0.5) - Q(floor.Ttft, 0.5):F3} ms, " +
                $"p90 {Q(load.Ttft, 0.9) - Q(floor.Ttft, 0.9):F3} ms; all chunks median {Q(load.All, 0.5) - Q(floor.All, 0.5):F3} ms"));
        }
        finally
        {
            server.Kill();
        }
        return 0;
    }

    private static BenchOptions Options(string baseUrl, int prompts) => new()
    {
        BaseUrl = baseUrl,
        Model = "instant",
        NumPrompts = prompts,
        InputLen = 4,
        OutputLen = 4,
        ReadyCheckTimeoutSec = 0,
        ResultDir = Path.GetTempPath(),
    };

    private static void Throughput(string baseUrl, int n, bool report)
    {
        var options = Options(baseUrl, n) with { MaxConcurrency = 64 };
        using var runner = new BenchRunner(options);
        var (run, wall, cpuS) = Measure(runner, options);
        int ok = run.Outcomes.Count(o => o.IsCompleted);
        if (!report) return;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"throughput: {n} streamed requests (4 chunks each + usage), max-concurrency 64: {ok} completed in {wall:F2} s = {ok / wall:F0} req/s; " +
            $"client CPU {cpuS:F2} s = {ok / cpuS:F0} req per CPU-second"));
    }

    /// <summary>Delays from the server's stamp to the client's timestamp, in ms, of one delay run, and the open streams they met.</summary>
    private sealed record DelayRun(List<double> Ttft, List<double> All, double MeanOpenStreams, double Busy, int Completed, int Requests);

    /// <summary>The server paces a delay run's chunks this far apart.</summary>
    private const double GapS = 0.050;

    /// <summary>
    /// The floor: <paramref name="requests"/> requests one after another, so every chunk finds the client idle.
    /// </summary>
    private static DelayRun Floor(string baseUrl, int requests, int chunks)
    {
        var options = Options(baseUrl, requests) with { OutputLen = chunks, MaxConcurrency = 1 };
        return Delay(options, measureFromS: 0, measureToS: double.PositiveInfinity);
    }

    /// <summary>
    /// Steady state at <paramref name="streams"/> open streams: Poisson arrivals at streams / (a request's length), so
    /// that many are open at once on average once the first request's length has passed; a fixed number in flight would
    /// instead end and replace whole waves together. Only requests sent after the ramp-up and done before the
    /// ramp-down count.
    /// </summary>
    private static DelayRun Steady(string baseUrl, int streams, int requests, int chunks)
    {
        // A request lasts its chunks plus the server's spread of streams over one gap (half a gap on average).
        double lengthS = (chunks + 0.5) * GapS;
        var options = Options(baseUrl, requests) with { OutputLen = chunks, RequestRate = streams / lengthS };
        double lastSendS = requests / options.RequestRate;
        return Delay(options, measureFromS: lengthS + 2 * GapS, measureToS: lastSendS - lengthS - 2 * GapS);
    }

    private static DelayRun Delay(BenchOptions options, double measureFromS, double measureToS)
    {
        using var runner = new BenchRunner(options);
        var (run, wall, cpuS) = Measure(runner, options);
        long t0 = runner.Counters.StartTimestamp;
        var done = run.Outcomes.Where(o => o.IsCompleted).ToList();
        var sends = done.Select(o => o.SendS).Order().ToList();
        var ends = done.Select(o => o.EndS!.Value).Order().ToList();
        int OpenAt(double t) => Below(sends, t) - Below(ends, t);
        var result = new DelayRun([], [], 0, cpuS / wall, done.Count, options.NumPrompts);
        double open = 0;
        foreach (var o in done.Where(o => o.SendS >= measureFromS && o.SendS <= measureToS))
        {
            var stamps = o.OutputText.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            for (int i = 0; i < o.Chunks.Count && i < stamps.Length; i++)
            {
                // TimeS is seconds from t0 on the client's monotonic clock; the stamp is the server's, same clock.
                double ms = (o.Chunks[i].TimeS * Stopwatch.Frequency - (stamps[i] - t0)) * 1000.0 / Stopwatch.Frequency;
                result.All.Add(ms);
                if (i == 0)
                {
                    result.Ttft.Add(ms);
                    open += OpenAt(o.Chunks[i].TimeS);
                }
            }
        }
        result.Ttft.Sort();
        result.All.Sort();
        return result with { MeanOpenStreams = result.Ttft.Count == 0 ? 0 : open / result.Ttft.Count };
    }

    /// <summary>How many of the sorted <paramref name="xs"/> are at or below <paramref name="t"/>.</summary>
    private static int Below(List<double> xs, double t)
    {
        int i = xs.BinarySearch(t);
        if (i < 0) return ~i;
        while (i < xs.Count && xs[i] <= t) i++;
        return i;
    }

    private static double Q(List<double> xs, double q) => xs.Count == 0 ? double.NaN : xs[Math.Min(xs.Count - 1, (int)(q * xs.Count))];

    private static void Print(string what, DelayRun d) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{what} ({d.Completed} of {d.Requests} completed; {d.Ttft.Count} measured, meeting {d.MeanOpenStreams:F0} open streams on average): " +
        $"TTFT delay median {Q(d.Ttft, 0.5):F3} ms, p90 {Q(d.Ttft, 0.9):F3}, p99 {Q(d.Ttft, 0.99):F3}; " +
        $"all {d.All.Count} chunks median {Q(d.All, 0.5):F3} ms, p99 {Q(d.All, 0.99):F3}; client core busy {d.Busy:P0}"));

    /// <summary>One run of the client: what it measured, its wall time and the process's CPU time over it.</summary>
    private static (BenchRun Run, double WallS, double CpuS) Measure(BenchRunner runner, BenchOptions options)
    {
        var prompts = BenchDatasets.Load(options);
        GC.Collect();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        var run = runner.RunAsync(prompts).GetAwaiter().GetResult();
        return (run, sw.Elapsed.TotalSeconds, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds);
    }

    private static Process StartServer(bool pinned, bool raw)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") psi.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        psi.ArgumentList.Add(raw ? "client-overhead-raw-server" : "client-overhead-server");
        // The server stays the same whatever socket settings the client is tried with.
        psi.Environment.Remove("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS");
        var p = Process.Start(psi)!;
        if (pinned && OperatingSystem.IsLinux()) p.ProcessorAffinity = 2;
        return p;
    }

    /// <summary>The instant server: 4 answer chunks (or OutputLen chunks 50 ms apart when max_completion_tokens &gt; 4), each carrying its write time.</summary>
    public static int Serve()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        var app = builder.Build();
        app.MapPost("/v1/chat/completions", async (HttpContext ctx) =>
        {
            using var doc = await System.Text.Json.JsonDocument.ParseAsync(ctx.Request.Body);
            int chunks = doc.RootElement.GetProperty("max_completion_tokens").GetInt32();
            double gapMs = chunks > 4 ? 50 : 0;
            // Streams are spread over the 50 ms period by request id (the prompt's first word), as independent
            // requests are, rather than all writing in the same instant.
            string prompt = doc.RootElement.GetProperty("messages")[0].GetProperty("content").GetString()!;
            int id = int.Parse(prompt.AsSpan(0, prompt.IndexOf(' ') is var sp && sp > 0 ? sp : prompt.Length), CultureInfo.InvariantCulture);
            long start = Stopwatch.GetTimestamp();
            double offsetMs = gapMs > 0 ? id % 1000 * gapMs / 1000 : 0;
            ctx.Response.ContentType = "text/event-stream";
            await ctx.Response.StartAsync();
            for (int i = 0; i < chunks; i++)
            {
                if (gapMs > 0)
                {
                    double dueMs = offsetMs + (i + 1) * gapMs - Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    if (dueMs > 0) await Task.Delay(TimeSpan.FromMilliseconds(dueMs));
                }
                string stamp = Stopwatch.GetTimestamp().ToString(CultureInfo.InvariantCulture);
                await ctx.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(
                    $"data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{stamp};\"}},\"finish_reason\":null}}]}}\n\n"));
                await ctx.Response.Body.FlushAsync();
            }
            await ctx.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(
                $"data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":4,\"completion_tokens\":{chunks}}}}}\n\ndata: [DONE]\n\n"));
        });
        app.StartAsync().GetAwaiter().GetResult();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Console.WriteLine(address.TrimEnd('/'));
        Console.Out.Flush();
        app.WaitForShutdownAsync().GetAwaiter().GetResult();
        return 0;
    }

    /// <summary>
    /// The instant server without a web framework: HTTP/1.1 keep-alive on a bare socket, chunked transfer, each SSE event
    /// formatted, stamped and handed to the kernel with one send(). Same chunks and pacing as <see cref="Serve"/>.
    /// </summary>
    public static int ServeRaw()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start(4096);
        Console.WriteLine($"http://127.0.0.1:{((System.Net.IPEndPoint)listener.LocalEndpoint).Port}");
        Console.Out.Flush();
        while (true)
        {
            var socket = listener.AcceptSocket();
            socket.NoDelay = true;
            _ = Task.Run(() => RawConnection(socket));
        }
    }

    private const int StampDigits = 19;

    private static async Task RawConnection(System.Net.Sockets.Socket socket)
    {
        var buffer = new byte[1 << 16];
        string evt = $"data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{new string('0', StampDigits)};\"}},\"finish_reason\":null}}]}}\n\n";
        string head = $"{evt.Length:x}\r\n";
        byte[] chunk = Encoding.ASCII.GetBytes($"{head}{evt}\r\n");
        int stampAt = head.Length + evt.IndexOf('0', evt.IndexOf("content", StringComparison.Ordinal));
        int have = 0;
        try
        {
            while (true)
            {
                int headerEnd;
                while ((headerEnd = buffer.AsSpan(0, have).IndexOf("\r\n\r\n"u8)) < 0)
                {
                    int n = await socket.ReceiveAsync(buffer.AsMemory(have));
                    if (n == 0) return;
                    have += n;
                }
                string headers = Encoding.ASCII.GetString(buffer, 0, headerEnd);
                int length = 0;
                foreach (var line in headers.Split("\r\n"))
                    if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) length = int.Parse(line.AsSpan(15).Trim(), CultureInfo.InvariantCulture);
                int total = headerEnd + 4 + length;
                while (have < total)
                {
                    int n = await socket.ReceiveAsync(buffer.AsMemory(have));
                    if (n == 0) return;
                    have += n;
                }
                int chunks, id;
                using (var doc = System.Text.Json.JsonDocument.Parse(buffer.AsMemory(headerEnd + 4, length)))
                {
                    chunks = doc.RootElement.GetProperty("max_completion_tokens").GetInt32();
                    string prompt = doc.RootElement.GetProperty("messages")[0].GetProperty("content").GetString()!;
                    id = int.Parse(prompt.AsSpan(0, prompt.IndexOf(' ') is var sp && sp > 0 ? sp : prompt.Length), CultureInfo.InvariantCulture);
                }
                Buffer.BlockCopy(buffer, total, buffer, 0, have - total);
                have -= total;

                double gapMs = chunks > 4 ? 50 : 0;
                long start = Stopwatch.GetTimestamp();
                double offsetMs = gapMs > 0 ? id % 1000 * gapMs / 1000 : 0;
                await socket.SendAsync("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"u8.ToArray());
                for (int i = 0; i < chunks; i++)
                {
                    if (gapMs > 0)
                    {
                        double dueMs = offsetMs + (i + 1) * gapMs - Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                        if (dueMs > 0) await Task.Delay(TimeSpan.FromMilliseconds(dueMs));
                    }
                    // The stamp goes into a fixed-width slot of the ready-made chunk, so nothing but the send follows it.
                    long stamp = Stopwatch.GetTimestamp();
                    System.Buffers.Text.Utf8Formatter.TryFormat(stamp, chunk.AsSpan(stampAt, StampDigits), out _, new System.Buffers.StandardFormat('D', StampDigits));
                    await socket.SendAsync(chunk);
                }
                string end = $"data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":4,\"completion_tokens\":{chunks}}}}}\n\ndata: [DONE]\n\n";
                await socket.SendAsync(Encoding.ASCII.GetBytes($"{end.Length:x}\r\n{end}\r\n0\r\n\r\n"));
            }
        }
        catch (System.Net.Sockets.SocketException)
        {
            // The client closed the connection.
        }
        finally
        {
            socket.Dispose();
        }
    }
}
