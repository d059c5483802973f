using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace RLMServing.IO.Scenarios;

/// <summary>
/// Reads a YAML document's events once, without building it, and refuses what would make building it unbounded:
/// nesting deeper than <see cref="MaxDepth"/> (the tree builders recurse, so a deep document overflows the stack) and
/// more than <see cref="MaxNodes"/> nodes once aliases are expanded (a few hundred bytes of nested aliases, the
/// "billion laughs", stand for billions of nodes). Malformed YAML is one error with its line.
/// </summary>
public static class YamlGuard
{
    /// <summary>Deepest nesting of mappings and lists accepted.</summary>
    public const int MaxDepth = 64;

    /// <summary>Most nodes (scalars, mappings, lists) a document may stand for with every alias expanded.</summary>
    public const long MaxNodes = 1_000_000;

    public static void Check(string text, string source)
    {
        var parser = new Parser(new StringReader(text));
        var anchors = new Dictionary<string, long>(StringComparer.Ordinal);
        // One entry per open collection: its anchor and the nodes it holds so far (itself included).
        var open = new Stack<(string? Anchor, long Nodes)>();
        long total = 0;

        void Add(long nodes, Mark at)
        {
            if (open.Count == 0) total = Saturating(total, nodes);
            else { var (a, n) = open.Pop(); open.Push((a, Saturating(n, nodes))); }
            long sum = total;
            foreach (var (_, n) in open) sum = Saturating(sum, n);
            if (sum > MaxNodes)
                throw new UserInputException($"{source}: line {at.Line}: the document stands for more than {MaxNodes:N0} YAML nodes with its aliases expanded (docs/limits.md)");
        }

        try
        {
            while (parser.MoveNext())
            {
                switch (parser.Current)
                {
                    case Scalar s:
                        if (!s.Anchor.IsEmpty) anchors[s.Anchor.Value] = 1;
                        Add(1, s.Start);
                        break;
                    case AnchorAlias alias:
                        Add(anchors.TryGetValue(alias.Value.Value, out var size) ? size : 1, alias.Start);
                        break;
                    case NodeEvent start and (MappingStart or SequenceStart):
                        if (open.Count >= MaxDepth)
                            throw new UserInputException($"{source}: line {start.Start.Line}: nested deeper than {MaxDepth} levels (docs/limits.md)");
                        open.Push((start.Anchor.IsEmpty ? null : start.Anchor.Value, 1));
                        break;
                    case MappingEnd or SequenceEnd:
                        var (anchor, nodes) = open.Pop();
                        if (anchor is not null) anchors[anchor] = nodes;
                        Add(nodes, parser.Current.Start);
                        break;
                }
            }
        }
        catch (YamlException e)
        {
            throw new UserInputException($"{source}: line {e.Start.Line}: malformed YAML: {Innermost(e).Message}");
        }
        catch (InvalidOperationException)
        {
            var line = parser.Current?.End.Line ?? 0;
            throw new UserInputException($"{source}: line {line}: malformed YAML: unexpected end of a flow collection or scalar (unclosed bracket or quote?)");
        }
    }

    private static long Saturating(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;

    private static Exception Innermost(Exception e) => e.InnerException is null ? e : Innermost(e.InnerException);
}
