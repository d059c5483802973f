if (args.Length > 0 && args[0] == "harness-overhead") return RLMServing.Benchmarks.HarnessOverhead.Run(args);
Console.WriteLine("benchmarks: see docs/performance.md");
return 0;
