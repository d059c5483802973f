// Benchmark modes are chosen by the first argument; each mode lives in its own file.
if (args is ["trace-import", ..]) return RLMServing.Benchmarks.TraceImportBenchmark.Run(args[1..]);
Console.WriteLine("benchmarks: see docs/performance.md");
return 0;
