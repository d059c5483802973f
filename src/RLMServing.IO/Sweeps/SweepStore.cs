using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using RLMServing.IO.Results;
using RLMServing.Sweeps;

namespace RLMServing.IO.Sweeps;

/// <summary>sweep.json: what a results folder holds, so shards, resumes and merges can check they belong together.</summary>
public sealed record SweepManifest
{
    [JsonPropertyName("schema")] public string Schema { get; init; } = "rlms-sweep/v1";
    [JsonPropertyName("name")] public string Name { get; init; } = "";
    [JsonPropertyName("fingerprint")] public string Fingerprint { get; init; } = "";
    [JsonPropertyName("configurations")] public int Configurations { get; init; }
    [JsonPropertyName("seeds")] public IReadOnlyList<int> Seeds { get; init; } = [];
    [JsonPropertyName("axes")] public IReadOnlyList<string> Axes { get; init; } = [];
    [JsonPropertyName("pareto_latency")] public string? ParetoLatency { get; init; }
}

/// <summary>
/// A sweep's results folder. Each configuration is committed as its own small Parquet file in <c>parts/</c>
/// (written under a temporary name and renamed, so a killed run leaves whole parts or none); compaction joins the
/// parts of every configuration into <c>results.parquet</c>, sorted by config_id and seed, with the Pareto column.
/// </summary>
public sealed class SweepStore
{
    public const string ManifestFile = "sweep.json";
    public const string ResultsFile = "results.parquet";

    private SweepStore(string dir, SweepManifest manifest)
    {
        Dir = dir;
        Manifest = manifest;
    }

    public string Dir { get; }
    public SweepManifest Manifest { get; }
    public string PartsDir => Path.Combine(Dir, "parts");

    public static string PartName(int configId) => $"config-{configId.ToString("D6", CultureInfo.InvariantCulture)}.parquet";

    /// <summary>Opens (creating) the folder for this sweep; a folder holding a different sweep is an error.</summary>
    public static SweepStore Create(string dir, SweepRunner runner)
    {
        var sweep = runner.Sweep;
        var manifest = new SweepManifest
        {
            Name = sweep.Name,
            Fingerprint = sweep.Fingerprint,
            Configurations = runner.Configurations.Count,
            Seeds = sweep.Seeds,
            Axes = sweep.Axes.Select(a => a.Key).ToList(),
            ParetoLatency = sweep.Cost is null ? null : sweep.ParetoLatency,
        };
        var path = Path.Combine(dir, ManifestFile);
        if (File.Exists(path))
        {
            var existing = ReadManifest(dir);
            if (existing.Fingerprint != manifest.Fingerprint)
                throw new UserInputException($"{dir}: holds results of a different sweep ('{existing.Name}', fingerprint {existing.Fingerprint}; this sweep is {manifest.Fingerprint}); use another --out");
            return new SweepStore(dir, existing);
        }
        Directory.CreateDirectory(Path.Combine(dir, "parts"));
        var tmp = TempFiles.For(path);
        try
        {
            File.WriteAllText(tmp, JsonSerializer.Serialize(manifest, ResultWriter.Json) + "\n");
            File.Move(tmp, path, overwrite: true);
        }
        finally { TempFiles.Delete(tmp); }
        return new SweepStore(dir, manifest);
    }

    public static SweepStore Open(string dir) => new(dir, ReadManifest(dir));

    private static SweepManifest ReadManifest(string dir)
    {
        var path = Path.Combine(dir, ManifestFile);
        if (!File.Exists(path)) throw new UserInputException($"{dir}: no {ManifestFile}; not a sweep results folder");
        try { return JsonSerializer.Deserialize<SweepManifest>(Files.InputFile.ReadAllText(path)) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new UserInputException($"{path}: not a valid sweep manifest: {e.Message}"); }
    }

    /// <summary>Configuration ids with a committed part.</summary>
    public HashSet<int> Committed()
    {
        var ids = new HashSet<int>();
        if (!Directory.Exists(PartsDir)) return ids;
        foreach (var f in Directory.EnumerateFiles(PartsDir, "config-*.parquet"))
        {
            var stem = Path.GetFileNameWithoutExtension(f)["config-".Length..];
            if (int.TryParse(stem, NumberStyles.None, CultureInfo.InvariantCulture, out var id)) ids.Add(id);
        }
        return ids;
    }

    /// <summary>
    /// Removes temporary part files that killed runs left for these configurations (a shard's own: other shards
    /// sharing the folder, on this host or another, keep their in-flight parts).
    /// </summary>
    public void RemoveStaleTemporaries(IEnumerable<int> configIds)
    {
        foreach (var id in configIds) TempFiles.SweepStale(PartsDir, $".{PartName(id)}.*.tmp");
    }

    /// <summary>Commits one configuration's rows: a temporary file, then an atomic rename to parts/config-NNNNNN.parquet.</summary>
    public void Commit(int configId, IReadOnlyList<ResultColumn> columns, List<object?[]> rows)
    {
        Directory.CreateDirectory(PartsDir);
        var final = Path.Combine(PartsDir, PartName(configId));
        var tmp = TempFiles.For(final);
        try
        {
            new ResultsTable(columns, rows).WriteAsync(tmp, PartMetadata(configId)).GetAwaiter().GetResult();
            File.Move(tmp, final, overwrite: true);
        }
        finally { TempFiles.Delete(tmp); }
    }

    private Dictionary<string, string> PartMetadata(int configId) => new()
    {
        ["rlms.schema"] = "sweep-results/v1",
        ["rlms.sweep"] = Manifest.Name,
        ["rlms.sweep.fingerprint"] = Manifest.Fingerprint,
        ["rlms.sweep.config_id"] = configId.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// Joins the parts of one or more folders of the same sweep into <paramref name="outDir"/>/results.parquet:
    /// every configuration must be present; rows sorted by (config_id, seed), a configuration found twice kept
    /// once, and the Pareto frontier of cost against latency computed over all rows.
    /// </summary>
    public static string Compact(IReadOnlyList<SweepStore> stores, string outDir)
    {
        var first = stores[0].Manifest;
        foreach (var s in stores.Skip(1))
            if (s.Manifest.Fingerprint != first.Fingerprint)
                throw new UserInputException($"{s.Dir}: holds a different sweep ('{s.Manifest.Name}', fingerprint {s.Manifest.Fingerprint}) than {stores[0].Dir} ({first.Fingerprint})");
        var parts = new SortedDictionary<int, string>();
        foreach (var s in stores)
            foreach (var id in s.Committed())
                parts.TryAdd(id, Path.Combine(s.PartsDir, PartName(id)));
        var missing = Enumerable.Range(0, first.Configurations).Where(i => !parts.ContainsKey(i)).ToList();
        if (missing.Count > 0)
            throw new UserInputException($"{string.Join(", ", stores.Select(s => s.Dir))}: {missing.Count} of {first.Configurations} configurations have no results yet (first: {string.Join(", ", missing.Take(5))}); run the missing shards or rerun with --resume");

        IReadOnlyList<ResultColumn>? columns = null;
        var rows = new List<object?[]>();
        foreach (var (id, path) in parts)
        {
            if (id >= first.Configurations) throw new UserInputException($"{path}: configuration {id} is outside this sweep's {first.Configurations} configurations");
            var (table, meta) = ResultsTable.ReadAsync(path).GetAwaiter().GetResult();
            if (!meta.TryGetValue("rlms.sweep.fingerprint", out var fp) || fp != first.Fingerprint)
                throw new UserInputException($"{path}: part of a different sweep");
            if (columns is null) columns = table.Columns;
            else if (!columns.SequenceEqual(table.Columns))
                throw new UserInputException($"{path}: columns differ from the other parts");
            rows.AddRange(table.Rows);
        }
        int cid = columns!.ToList().FindIndex(c => c.Name == SweepColumns.ConfigId), sid = columns!.ToList().FindIndex(c => c.Name == SweepColumns.Seed);
        rows = rows.OrderBy(r => (int)r[cid]!).ThenBy(r => (long)r[sid]!).ToList();

        var outColumns = columns!.ToList();
        if (first.ParetoLatency is { } latency)
        {
            int costI = outColumns.FindIndex(c => c.Name == SweepColumns.UsdPerMillionTokens), latI = outColumns.FindIndex(c => c.Name == latency);
            var frontier = Pareto.Frontier(rows.Select(r => (AsDouble(r[costI]), AsDouble(r[latI]))).ToList());
            outColumns.Add(new ResultColumn(SweepColumns.Pareto, ColumnKind.Bool));
            rows = rows.Select((r, i) => (object?[])[.. r, frontier[i]]).ToList();
        }
        Directory.CreateDirectory(outDir);
        var meta2 = new Dictionary<string, string>
        {
            ["rlms.schema"] = "sweep-results/v1",
            ["rlms.sweep"] = first.Name,
            ["rlms.sweep.fingerprint"] = first.Fingerprint,
        };
        using var staged = new StagedFiles();
        staged.StageAsync(outDir, ResultsFile, p => new ResultsTable(outColumns, rows).WriteAsync(p, meta2)).GetAwaiter().GetResult();
        staged.Commit();
        return Path.Combine(outDir, ResultsFile);
    }

    private static double? AsDouble(object? v) => v switch
    {
        null => null,
        double d => d,
        int i => i,
        long l => l,
        _ => null,
    };
}
