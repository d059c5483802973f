using RLMServing.Catalog;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace RLMServing.IO.Catalog;

/// <summary>
/// Reads the GPU and model catalog from YAML files: the bundled <c>catalog/</c> folder beside the binary, then any
/// folders or files the user adds (later entries replace earlier ones with the same name).
/// </summary>
public static class CatalogLoader
{
    /// <summary>Environment variable with extra catalog folders or files, separated by the path separator.</summary>
    public const string EnvironmentVariable = "RLMS_CATALOG";

    public static string BundledDirectory => Path.Combine(AppContext.BaseDirectory, "catalog");

    public static HardwareCatalog LoadDefault(IEnumerable<string>? extraPaths = null)
    {
        var paths = new List<string> { BundledDirectory };
        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env)) paths.AddRange(env.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        if (extraPaths is not null) paths.AddRange(extraPaths);
        return Load(paths);
    }

    public static HardwareCatalog Load(IEnumerable<string> paths)
    {
        var gpus = new Dictionary<string, GpuSpec>(StringComparer.OrdinalIgnoreCase);
        var models = new Dictionary<string, ModelArchitecture>(StringComparer.OrdinalIgnoreCase);
        foreach (var file in paths.SelectMany(Expand))
        {
            var doc = Parse(file);
            foreach (var (g, i) in (doc.Gpus ?? []).Select((g, i) => (g, i))) { var spec = g.ToSpec(file, i); gpus[spec.Name] = spec; }
            foreach (var (m, i) in (doc.Models ?? []).Select((m, i) => (m, i))) { var arch = m.ToArchitecture(file, i); models[arch.Name] = arch; }
        }
        if (gpus.Count == 0 || models.Count == 0)
            throw new UserInputException($"catalog: no GPUs or models found in {string.Join(", ", paths)}");
        return new HardwareCatalog(gpus.Values, models.Values);
    }

    private static IEnumerable<string> Expand(string path)
    {
        if (Directory.Exists(path))
            return Directory.EnumerateFiles(path, "*.yaml").Concat(Directory.EnumerateFiles(path, "*.yml")).Order(StringComparer.Ordinal);
        if (File.Exists(path)) return [path];
        throw new UserInputException($"{path}: catalog file or folder not found");
    }

    private static CatalogDocument Parse(string file) => Parse<CatalogDocument>(file);

    /// <summary>Reads a catalog-style YAML file (snake_case keys) into <typeparamref name="T"/>; errors name the file and line.</summary>
    internal static T Parse<T>(string file) where T : new()
    {
        var text = Files.InputFile.ReadAllText(file);
        Scenarios.YamlGuard.Check(text, file);
        var deserializer = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build();
        try
        {
            using var reader = new StringReader(text);
            return deserializer.Deserialize<T>(reader) ?? new T();
        }
        catch (YamlException e)
        {
            throw new UserInputException($"{file}: line {e.Start.Line}: {Innermost(e).Message}", e);
        }
        catch (InvalidOperationException e)
        {
            throw new UserInputException($"{file}: malformed YAML (unclosed bracket or quote?)", e);
        }
    }

    private static Exception Innermost(Exception e) => e.InnerException is null ? e : Innermost(e.InnerException);

    private sealed class CatalogDocument
    {
        public List<GpuEntry>? Gpus { get; set; }
        public List<ModelEntry>? Models { get; set; }
    }

    private sealed class GpuEntry
    {
        public string? Name { get; set; }
        public double MemoryGib { get; set; }
        public double MemoryBandwidthGbps { get; set; }
        public double Bf16Tflops { get; set; }
        public double Fp16Tflops { get; set; }
        public double Fp32Tflops { get; set; }
        public string? Interconnect { get; set; }
        public double InterconnectBandwidthGbps { get; set; }
        public List<string>? Aliases { get; set; }

        public GpuSpec ToSpec(string file, int index)
        {
            var where = $"{file}: gpus[{index}]";
            if (string.IsNullOrWhiteSpace(Name)) throw new UserInputException($"{where}.name: missing");
            Positive(where, "memory_gib", MemoryGib);
            Positive(where, "memory_bandwidth_gbps", MemoryBandwidthGbps);
            Positive(where, "bf16_tflops", Bf16Tflops);
            return new GpuSpec(Name, MemoryGib, MemoryBandwidthGbps, Bf16Tflops,
                Fp16Tflops > 0 ? Fp16Tflops : Bf16Tflops, Fp32Tflops > 0 ? Fp32Tflops : Bf16Tflops / 16,
                Interconnect ?? "unknown", InterconnectBandwidthGbps, Aliases ?? []);
        }
    }

    private sealed class ModelEntry
    {
        public string? Name { get; set; }
        public string? HfId { get; set; }
        public int Layers { get; set; }
        public int Hidden { get; set; }
        public int Heads { get; set; }
        public int KvHeads { get; set; }
        public int HeadDim { get; set; }
        public int Ffn { get; set; }
        public int Vocab { get; set; }
        public string? Dtype { get; set; }
        public bool Reasoning { get; set; }
        public string? Mlp { get; set; }
        public bool QkvBias { get; set; }
        public bool TieEmbeddings { get; set; }
        public int MaxContext { get; set; }
        public int Experts { get; set; }
        public int ExpertsPerToken { get; set; }
        public int ExpertFfn { get; set; }

        public ModelArchitecture ToArchitecture(string file, int index)
        {
            var where = $"{file}: models[{index}]";
            if (string.IsNullOrWhiteSpace(Name)) throw new UserInputException($"{where}.name: missing");
            where = $"{file}: model '{Name}'";
            Positive(where, "layers", Layers);
            Positive(where, "hidden", Hidden);
            Positive(where, "heads", Heads);
            Positive(where, "ffn", Ffn);
            Positive(where, "vocab", Vocab);
            int kv = KvHeads == 0 ? Heads : KvHeads;
            if (kv < 0 || Heads % kv != 0) throw new UserInputException($"{where}: kv_heads {kv} must divide heads {Heads}");
            var dtype = Dtype ?? "bf16";
            try { ModelArchitecture.BytesOf(dtype); }
            catch (ArgumentException e) { throw new UserInputException($"{where}: dtype: {e.Message}"); }
            var mlp = Mlp ?? "gated";
            if (mlp is not ("gated" or "plain")) throw new UserInputException($"{where}: mlp must be gated or plain, not '{mlp}'");
            if (Experts < 0 || (Experts > 0 && (ExpertsPerToken <= 0 || ExpertsPerToken > Experts || ExpertFfn <= 0)))
                throw new UserInputException($"{where}: experts: a mixture of experts needs experts > 0, 0 < experts_per_token <= experts and expert_ffn > 0");
            return new ModelArchitecture(Name, HfId ?? "none", Layers, Hidden, Heads, kv, HeadDim > 0 ? HeadDim : Hidden / Heads,
                Ffn, Vocab, dtype, Reasoning, mlp, QkvBias, TieEmbeddings, MaxContext > 0 ? MaxContext : 131072)
            { Experts = Experts, ExpertsPerToken = ExpertsPerToken, ExpertFfn = ExpertFfn };
        }
    }

    private static void Positive(string where, string key, double value)
    {
        if (!(value > 0)) throw new UserInputException($"{where}.{key}: must be a positive number, got {value}");
    }
}
