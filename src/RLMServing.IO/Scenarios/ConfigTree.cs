using System.Globalization;
using RLMServing.Catalog;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace RLMServing.IO.Scenarios;

/// <summary>
/// A YAML document as a mutable tree that remembers where each value came from, so that overrides
/// (<c>--set</c>, variants) can be applied before binding and every error can name the file, key and line.
/// </summary>
public abstract class ConfigNode
{
    /// <summary>1-based line in the file, or 0 for a value given on the command line or by a variant.</summary>
    public int Line { get; init; }

    public static ConfigNode FromYaml(YamlNode node) => node switch
    {
        YamlMappingNode m => new ConfigMap(m.Children.Select(kv => new KeyValuePair<string, ConfigNode>(
            ((YamlScalarNode)kv.Key).Value ?? "", FromYaml(kv.Value))), (int)m.Start.Line),
        YamlSequenceNode s => new ConfigList(s.Children.Select(FromYaml), (int)s.Start.Line),
        YamlScalarNode sc => new ConfigScalar(sc.Value ?? "", sc.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted) { Line = (int)sc.Start.Line },
        _ => throw new UserInputException($"line {node.Start.Line}: unsupported YAML node"),
    };

    /// <summary>Parses one YAML value given as text (a <c>--set</c> right-hand side): scalar, flow map or flow list.</summary>
    public static ConfigNode ParseValue(string text)
    {
        YamlGuard.Check("v: " + text, $"value '{Files.ErrorText.Clip(text)}'");
        var stream = new YamlStream();
        try { stream.Load(new StringReader("v: " + text)); }
        catch (YamlException e) { throw new UserInputException($"cannot parse value '{Files.ErrorText.Clip(text)}': {e.Message}"); }
        var root = (YamlMappingNode)stream.Documents[0].RootNode;
        var node = FromYaml(root.Children[new YamlScalarNode("v")]);
        return StripLines(node);
    }

    private static ConfigNode StripLines(ConfigNode n) => n switch
    {
        ConfigMap m => new ConfigMap(m.Entries.Select(e => new KeyValuePair<string, ConfigNode>(e.Key, StripLines(e.Value))), 0),
        ConfigList l => new ConfigList(l.Items.Select(StripLines), 0),
        ConfigScalar s => new ConfigScalar(s.Value, s.Quoted),
        _ => n,
    };

    public abstract ConfigNode Clone();

    /// <summary>
    /// The node as one line of flow YAML (<c>{dist: lognormal, median: 350}</c>) that <see cref="ParseValue"/> reads
    /// back to the same tree: how sweeps name a value in results and fingerprint a design.
    /// </summary>
    public string ToFlowText() => this switch
    {
        ConfigMap m => "{" + string.Join(", ", m.Entries.Select(e => FlowScalar(e.Key, false) + ": " + e.Value.ToFlowText())) + "}",
        ConfigList l => "[" + string.Join(", ", l.Items.Select(i => i.ToFlowText())) + "]",
        ConfigScalar s => FlowScalar(s.Value, s.Quoted),
        _ => "",
    };

    private static string FlowScalar(string value, bool quoted)
    {
        if (!quoted && value.Length == 0) return "~";
        bool plain = !quoted && value.Trim() == value && value.IndexOfAny(FlowSpecials) < 0
            && (value[0] == '-' ? value.Length > 1 && (char.IsDigit(value[1]) || value[1] == '.') : "?!&*%@`|>'\"".IndexOf(value[0]) < 0);
        return plain ? value : "'" + value.Replace("'", "''") + "'";
    }

    private static readonly char[] FlowSpecials = [',', ':', '{', '}', '[', ']', '#', '\n', '\r'];
}

public sealed class ConfigScalar(string value, bool quoted = false) : ConfigNode
{
    public string Value { get; } = value;
    public bool Quoted { get; } = quoted;
    public bool IsNull => !Quoted && Value is "" or "~" or "null";
    public override ConfigNode Clone() => new ConfigScalar(Value, Quoted) { Line = Line };
}

public sealed class ConfigList : ConfigNode
{
    public ConfigList(IEnumerable<ConfigNode> items, int line) { Items = items.ToList(); Line = line; }
    public List<ConfigNode> Items { get; }
    public override ConfigNode Clone() => new ConfigList(Items.Select(i => i.Clone()), Line);
}

public sealed class ConfigMap : ConfigNode
{
    public ConfigMap(IEnumerable<KeyValuePair<string, ConfigNode>> entries, int line)
    {
        Entries = new List<KeyValuePair<string, ConfigNode>>();
        foreach (var e in entries) Set(e.Key, e.Value);
        Line = line;
    }

    public List<KeyValuePair<string, ConfigNode>> Entries { get; }

    public ConfigNode? Get(string key) => Entries.FirstOrDefault(e => e.Key == key).Value;

    public void Set(string key, ConfigNode value)
    {
        int i = Entries.FindIndex(e => e.Key == key);
        if (i >= 0) Entries[i] = new(key, value);
        else Entries.Add(new(key, value));
    }

    public override ConfigNode Clone() => new ConfigMap(Entries.Select(e => new KeyValuePair<string, ConfigNode>(e.Key, e.Value.Clone())), Line);

    /// <summary>Sets a dotted key (<c>workload.arrival.rate</c>), creating maps on the way.</summary>
    public void SetPath(string dotted, ConfigNode value, string source)
    {
        var parts = dotted.Split('.');
        if (parts.Any(string.IsNullOrWhiteSpace)) throw new UserInputException($"{source}: '{dotted}' is not a dotted key");
        var map = this;
        for (int i = 0; i < parts.Length - 1; i++)
        {
            var child = map.Get(parts[i]);
            if (child is ConfigMap m) { map = m; continue; }
            if (child is not null && child is not ConfigScalar { IsNull: true })
                throw new UserInputException($"{source}: '{string.Join('.', parts[..(i + 1)])}' is not a mapping, cannot set '{dotted}'");
            var created = new ConfigMap([], 0);
            map.Set(parts[i], created);
            map = created;
        }
        map.Set(parts[^1], value);
    }
}

/// <summary>
/// Reads one mapping of a scenario with strict checking: every key must be consumed, and values must have the
/// right type and range. Errors read <c>file: dotted.key: problem (line N)</c>.
/// </summary>
public sealed class MapReader
{
    private readonly ConfigMap _map;
    private readonly HashSet<string> _used = new();

    public MapReader(ConfigMap map, string file, string path)
    {
        _map = map;
        File = file;
        Path = path;
    }

    public string File { get; }
    public string Path { get; }

    public string KeyPath(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    public UserInputException Error(string key, string message, ConfigNode? at = null)
    {
        int line = at?.Line ?? _map.Get(key)?.Line ?? _map.Line;
        return new UserInputException($"{File}: {KeyPath(key)}: {message}{(line > 0 ? $" (line {line})" : "")}");
    }

    public bool Has(string key) => _map.Get(key) is { } n && n is not ConfigScalar { IsNull: true };

    public ConfigNode? Raw(string key)
    {
        _used.Add(key);
        var n = _map.Get(key);
        return n is ConfigScalar { IsNull: true } ? null : n;
    }

    private ConfigScalar? Scalar(string key)
    {
        var n = Raw(key);
        if (n is null) return null;
        return n as ConfigScalar ?? throw Error(key, "expected a single value, not a mapping or list", n);
    }

    public string? String(string key) => Scalar(key)?.Value;

    public string RequiredString(string key) => String(key) ?? throw Error(key, "is required");

    public double? Double(string key)
    {
        var s = Scalar(key);
        if (s is null) return null;
        if (!double.TryParse(s.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
            throw Error(key, $"expected a number, got '{s.Value}'", s);
        return v;
    }

    public int? Int(string key)
    {
        var s = Scalar(key);
        if (s is null) return null;
        if (!long.TryParse(s.Value.Replace("_", ""), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
        {
            if (double.TryParse(s.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue)
                return (int)d;
            throw Error(key, $"expected a whole number, got '{s.Value}'", s);
        }
        if (v is > int.MaxValue or < int.MinValue) throw Error(key, $"{v} is out of range", s);
        return (int)v;
    }

    public bool? Bool(string key)
    {
        var s = Scalar(key);
        if (s is null) return null;
        return s.Value.ToLowerInvariant() switch
        {
            "true" or "yes" or "on" => true,
            "false" or "no" or "off" => false,
            _ => throw Error(key, $"expected true or false, got '{s.Value}'", s),
        };
    }

    public double PositiveDouble(string key, double? fallback = null)
    {
        var v = Double(key) ?? fallback ?? throw Error(key, "is required");
        if (!(v > 0)) throw Error(key, $"must be greater than 0, got {Fmt(v)}");
        return v;
    }

    public double NonNegativeDouble(string key, double fallback)
    {
        var v = Double(key) ?? fallback;
        if (v < 0) throw Error(key, $"must not be negative, got {Fmt(v)}");
        return v;
    }

    public int PositiveInt(string key, int? fallback = null)
    {
        var v = Int(key) ?? fallback ?? throw Error(key, "is required");
        if (v <= 0) throw Error(key, $"must be greater than 0, got {v}");
        return v;
    }

    public double Fraction(string key, double fallback, bool allowZero)
    {
        var v = Double(key) ?? fallback;
        if (v > 1 || v < 0 || (!allowZero && v == 0)) throw Error(key, $"must be in {(allowZero ? "[0, 1]" : "(0, 1]")}, got {Fmt(v)}");
        return v;
    }

    public T Enum<T>(string key, T fallback, params (string Name, T Value)[] names)
    {
        var s = String(key);
        if (s is null) return fallback;
        foreach (var (n, v) in names) if (string.Equals(n, s, StringComparison.OrdinalIgnoreCase)) return v;
        throw Error(key, $"unknown value '{s}'; expected one of {string.Join(", ", names.Select(n => n.Name))}");
    }

    public MapReader? Map(string key)
    {
        var n = Raw(key);
        if (n is null) return null;
        return n is ConfigMap m ? new MapReader(m, File, KeyPath(key)) : throw Error(key, "expected a mapping (key: value pairs)", n);
    }

    public ConfigList? List(string key)
    {
        var n = Raw(key);
        if (n is null) return null;
        return n as ConfigList ?? throw Error(key, "expected a list", n);
    }

    /// <summary>Fails on any key nobody asked for, suggesting the nearest known key.</summary>
    public void Done()
    {
        foreach (var (key, node) in _map.Entries)
        {
            if (_used.Contains(key)) continue;
            var near = NameDistance.Nearest(key, _used, 1);
            throw new UserInputException($"{File}: {KeyPath(key)}: unknown key{(near.Count > 0 ? $"; did you mean '{KeyPath(near[0])}'?" : "")}{(node.Line > 0 ? $" (line {node.Line})" : "")}");
        }
    }

    private static string Fmt(double v) => v.ToString(CultureInfo.InvariantCulture);
}
