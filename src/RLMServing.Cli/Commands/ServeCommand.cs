using System.Runtime.InteropServices;
using CommandLine;
using RLMServing.IO.Catalog;
using RLMServing.IO.Runs;
using RLMServing.IO.Scenarios;
using RLMServing.Serve;

namespace RLMServing.Cli.Commands;

[Verb("serve", HelpText = "Serve a scenario over an OpenAI-compatible HTTP API: the digital twin (the simulator in wall-clock time) or the ONNX Runtime engine.")]
public sealed class ServeCommand : ICommand
{
    [Value(0, MetaName = "SCENARIO", Required = true, HelpText = "Scenario YAML file.")]
    public string File { get; set; } = "";

    [Option("engine", Default = "twin", HelpText = "twin (the scenario's scheduler and cost model in wall-clock time) or onnx (real generation on the synthesised model).")]
    public string Engine { get; set; } = "twin";

    [Option("host", Default = "127.0.0.1", HelpText = "Address to listen on.")]
    public string Host { get; set; } = "127.0.0.1";

    [Option("port", Default = 8000, HelpText = "Port to listen on (0: any free port).")]
    public int Port { get; set; } = 8000;

    [Option("served-model-name", HelpText = "Model name clients send (default: the scenario's model).")]
    public string? ServedModelName { get; set; }

    [Option("api-key", HelpText = "Require 'Authorization: Bearer KEY' on /v1 routes.")]
    public string? ApiKey { get; set; }

    [Option("time-scale", Default = 1.0, HelpText = "Twin only: simulated seconds per wall second (10 runs ten times faster than real time).")]
    public double TimeScale { get; set; } = 1.0;

    [Option("record-dir", HelpText = "At shutdown write the server-side requests.parquet, timeseries.parquet and summary.json here.")]
    public string? RecordDir { get; set; }

    [Option("failure-injection-rate", Default = 0.0, HelpText = "Share of requests that fail on purpose (0-1), seeded from the scenario.")]
    public double FailureInjectionRate { get; set; }

    [Option("failure-types", Separator = ',', HelpText = "What an injected failure is: server_error, rate_limit, abort (comma-separated; default all).")]
    public IEnumerable<string> FailureTypes { get; set; } = [];

    [Option("reasoning-field", Default = "reasoning", HelpText = "Chat field for reasoning text: reasoning (vLLM's), reasoning_content (SGLang's, older vLLM) or both.")]
    public string ReasoningField { get; set; } = "reasoning";

    [Option("max-waiting", Default = 1024, HelpText = "Requests that may wait for the scheduler; more get 429.")]
    public int MaxWaiting { get; set; } = 1024;

    [Option("max-model-len", HelpText = "Longest prompt + completion a request may ask for (default: the KV cache's capacity; onnx: 2048, which sizes its KV slots).")]
    public int? MaxModelLen { get; set; }

    [Option("variant", HelpText = "The scenario variant to serve (needed when the file has several).")]
    public string? Variant { get; set; }

    [Option("set", HelpText = "Override a scenario key: dotted.key=value (repeatable).")]
    public IEnumerable<string> Set { get; set; } = [];

    [Option("catalog", HelpText = "Extra catalog folders or files (GPUs, models) added to the bundled catalog.")]
    public IEnumerable<string> Catalog { get; set; } = [];

    [Option("device", Default = "cpu", HelpText = "onnx only: cpu, cuda or cuda:N.")]
    public string Device { get; set; } = "cpu";

    [Option("threads", Default = 0, HelpText = "onnx only: ONNX Runtime intra-op threads (0: the runtime's default).")]
    public int Threads { get; set; }

    public int Run()
    {
        var options = new ServeOptions
        {
            Engine = ServeOptions.ParseEngine(Engine),
            Host = Host,
            Port = Port,
            ServedModelName = ServedModelName,
            ApiKey = ApiKey,
            TimeScale = TimeScale,
            RecordDir = RecordDir,
            FailureInjectionRate = FailureInjectionRate,
            FailureTypes = FailureTypes.Any() ? FailureTypes.Select(ServeOptions.ParseFailureType).Distinct().ToList() : new ServeOptions().FailureTypes,
            ReasoningField = ServeOptions.ParseReasoningField(ReasoningField),
            MaxWaiting = MaxWaiting,
            MaxModelLen = MaxModelLen,
            Device = Device,
            Threads = Threads,
        };
        options.Check();
        if (Engine != "onnx" && (Device != "cpu" || Threads != 0)) throw new UserInputException("--device/--threads: only with --engine onnx");
        var catalog = CatalogLoader.LoadDefault(Catalog);
        var file = ScenarioLoader.Load(File, Set);
        var runs = ScenarioRunner.Prepare(file, catalog);
        PreparedRun run;
        if (Variant is not null)
            run = runs.FirstOrDefault(r => r.Name == Variant)
                ?? throw new UserInputException($"--variant: {Variant} not in {File} (variants: {string.Join(", ", runs.Select(r => r.Name))})");
        else if (runs.Count == 1) run = runs[0];
        else throw new UserInputException($"--variant: {File} has {runs.Count} variants ({string.Join(", ", runs.Select(r => r.Name))}); name the one to serve");
        string command = "rlms serve " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));

        using var stop = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; stop.Cancel(); };
        Console.CancelKeyPress += onCancel;
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
        try
        {
            var host = ServeHost.Create(run, options, file.HasVariants ? run.Name : null, command);
            try
            {
                try { host.StartAsync().GetAwaiter().GetResult(); }
                catch (IOException e) { throw new UserInputException($"--host {Host} --port {Port}: cannot listen ({e.Message})"); }
                Console.Error.WriteLine($"rlms serve: {run.Name} ({options.Engine.ToString().ToLowerInvariant()}, model '{host.ModelName}'" +
                    (options.Engine == ServeEngineKind.Twin ? $", time scale {options.TimeScale:R}" : "") + $") on {host.BaseAddress}; Ctrl-C stops");
                stop.Token.WaitHandle.WaitOne();
                Console.Error.WriteLine("rlms serve: stopping" + (host.TwinMaxLateWallS is > 0.001 and var late
                    ? $" (the host fell behind the twin: tokens came out up to {late * 1000:F0} ms late on the wall clock)" : ""));
            }
            finally
            {
                host.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            if (RecordDir is not null) Console.WriteLine($"results: {RecordDir}");
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
        return 0;
    }
}
