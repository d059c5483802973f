[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("RLMServing.Tests")]
// rlms serve's digital twin drives the replica engine live (src/RLMServing.Serve/Engine/LiveReplica.cs).
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("RLMServing.Serve")]
