using System.Text.Json;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Cli;

/// <summary>
/// `bcmr sync` between local directories, run as a user would: the destination ends identical to the source
/// (contents, modes, mtimes, links as links), a second run does nothing, and deletes are as careful as rclone's:
/// only with --delete, only after every copy succeeded, never more than --max-delete, never through a link, never
/// an excluded entry, and with --backup-dir nothing replaced or removed is lost.
/// </summary>
public sealed class SyncTests : IDisposable
{
    private readonly TempDir _t = new();
    public void Dispose() => _t.Dispose();

    /// <summary>Every entry below a root with what a mirror must carry: the bytes (SHA-256), permission bits and
    /// mtime (whole seconds) of files, link targets.</summary>
    internal static SortedDictionary<string, string> Describe(string root)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (rel, kind) in Trees.Describe(root))
        {
            var path = Path.Combine(root, rel);
            map[rel] = kind.StartsWith("file:")
                ? $"{kind} mode {Convert.ToString((int)File.GetUnixFileMode(path), 8)} mtime {new DateTimeOffset(File.GetLastWriteTimeUtc(path)).ToUnixTimeSeconds()}"
                : kind;
        }
        return map;
    }

    internal static void AssertMirror(string src, string dst)
    {
        var expected = Describe(src);
        var actual = Describe(dst);
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (k, v) in expected) Assert.True(v == actual[k], $"{k}: expected {v}, got {actual[k]}");
    }

    /// <summary>A tree with nested directories, an empty one, odd modes, old mtimes and a link.</summary>
    internal static void MakeSource(string src)
    {
        Directory.CreateDirectory(Path.Combine(src, "a", "b"));
        Directory.CreateDirectory(Path.Combine(src, "empty"));
        File.WriteAllText(Path.Combine(src, "a", "x.txt"), "x");
        File.WriteAllText(Path.Combine(src, "a", "b", "y.txt"), "yy");
        File.WriteAllText(Path.Combine(src, "run.sh"), "#!/bin/sh\n");
        File.WriteAllBytes(Path.Combine(src, "big.bin"), new byte[300_000]);
        File.SetUnixFileMode(Path.Combine(src, "run.sh"), (UnixFileMode)Convert.ToInt32("755", 8));
        File.SetUnixFileMode(Path.Combine(src, "a", "x.txt"), (UnixFileMode)Convert.ToInt32("600", 8));
        var old = new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc).AddTicks(1234567);
        foreach (var f in Directory.EnumerateFiles(src, "*", SearchOption.AllDirectories)) File.SetLastWriteTimeUtc(f, old);
        File.CreateSymbolicLink(Path.Combine(src, "link"), "a/x.txt");
    }

    private static RunResult Sync(params string[] args) => BcmrRunner.Run(["--json", "sync", .. args]);

    private static JsonElement[] Actions(RunResult r) =>
        r.JsonLines.Where(l => l.GetProperty("type").GetString() == "action").ToArray();

    private static int Count(RunResult r, string field) => r.JsonResult.GetProperty(field).GetInt32();

    [Fact]
    public void A_mirror_makes_the_trees_identical_removes_extraneous_entries_as_links_and_a_second_run_does_nothing()
    {
        MakeSource(_t["src"]);
        // What the destination has that the source lacks: a file, a directory, and a link to a directory outside.
        Directory.CreateDirectory(_t["outside"]);
        File.WriteAllText(_t["outside/precious"], "p");
        Directory.CreateDirectory(_t["dst/old/deeper"]);
        File.WriteAllText(_t["dst/old/deeper/z"], "z");
        File.WriteAllText(_t["dst/stale.txt"], "s");
        File.CreateSymbolicLink(_t["dst/escape"], _t["outside"]);
        File.WriteAllText(_t["dst/run.sh"], "an older version");

        var first = Sync("--delete", _t["src"], _t["dst"]);
        Assert.True(first.ExitCode == 0, first.ToString());
        AssertMirror(_t["src"], _t["dst"]);
        Assert.Equal("p", File.ReadAllText(_t["outside/precious"]));
        Assert.Equal(7, Count(first, "copied")); // a/, a/b/, empty/, a/x.txt, a/b/y.txt, big.bin, link
        Assert.Equal(1, Count(first, "updated"));
        Assert.Equal(5, Count(first, "deleted")); // old, old/deeper, old/deeper/z, stale.txt, escape
        var reasons = Actions(first).ToDictionary(a => a.GetProperty("path").GetString()!, a => a.GetProperty("reason").GetString());
        Assert.Equal("size", reasons["run.sh"]);
        Assert.Equal("extraneous", reasons["escape"]);
        Assert.Equal("new", reasons["a/b/y.txt"]);
        Trees.AssertNoStagingFiles(_t.Path);

        var second = Sync("--delete", _t["src"], _t["dst"]);
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Empty(Actions(second));
        Assert.Equal(0, Count(second, "copied") + Count(second, "updated") + Count(second, "deleted"));
        Assert.Equal(5, Count(second, "unchanged"));

        // A changed mtime alone is a change (rsync's quick check), and the update carries the new one.
        File.SetLastWriteTimeUtc(_t["src/a/b/y.txt"], DateTime.UtcNow.AddDays(-1));
        var third = Sync(_t["src"], _t["dst"]);
        Assert.Equal("mtime", Assert.Single(Actions(third)).GetProperty("reason").GetString());
        AssertMirror(_t["src"], _t["dst"]);
    }

    [Fact]
    public void Checksum_finds_a_changed_byte_that_size_and_mtime_hide_deep_in_the_tree_and_replaces_only_that_file()
    {
        MakeSource(_t["src"]);
        var first = Sync(_t["src"], _t["dst"]);
        Assert.True(first.ExitCode == 0, first.ToString());
        // Same size, same mtime, one byte different: only the contents can tell.
        var hidden = _t["dst/a/b/y.txt"];
        var mtime = File.GetLastWriteTimeUtc(hidden);
        File.WriteAllText(hidden, "yz");
        File.SetLastWriteTimeUtc(hidden, mtime);
        Assert.Empty(Actions(Sync(_t["src"], _t["dst"])));
        var r = Sync("-c", _t["src"], _t["dst"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var only = Assert.Single(Actions(r));
        Assert.Equal("a/b/y.txt", only.GetProperty("path").GetString());
        Assert.Equal("checksum", only.GetProperty("reason").GetString());
        Assert.Equal("yy", File.ReadAllText(hidden));
        AssertMirror(_t["src"], _t["dst"]);
        Assert.Empty(Actions(Sync("-c", _t["src"], _t["dst"])));
    }

    [Fact]
    public void Without_delete_nothing_is_removed_and_a_missing_destination_is_created()
    {
        MakeSource(_t["src"]);
        File.WriteAllText(_t["src/new.txt"], "n");
        var r = Sync(_t["src"], _t["made"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        AssertMirror(_t["src"], _t["made"]);
        File.WriteAllText(_t["made/mine.txt"], "mine");
        File.Delete(_t["src/new.txt"]);
        var again = Sync(_t["src"], _t["made"]);
        again.AssertExit(0);
        Assert.Equal("mine", File.ReadAllText(_t["made/mine.txt"]));
        Assert.True(File.Exists(_t["made/new.txt"]));
        Assert.Empty(Actions(again));
    }

    [Fact]
    public void Max_delete_below_the_count_removes_none_and_fails_while_the_copies_are_made()
    {
        MakeSource(_t["src"]);
        Sync(_t["src"], _t["dst"]).AssertExit(0);
        for (int i = 0; i < 6; i++) File.WriteAllText(_t[$"dst/extra{i}"], "e");
        File.WriteAllText(_t["src/new.txt"], "n");

        var r = Sync("--delete", "--max-delete", "5", _t["src"], _t["dst"]);
        r.AssertExit(1);
        Assert.Contains("--max-delete 5", r.JsonResult.GetProperty("error").GetString());
        for (int i = 0; i < 6; i++) Assert.True(File.Exists(_t[$"dst/extra{i}"]));
        Assert.Equal("n", File.ReadAllText(_t["dst/new.txt"]));
        var human = BcmrRunner.Run("sync", "--delete", "--max-delete", "5", _t["src"], _t["dst"]);
        human.AssertExit(1);
        Assert.Contains("6 entries would be removed; none was", human.Stderr);

        var enough = Sync("--delete", "--max-delete", "6", _t["src"], _t["dst"]);
        Assert.True(enough.ExitCode == 0, enough.ToString());
        AssertMirror(_t["src"], _t["dst"]);
    }

    [Fact]
    public void A_failed_copy_leaves_every_extraneous_entry_in_place_and_says_why()
    {
        File.SetUnixFileMode(_t.Path, (UnixFileMode)Convert.ToInt32("777", 8));
        for (int i = 0; i < 3; i++) _t.WriteRandom($"src/f{i}.txt", 1000, i);
        foreach (var f in Directory.EnumerateFiles(_t["src"])) File.SetUnixFileMode(f, (UnixFileMode)Convert.ToInt32("644", 8));
        File.SetUnixFileMode(_t["src/f1.txt"], UnixFileMode.UserRead); // root's, unreadable to the user who syncs
        File.SetUnixFileMode(_t["src"], (UnixFileMode)Convert.ToInt32("755", 8));
        Directory.CreateDirectory(_t["dst"]);
        File.WriteAllText(_t["dst/extraneous.txt"], "keep me");
        Tool.Run("chown", "-R", "65534:65534", _t["dst"]);

        var r = BcmrRunner.Run(["--json", "sync", "--delete", _t["src"], _t["dst"]], asUser: "65534");
        r.AssertExit(3);
        var failed = Actions(r).Single(a => a.GetProperty("status").GetString() == "failed");
        Assert.Equal("f1.txt", failed.GetProperty("path").GetString());
        Assert.Contains("Permission denied", failed.GetProperty("message").GetString());
        Assert.Contains("no extraneous entry was removed", r.JsonResult.GetProperty("deletes_skipped").GetString());
        Assert.Equal("keep me", File.ReadAllText(_t["dst/extraneous.txt"]));
        Assert.Equal(Trees.Sha256(_t["src/f0.txt"]), Trees.Sha256(_t["dst/f0.txt"]));
        Assert.False(File.Exists(_t["dst/f1.txt"]));
        Trees.AssertNoStagingFiles(_t["dst"]);
    }

    [Fact]
    public void Backup_dir_keeps_every_replaced_and_removed_entry_byte_identical()
    {
        MakeSource(_t["src"]);
        Sync(_t["src"], _t["dst"]).AssertExit(0);
        var before = Describe(_t["dst"]);
        File.WriteAllText(_t["src/a/b/y.txt"], "a new version, longer");
        File.Delete(_t["src/a/x.txt"]);
        Directory.Delete(_t["src/empty"]);
        File.WriteAllText(_t["dst/gone.txt"], "extraneous");
        var gone = Trees.Sha256(_t["dst/gone.txt"]);
        var oldY = Trees.Sha256(_t["dst/a/b/y.txt"]);
        var oldX = Trees.Sha256(_t["dst/a/x.txt"]);

        var r = Sync("--delete", "--backup-dir", ".versions", _t["src"], _t["dst"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(oldY, Trees.Sha256(_t["dst/.versions/a/b/y.txt"]));
        Assert.Equal(oldX, Trees.Sha256(_t["dst/.versions/a/x.txt"]));
        Assert.Equal(gone, Trees.Sha256(_t["dst/.versions/gone.txt"]));
        Assert.True(Directory.Exists(_t["dst/.versions/empty"]));
        Assert.Equal(before["a/b/y.txt"].Split(' ')[0], "file:" + oldY);
        // The backup directory is not part of what is synced: the next run keeps it and finds nothing to do.
        Directory.Move(_t["dst/.versions"], _t["versions"]);
        AssertMirror(_t["src"], _t["dst"]);
        Directory.Move(_t["versions"], _t["dst/.versions"]);
        var again = Sync("--delete", "--backup-dir", ".versions", _t["src"], _t["dst"]);
        Assert.Empty(Actions(again));
        Assert.True(File.Exists(_t["dst/.versions/gone.txt"]));
    }

    [Fact]
    public void A_backup_dir_inside_an_extraneous_directory_survives_and_a_later_backup_of_a_name_keeps_the_earlier_as_name_1()
    {
        // --backup-dir old/versions: "old" is not in the source, so it is extraneous, yet it holds the backups.
        Directory.CreateDirectory(_t["src/d"]);
        File.WriteAllText(_t["src/top.txt"], "v1");
        File.WriteAllText(_t["src/d/f.txt"], "f1");
        Sync(_t["src"], _t["dst"]).AssertExit(0);
        Directory.CreateDirectory(_t["dst/old"]);
        File.WriteAllText(_t["dst/old/junk.txt"], "junk");
        RunResult Mirror() => Sync("--delete", "--backup-dir", "old/versions", _t["src"], _t["dst"]);

        File.WriteAllText(_t["src/top.txt"], "v2, longer");
        Directory.Delete(_t["src/d"], recursive: true);
        var r = Mirror();
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("v1", File.ReadAllText(_t["dst/old/versions/top.txt"]));
        Assert.Equal("f1", File.ReadAllText(_t["dst/old/versions/d/f.txt"]));
        Assert.Equal("junk", File.ReadAllText(_t["dst/old/versions/old/junk.txt"])); // emptied, not removed
        Assert.Equal(["old/versions"], Directory.EnumerateFileSystemEntries(_t["dst/old"]).Select(p => Path.GetRelativePath(_t["dst"], p)));
        Assert.Equal("v2, longer", File.ReadAllText(_t["dst/top.txt"]));
        Assert.False(Directory.Exists(_t["dst/d"]));

        // The same names backed up again: the earlier backups become NAME.~1~, nothing is replaced.
        File.WriteAllText(_t["src/top.txt"], "v3, longer still");
        Directory.CreateDirectory(_t["src/d"]);
        File.WriteAllText(_t["src/d/f.txt"], "f2");
        Assert.True(Mirror() is { ExitCode: 0 } second, "second run");
        Directory.Delete(_t["src/d"], recursive: true);
        File.WriteAllText(_t["src/top.txt"], "v4, the longest of all");
        r = Mirror();
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("v3, longer still", File.ReadAllText(_t["dst/old/versions/top.txt"]));
        Assert.Equal("v2, longer", File.ReadAllText(_t["dst/old/versions/top.txt.~2~"]));
        Assert.Equal("v1", File.ReadAllText(_t["dst/old/versions/top.txt.~1~"]));
        Assert.Equal("f2", File.ReadAllText(_t["dst/old/versions/d/f.txt"]));
        Assert.Equal("f1", File.ReadAllText(_t["dst/old/versions/d.~1~/f.txt"]));
        Assert.Equal("v4, the longest of all", File.ReadAllText(_t["dst/top.txt"]));
        Assert.Empty(Actions(Mirror()));
    }

    [Fact]
    public void Excluded_entries_are_neither_copied_nor_deleted_unless_delete_excluded()
    {
        MakeSource(_t["src"]);
        File.WriteAllText(_t["src/skip.log"], "src log");
        Directory.CreateDirectory(_t["dst/cache"]);
        File.WriteAllText(_t["dst/cache/c.log"], "dst cache");
        File.WriteAllText(_t["dst/cache/other"], "extraneous, beside an excluded entry");
        File.WriteAllText(_t["dst/mine.log"], "dst log");

        var r = Sync("--delete", "-e", @"\.log$", _t["src"], _t["dst"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.False(File.Exists(_t["dst/skip.log"]));
        Assert.Equal("dst log", File.ReadAllText(_t["dst/mine.log"]));
        Assert.Equal("dst cache", File.ReadAllText(_t["dst/cache/c.log"]));
        Assert.False(File.Exists(_t["dst/cache/other"])); // removed alone: its directory holds a kept entry

        var all = Sync("--delete", "--delete-excluded", "-e", @"\.log$", _t["src"], _t["dst"]);
        Assert.True(all.ExitCode == 0, all.ToString());
        Assert.False(File.Exists(_t["dst/mine.log"]));
        Assert.False(Directory.Exists(_t["dst/cache"]));
        Assert.Equal("excluded", Actions(all).Single(a => a.GetProperty("path").GetString() == "mine.log").GetProperty("reason").GetString());
        File.Delete(_t["src/skip.log"]); // excluded: never copied
        AssertMirror(_t["src"], _t["dst"]);
    }

    [Fact]
    public void Dry_run_lists_every_action_with_its_reason_and_changes_nothing()
    {
        MakeSource(_t["src"]);
        Sync(_t["src"], _t["dst"]).AssertExit(0);
        File.WriteAllText(_t["src/new.txt"], "n");
        File.WriteAllText(_t["src/a/x.txt"], "changed size");
        File.WriteAllText(_t["dst/extra.txt"], "e");
        var before = Describe(_t["dst"]);

        var r = BcmrRunner.Run("sync", "-n", "--delete", _t["src"], _t["dst"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("would copy   new        new.txt", r.Stdout);
        Assert.Contains("would update size       a/x.txt", r.Stdout);
        Assert.Contains("would delete extraneous extra.txt", r.Stdout);
        Assert.Equal(before, Describe(_t["dst"]));
        var json = Sync("-n", "--delete", _t["src"], _t["dst"]);
        Assert.True(json.JsonResult.GetProperty("dry_run").GetBoolean());
        Assert.All(Actions(json), a => Assert.Equal("dryrun", a.GetProperty("status").GetString()));
        Assert.Equal(before, Describe(_t["dst"]));
    }

    [Fact]
    public void A_directory_where_the_source_has_a_file_is_replaced_only_with_delete()
    {
        Directory.CreateDirectory(_t["src"]);
        File.WriteAllText(_t["src/thing"], "a file now");
        Directory.CreateDirectory(_t["dst/thing"]);
        File.WriteAllText(_t["dst/thing/inside"], "i");

        var r = Sync(_t["src"], _t["dst"]);
        r.AssertExit(1);
        Assert.Contains("use --delete", Actions(r).Single().GetProperty("message").GetString());
        Assert.True(File.Exists(_t["dst/thing/inside"]));

        var d = Sync("--delete", _t["src"], _t["dst"]);
        Assert.True(d.ExitCode == 0, d.ToString());
        Assert.Equal("a file now", File.ReadAllText(_t["dst/thing"]));
    }

    [Fact]
    public void Bad_arguments_are_usage_errors_and_a_file_source_is_refused()
    {
        File.WriteAllText(_t["file"], "f");
        var file = BcmrRunner.Run("sync", _t["file"], _t["dst"]);
        file.AssertExit(1);
        Assert.Contains("sync needs a directory as its source", file.Stderr);
        BcmrRunner.Run("sync", _t["file"]).AssertExit(2);
        BcmrRunner.Run("sync", "--max-delete", "-1", _t["src"], _t["dst"]).AssertExit(2);
        var missing = BcmrRunner.Run("sync", _t["nope"], _t["dst"]);
        missing.AssertExit(1);
        Assert.Contains("No such file or directory", missing.Stderr);
        Assert.False(Directory.Exists(_t["dst"]));
    }

    [Fact]
    public void A_source_file_changing_during_the_sync_fails_alone_and_no_delete_runs()
    {
        MakeSource(_t["src"]);
        var growing = _t.WriteRandom("src/growing.bin", 256 * 1024 * 1024, 1);
        Directory.CreateDirectory(_t["dst"]);
        File.WriteAllText(_t["dst/extra.txt"], "kept: a copy failed");
        using var stop = new CancellationTokenSource();
        using var appending = new ManualResetEventSlim();
        // A thread of its own (a pool task can start late on a busy test run, after the copy is done), and the copy
        // starts only once the file has begun to grow.
        var appender = new Thread(() =>
        {
            using var f = new FileStream(growing, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            while (!stop.IsCancellationRequested) { f.WriteByte(1); f.Flush(); appending.Set(); Thread.Sleep(1); }
        }) { IsBackground = true };
        appender.Start();
        Assert.True(appending.Wait(TimeSpan.FromSeconds(30)), "the appender never started");
        var r = Sync("--delete", "-V", _t["src"], _t["dst"]);
        stop.Cancel();
        appender.Join();

        r.AssertExit(3);
        var failed = Assert.Single(Actions(r), a => a.GetProperty("status").GetString() == "failed");
        Assert.Equal("growing.bin", failed.GetProperty("path").GetString());
        Assert.Contains("changed while being copied", failed.GetProperty("message").GetString());
        Assert.False(File.Exists(_t["dst/growing.bin"]));
        Assert.Equal("kept: a copy failed", File.ReadAllText(_t["dst/extra.txt"]));
        Assert.Equal(Trees.Sha256(_t["src/a/b/y.txt"]), Trees.Sha256(_t["dst/a/b/y.txt"]));
        Trees.AssertNoStagingFiles(_t.Path);
    }

    [Fact]
    public void A_destination_named_through_a_link_is_synced_where_it_points_and_links_inside_it_are_never_followed()
    {
        MakeSource(_t["src"]);
        Directory.CreateDirectory(_t["real"]);
        File.CreateSymbolicLink(_t["dst-link"], _t["real"]);
        Directory.CreateDirectory(_t["outside"]);
        File.WriteAllText(_t["outside/keep"], "k");
        File.WriteAllText(_t["outside/x.txt"], "not the source's");
        File.CreateSymbolicLink(_t["real/a"], _t["outside"]); // where the source has the directory a/

        var without = Sync(_t["src"], _t["dst-link"]);
        without.AssertExit(3); // the rest was synced
        Assert.Contains("is a symbolic link where the source has a directory", without.ToString());
        Assert.Equal("not the source's", File.ReadAllText(_t["outside/x.txt"]));

        var r = Sync("--delete", _t["src"], _t["dst-link"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        AssertMirror(_t["src"], _t["real"]);
        Assert.NotNull(new FileInfo(_t["dst-link"]).LinkTarget);
        Assert.Equal(["keep", "x.txt"], Directory.EnumerateFileSystemEntries(_t["outside"]).Select(p => Path.GetFileName(p)!).Order().ToArray());
        Assert.Equal("not the source's", File.ReadAllText(_t["outside/x.txt"]));
    }
}
