using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("RLMServing.Tests")]
// The study report composes its panels from the same chart helpers.
[assembly: InternalsVisibleTo("RLMServing.Study")]
