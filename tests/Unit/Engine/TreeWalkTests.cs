using Bcmr.Engine;
using Bcmr.Engine.Local;
using Bcmr.Engine.Platform;
using Bcmr.Engine.Sync;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Engine;

/// <summary>The one local walker under each symlink policy, and the march that pairs two walks.</summary>
public class TreeWalkTests
{
    private sealed class Recorder : ITreeVisitor
    {
        public readonly List<string> Events = new();
        public Func<TreeNode, bool> EnterWhen = _ => true;
        public bool Enter(in TreeNode d) { Events.Add("enter " + d.Relative); return EnterWhen(d); }
        public void Leaf(in TreeNode e) { Events.Add($"leaf {e.Relative} {e.Kind}"); }
        public void Skip(in TreeNode e, TreeSkip why) => Events.Add($"skip {e.Relative} {why}");
        public void Fail(in TreeNode d, BcmrException error) => Events.Add($"fail {d.Relative} {error.Code}");
    }

    private static List<string> Walk(string root, SymlinkPolicy policy, string[]? excludes = null, Recorder? r = null)
    {
        r ??= new Recorder();
        var meta = Fs.TryStat(root)!.Value;
        LocalTree.Walk(TreeNode.Root(root, "t", meta), policy, new PathFilter(excludes ?? []), r, CancellationToken.None);
        return r.Events;
    }

    private static string MakeTree(TempDir d)
    {
        var t = d["t"];
        d.WriteFile("t/b.txt", [1]);
        d.WriteFile("t/a/x.txt", [1, 2]);
        d.WriteFile("t/a-c.txt", [1, 2, 3]);
        d.WriteFile("t/real/c.txt", [4, 4, 4, 4]);
        File.CreateSymbolicLink(d["t/linkdir"], "real");
        File.CreateSymbolicLink(d["t/dangling"], "nowhere");
        File.CreateSymbolicLink(d["t/a/up"], "..");
        return t;
    }

    [Fact]
    public void Preserve_keeps_links_as_entries_and_walks_in_name_order_parents_first()
    {
        using var d = new TempDir();
        var events = Walk(MakeTree(d), SymlinkPolicy.Preserve);
        Assert.Equal([
            "enter t", "enter t/a", "leaf t/a/up Symlink", "leaf t/a/x.txt File", "leaf t/a-c.txt File", "leaf t/b.txt File",
            "leaf t/dangling Symlink", "leaf t/linkdir Symlink", "enter t/real", "leaf t/real/c.txt File",
        ], events);
    }

    [Fact]
    public void Follow_enters_linked_directories_once_and_skips_what_cannot_be_followed()
    {
        using var d = new TempDir();
        var t = MakeTree(d);
        var fifo = d["t/pipe"];
        Assert.Equal(0, Tool.Run("mkfifo", fifo).ExitCode);
        var events = Walk(t, SymlinkPolicy.Follow);
        Assert.Equal([
            "enter t", "enter t/a", "skip t/a/up LinksToAncestor", "leaf t/a/x.txt File", "leaf t/a-c.txt File", "leaf t/b.txt File",
            "skip t/dangling DanglingLink", "enter t/linkdir", "leaf t/linkdir/c.txt File", "skip t/pipe NotFileOrDirectory",
            "enter t/real", "leaf t/real/c.txt File",
        ], events);
    }

    [Fact]
    public void An_excluded_or_refused_directory_is_not_listed_and_an_unreadable_one_fails_alone()
    {
        using var d = new TempDir();
        var t = MakeTree(d);
        Assert.DoesNotContain(Walk(t, SymlinkPolicy.Follow, [@"^t/a$"]), e => e.Contains("t/a/"));
        var refusing = new Recorder { EnterWhen = n => n.Relative != "t/real" };
        Assert.DoesNotContain(Walk(t, SymlinkPolicy.Preserve, r: refusing), e => e.Contains("t/real/"));

        // gone between being entered and being listed: that directory fails, the walk goes on
        var vanishing = new Recorder { EnterWhen = n => { if (n.Relative == "t/real") Directory.Delete(n.Path, true); return true; } };
        var events = Walk(t, SymlinkPolicy.Preserve, r: vanishing);
        Assert.Contains("fail t/real NotFound", events);
        Assert.Contains("leaf t/b.txt File", events);
    }

    [Fact]
    public void A_tree_deeper_than_any_stack_allows_is_walked()
    {
        using var d = new TempDir();
        // 1,900 levels below a short root stay under PATH_MAX; a recursive walker would need a frame per level.
        var deep = d["t"];
        for (int i = 0; i < 1900; i++) deep = Path.Join(deep, "d");
        Directory.CreateDirectory(deep);
        File.WriteAllBytes(Path.Join(deep, "f"), [7]);
        var events = Walk(d["t"], SymlinkPolicy.Follow);
        Assert.Equal(1902, events.Count);
        Assert.EndsWith("/d/f File", events[^1]);
    }

    [Fact]
    public void March_pairs_paths_in_ordinal_order_whatever_order_the_walks_gave()
    {
        (string, int)[] src = [("t", 0), ("t/a", 1), ("t/a/x", 2), ("t/a-c", 3), ("t/b", 4)];
        (string, int)[] dst = [("t", 10), ("t/a-c", 13), ("t/a", 11), ("t/z", 15)];
        var pairs = TreeDiff.March(src, dst).Select(p => $"{p.Path}:{p.Source?.ToString() ?? "-"}:{p.Destination?.ToString() ?? "-"}").ToList();
        Assert.Equal(["t:0:10", "t/a:1:11", "t/a-c:3:13", "t/a/x:2:-", "t/b:4:-", "t/z:-:15"], pairs);
    }

    /// <summary>Two sources of the same name list a path twice: the one listed last is the one copied (as cp and
    /// rsync do), however many times and wherever it repeats.</summary>
    [Fact]
    public void March_keeps_the_last_of_a_path_listed_more_than_once()
    {
        (string, int)[] src = [("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5), ("b", 6), ("a", 7)];
        (string, int)[] dst = [("b", 10), ("b", 11)];
        var pairs = TreeDiff.March(src, dst).Select(p => $"{p.Path}:{p.Source?.ToString() ?? "-"}:{p.Destination?.ToString() ?? "-"}").ToList();
        Assert.Equal(["a:7:-", "b:6:11", "c:4:-"], pairs);
    }
}
