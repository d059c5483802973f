[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("RLMServing.Tests")]
