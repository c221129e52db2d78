using Bcmr.Tests.Module;

namespace Bcmr.Tests.Engine;

/// <summary>Rules about what the shipped code may know, checked on the source.</summary>
public class SourceRulesTests
{
    private static IEnumerable<(string Rel, string Text)> Sources(string under)
    {
        var root = Path.Combine(PublishedModule.RepoRoot, under);
        foreach (var file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, file).Replace('\\', '/');
            if (rel.Split('/') is var parts && (parts.Contains("bin") || parts.Contains("obj"))) continue;
            yield return (rel, File.ReadAllText(file));
        }
    }

    /// <summary>The text without its comment lines (documentation may name what a caller passes in).</summary>
    private static string Code(string text) =>
        string.Join('\n', text.Split('\n').Where(l => !l.TrimStart().StartsWith("//", StringComparison.Ordinal)));

    [Fact]
    public void No_shipped_code_knows_the_fault_hooks_variables()
    {
        // Test hooks are switched on only by tests/FaultHost (through TestHooks); were the variable named anywhere
        // under src/, a user's environment could reach a hook that damages data.
        var hits = Sources("src").Where(f => f.Text.Contains("BCMR_FAULT", StringComparison.Ordinal)).Select(f => f.Rel).ToList();
        Assert.True(hits.Count == 0, "src/ must not name BCMR_FAULT_*:\n" + string.Join('\n', hits));
    }

    /// <summary>Engine files allowed to read the environment, each with the reason (none: BCMR_SSH and BCMR_REMOTE
    /// are read by the hosts too since the transport seam).</summary>
    private static readonly HashSet<string> EnvironmentReaders = [];

    [Fact]
    public void The_engine_reads_no_environment_variable()
    {
        // The hosts (the CLI's Program, the cmdlets, the serve commands) read the environment once and pass
        // EngineSettings in; a read inside the engine would be shared by every runspace of a PowerShell process and
        // could not be set per call or per test.
        var readers = Sources(Path.Combine("src", "Bcmr.Engine"))
            .Where(f => f.Rel.EndsWith(".cs", StringComparison.Ordinal) && Code(f.Text).Contains("GetEnvironmentVariable", StringComparison.Ordinal))
            .Select(f => f.Rel).ToHashSet();
        var added = readers.Except(EnvironmentReaders).Order().ToList();
        var gone = EnvironmentReaders.Except(readers).Order().ToList();
        Assert.True(added.Count == 0, "engine files that read the environment (pass EngineSettings in instead):\n" + string.Join('\n', added));
        Assert.True(gone.Count == 0, "no longer reads the environment, remove from EnvironmentReaders:\n" + string.Join('\n', gone));
    }
}
