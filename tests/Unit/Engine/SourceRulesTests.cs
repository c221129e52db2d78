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

    [Fact]
    public void No_shipped_code_knows_the_fault_hooks_variables()
    {
        // Test hooks are switched on only by tests/FaultHost (through TestHooks); were the variable named anywhere
        // under src/, a user's environment could reach a hook that damages data.
        var hits = Sources("src").Where(f => f.Text.Contains("BCMR_FAULT", StringComparison.Ordinal)).Select(f => f.Rel).ToList();
        Assert.True(hits.Count == 0, "src/ must not name BCMR_FAULT_*:\n" + string.Join('\n', hits));
    }
}
