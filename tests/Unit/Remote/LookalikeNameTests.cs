using Bcmr.Tests.Cli;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Remote;

/// <summary>
/// A user's files named like our partial or staging files are content, in both directions and through move
/// (issue 16 item 1): before, the server hid them from listings (downloads skipped them silently) and deleted a
/// ".x.bcmr-part" when x was uploaded, so a move lost it everywhere.
/// </summary>
public class LookalikeNameTests(SshdFixture fx) : IClassFixture<SshdFixture>
{
    private RunResult Bcmr(params string[] args) => BcmrRunner.Run(args, fx.Env(), timeout: TimeSpan.FromMinutes(4));

    private static void MakeTree(string root)
    {
        Directory.CreateDirectory(root);
        ResumeTests.WriteRandom(Path.Combine(root, "x"), 5 * 1024 * 1024 + 3, 1);
        ResumeTests.WriteRandom(Path.Combine(root, ".x.bcmr-part"), 1024 * 1024, 2);
        File.WriteAllText(Path.Combine(root, ".x.0123456789ab01234567.bcmr-tmp"), "mine\n");
        File.WriteAllText(Path.Combine(root, ".x.0123456789ab.bcmr-tmp"), "mine too\n");
    }

    [SshFact]
    public void Move_up_and_copy_down_of_a_tree_with_lookalike_names_keep_every_file()
    {
        using var local = new TempDir();
        var remote = Path.Combine(fx.RemoteHome, "look-" + Guid.NewGuid().ToString("n")[..10]);
        try
        {
            MakeTree(local["src"]);
            MakeTree(local["expected"]);

            var up = Bcmr("move", "-r", local["src"], fx.Remote(remote));
            Assert.True(up.ExitCode == 0, up.ToString());
            Trees.AssertIdentical(local["expected"], remote);
            Assert.False(Directory.Exists(local["src"]) && Directory.EnumerateFileSystemEntries(local["src"]).Any());

            var down = Bcmr("copy", "-r", fx.Remote(remote), local["back"]);
            Assert.True(down.ExitCode == 0, down.ToString());
            Trees.AssertIdentical(local["expected"], local["back"]);
        }
        finally
        {
            try { Directory.Delete(remote, recursive: true); } catch (IOException) { }
        }
    }

    [SshFact]
    public void An_upload_of_x_leaves_the_users_dot_x_bcmr_part_beside_it()
    {
        using var local = new TempDir();
        var remote = Path.Combine(fx.RemoteHome, "look-" + Guid.NewGuid().ToString("n")[..10]);
        Directory.CreateDirectory(remote);
        try
        {
            var mine = Path.Combine(remote, ".x.bcmr-part");
            ResumeTests.WriteRandom(mine, 1024 * 1024, 7);
            var mineSha = Trees.Sha256(mine);
            var src = local.WriteRandom("x", 6 * 1024 * 1024, 8);
            foreach (var args in new[] { new[] { "copy" }, ["copy", "-f"], ["copy", "-C"] })
            {
                var r = Bcmr([.. args, src, fx.Remote(remote + "/")]);
                Assert.True(r.ExitCode == 0, string.Join(' ', args) + "\n" + r);
                Assert.Equal(Trees.Sha256(src), Trees.Sha256(Path.Combine(remote, "x")));
                Assert.True(File.Exists(Path.Combine(remote, ".x.bcmr-part")), string.Join(' ', args) + " deleted the user's file");
                Assert.Equal(mineSha, Trees.Sha256(mine));
            }
        }
        finally
        {
            try { Directory.Delete(remote, recursive: true); } catch (IOException) { }
        }
    }

    [SshFact]
    public void An_upload_refuses_each_name_that_is_not_UTF8_by_name_and_copies_the_rest()
    {
        using var local = new TempDir();
        var remote = Path.Combine(fx.RemoteHome, "bytes-" + Guid.NewGuid().ToString("n")[..10]);
        try
        {
            ByteNameTests.Make(local["s"]);
            var r = Bcmr("copy", "-r", local["s"], fx.Remote(remote));
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("name is not valid UTF-8", r.Stderr);
            Assert.Contains("name.txt", r.Stderr);
            Assert.Equal("valid\n", File.ReadAllText(Path.Combine(remote, "ok-ü.txt")));
            Assert.False(File.Exists(Path.Combine(remote, "bad\uFFFD\uFFFDname.txt")));
        }
        finally
        {
            try { Directory.Delete(remote, recursive: true); } catch (IOException) { }
        }
    }
}
