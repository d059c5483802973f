using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("RLMServing.Tests")]
