using RLMServing.IO.Files;
using RLMServing.IO.Results;
using RLMServing.IO.Scenarios;
using Xunit;

namespace RLMServing.Tests.Cli;

/// <summary>The pieces every writing verb shares: staged results, per-process temporaries, folder locks, name and YAML checks.</summary>
public class OutputSafetyTests
{
    [Fact]
    public async Task StagedFilesAppearTogetherOrNotAtAll()
    {
        var dir = RlmsProcess.TempDir();
        var outDir = Path.Combine(dir, "o");
        using (var staged = new StagedFiles())
        {
            await staged.StageAsync(Path.Combine(outDir, "reasoning"), "summary.json", p => File.WriteAllTextAsync(p, "{}"));
            await Assert.ThrowsAsync<IOException>(() => staged.StageAsync(Path.Combine(outDir, "standard"), "summary.json", _ => throw new IOException("disk full")));
            // Not committed: the failure part way leaves no variant behind, and no folder this run made.
        }
        Assert.False(Directory.Exists(outDir));

        using (var staged = new StagedFiles())
        {
            await staged.StageAsync(Path.Combine(outDir, "a"), "summary.json", p => File.WriteAllTextAsync(p, "{}"));
            await staged.StageAsync(outDir, "comparison.json", p => File.WriteAllTextAsync(p, "{}"));
            Assert.False(File.Exists(Path.Combine(outDir, "comparison.json")));
            staged.Commit();
        }
        Assert.True(File.Exists(Path.Combine(outDir, "a", "summary.json")));
        Assert.True(File.Exists(Path.Combine(outDir, "comparison.json")));
        Assert.Empty(Directory.EnumerateFiles(outDir, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void TemporaryNamesAreUniquePerProcessAndStaleOnesAreSwept()
    {
        var dir = RlmsProcess.TempDir();
        var final = Path.Combine(dir, "requests.parquet");
        var a = TempFiles.For(final);
        var b = TempFiles.For(final);
        Assert.NotEqual(a, b);
        Assert.Contains($"rlms-{TempFiles.Host}-{Environment.ProcessId}-", a);
        File.WriteAllText(a, "mine, in flight");
        var dead = Path.Combine(dir, $".requests.parquet.rlms-{TempFiles.Host}-2147483000-1.tmp");
        var olderStyle = Path.Combine(dir, ".config-000001.parquet.2147483001.tmp");
        var otherHost = Path.Combine(dir, ".config-000002.parquet.rlms-another-node-7-2147483002-1.tmp");
        File.WriteAllText(dead, "left by kill -9");
        File.WriteAllText(olderStyle, "left by kill -9");
        File.WriteAllText(otherHost, "a shard on another node, in flight");
        Assert.Equal(2, TempFiles.SweepStale(dir));
        Assert.True(File.Exists(a), "a live process's temporary stays");
        Assert.True(File.Exists(otherHost), "another host's temporary stays: its process cannot be seen from here");
        Assert.False(File.Exists(dead));
        Assert.False(File.Exists(olderStyle));
        TempFiles.Delete(a);
        TempFiles.Forget(b);
    }

    [Fact]
    public void AFolderLockIsExclusiveAndReleased()
    {
        var dir = RlmsProcess.TempDir();
        using (FolderLock.Acquire(dir, "test"))
        {
            var lockText = File.ReadAllText(Path.Combine(dir, FolderLock.FileName));
            Assert.StartsWith($"{Environment.ProcessId} {TempFiles.Host} test", lockText);
            var e = Assert.Throws<UserInputException>(() => FolderLock.Acquire(dir, "again"));
            Assert.Contains("in use", e.Message);
        }
        Assert.False(File.Exists(Path.Combine(dir, FolderLock.FileName)));
        using (FolderLock.Acquire(dir, "after release")) { }
    }

    [Fact]
    public void ShardsLockTheirOwnSliceAndAnotherHostsLockIsTakenOver()
    {
        var dir = RlmsProcess.TempDir();
        using (FolderLock.Acquire(dir, "sweep --shard 0/2", ".rlms-shard-0-of-2.lock"))
        using (FolderLock.Acquire(dir, "sweep --shard 1/2", ".rlms-shard-1-of-2.lock"))
            Assert.Throws<UserInputException>(() => FolderLock.Acquire(dir, "sweep --shard 1/2", ".rlms-shard-1-of-2.lock"));
        // A node that died holding the lock cannot be asked from here; its requeued job takes the lock over.
        File.WriteAllText(Path.Combine(dir, FolderLock.FileName), $"{Environment.ProcessId} another-node sweep\n");
        using (FolderLock.Acquire(dir, "sweep")) { }
    }

    [Theory]
    [InlineData("quickstart", true)]
    [InlineData("my run 2", true)]
    [InlineData("a/b", false)]
    [InlineData("..", false)]
    [InlineData(".", false)]
    [InlineData("/abs", false)]
    [InlineData("", false)]
    public void ANameIsOneFolderNameNeverAPath(string name, bool ok)
    {
        if (ok) Assert.Equal(name, OutputPath.CheckName(name, "s.yaml: name"));
        else Assert.Throws<UserInputException>(() => OutputPath.CheckName(name, "s.yaml: name"));
    }

    [Fact]
    public void OutputChecksClassifyWhatIsThere()
    {
        var dir = RlmsProcess.TempDir();
        Assert.Equal(Path.Combine(dir, "new", "deeper"), OutputPath.CheckFolder(Path.Combine(dir, "new", "deeper"), "--out"));
        Assert.False(Directory.Exists(Path.Combine(dir, "new")), "checking creates nothing");
        Assert.Contains("character device", Assert.Throws<UserInputException>(() => OutputPath.CheckFile("/dev/null", "--out")).Message);
        Assert.Contains("is a folder", Assert.Throws<UserInputException>(() => OutputPath.CheckFile(dir, "--out")).Message);
        Assert.Equal(FileKind.Directory, FileProbe.Kind(dir));
        Assert.Equal(FileKind.Missing, FileProbe.Kind(Path.Combine(dir, "nothing")));
        Assert.Equal(FileKind.CharacterDevice, FileProbe.Kind("/dev/zero"));
    }

    [Theory]
    [InlineData("a: 1\nb: [1, 2, {c: 3}]\n", true)]
    [InlineData("a: &x [1, 2]\nb: *x\nc: *x\n", true)]
    public void OrdinaryYamlPassesTheGuard(string yaml, bool ok)
    {
        if (ok) YamlGuard.Check(yaml, "t.yaml");
    }

    [Fact]
    public void TheGuardCountsNodesWithAliasesExpanded()
    {
        // 10 x 10 x 10 x 10 x 10 x 10 = 10^6 scalars behind six levels of aliases.
        var yaml = "l0: &l0 [0,0,0,0,0,0,0,0,0,0]\n" + string.Concat(Enumerable.Range(1, 6).Select(i =>
            $"l{i}: &l{i} [{string.Join(",", Enumerable.Repeat($"*l{i - 1}", 10))}]\n"));
        var e = Assert.Throws<UserInputException>(() => YamlGuard.Check(yaml, "t.yaml"));
        Assert.Contains("1,000,000", e.Message);
        YamlGuard.Check(string.Join("\n", yaml.Split('\n').Take(5)), "t.yaml");   // 10^4 nodes: fine
    }

    [Fact]
    public void ErrorTextQuotesAFewDozenCharacters()
    {
        Assert.Equal("short", ErrorText.Clip("short"));
        var clipped = ErrorText.Clip(new string('x', 10_000));
        Assert.True(clipped.Length < 80);
        Assert.Contains("10,000 characters", clipped);
    }
}
