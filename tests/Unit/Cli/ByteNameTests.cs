using Bcmr.Tests.Infrastructure;
using Bcmr.Tests.Module;

namespace Bcmr.Tests.Cli;

/// <summary>
/// Names are bytes on Linux: a name that is not UTF-8, and a path longer than PATH_MAX (4096 bytes), copy as cp
/// copies them (issue 16 item 13). Before, .NET's string conversion turned the bytes into U+FFFD (No such file) and
/// every system call refused the deep path (File name too long). The tree is made and compared by a Python script
/// that works on bytes and descriptors (tests/Unit/Cli/Oracles/bytetree.py), independent of the program under test.
/// </summary>
public class ByteNameTests
{
    internal static readonly string Oracle = Path.Combine(PublishedModule.RepoRoot, "tests", "Unit", "Cli", "Oracles", "bytetree.py");

    internal static void Make(string root) => Tool.Output("python3", Oracle, "make", root);

    internal static string Digest(string root) => Tool.Output("python3", Oracle, "digest", root);

    [RequiresToolsFact("python3", "python3")]
    public void Copy_and_move_of_a_tree_with_non_UTF8_names_and_a_path_over_PATH_MAX_keep_every_byte()
    {
        using var t = new TempDir();
        Make(t["s"]);
        var expected = Digest(t["s"]);
        Assert.Contains("626164fffe6e616d652e747874 file", expected); // bad\xff\xfename.txt
        Assert.True(expected.Split('\n').Max(l => l.Split(' ')[0].Length / 2) > 4096, "the oracle made no path over PATH_MAX");

        var copy = BcmrRunner.Run("copy", "-r", t["s"], t["copy"]);
        Assert.True(copy.ExitCode == 0, copy.ToString());
        Assert.Equal(expected, Digest(t["copy"]));

        var move = BcmrRunner.Run("move", t["copy"], t["moved"]);
        Assert.True(move.ExitCode == 0, move.ToString());
        Assert.Equal(expected, Digest(t["moved"]));
        Assert.False(Directory.Exists(t["copy"]));

        var remove = BcmrRunner.Run("remove", "-r", "-y", t["moved"]);
        Assert.True(remove.ExitCode == 0, remove.ToString());
        Assert.False(Directory.Exists(t["moved"]));
    }
}
