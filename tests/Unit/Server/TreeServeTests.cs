using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Server;

/// <summary>
/// What a sync changes on a server's tree (Features.Tree): SetMeta, Remove, Rename and Link. Offered only to our own
/// clients; every path is taken as written, never through a link, and nothing outside the root or the root itself
/// is ever touched.
/// </summary>
public sealed class TreeServeTests : IDisposable
{
    private readonly TempDir _t = new();
    private readonly string _root;
    private readonly string _outside;

    public TreeServeTests()
    {
        _root = Directory.CreateDirectory(_t["root"]).FullName;
        _outside = Directory.CreateDirectory(_t["outside"]).FullName;
        File.WriteAllText(Path.Combine(_outside, "keep.txt"), "outside");
        Directory.CreateDirectory(Path.Combine(_outside, "dir"));
        File.WriteAllText(Path.Combine(_outside, "dir", "f"), "outside");
    }

    public void Dispose() => _t.Dispose();

    private string R(string rel) => Path.Combine(_root, rel);

    private ServeConnection Open(byte caps = Caps.Extended)
    {
        var c = ServeConnection.InProcess(_root);
        var welcome = c.Handshake(caps);
        Assert.Equal(caps == Caps.Extended ? Features.Supported & ~Features.Resident & ~(Bcmr.Engine.Platform.AesHardware.Present ? 0 : Features.AesHardware) : 0u, welcome.Features);
        return c;
    }

    private static void Ok(ServeConnection c, Message request)
    {
        c.Send(request);
        var reply = c.Receive();
        Assert.True(reply is OkResponse, reply is ErrorResponse e ? e.Text : reply.ToString());
    }

    private static string Refused(ServeConnection c, Message request)
    {
        c.Send(request);
        return Assert.IsType<ErrorResponse>(c.Receive()).Text;
    }

    private void AssertOutsideUntouched()
    {
        Assert.Equal("outside", File.ReadAllText(Path.Combine(_outside, "keep.txt")));
        Assert.Equal("outside", File.ReadAllText(Path.Combine(_outside, "dir", "f")));
    }

    [Fact]
    public void A_bcmr_06_client_is_offered_no_features_and_the_messages_are_refused()
    {
        File.WriteAllText(R("a.txt"), "a");
        using var c = Open(caps: 0);
        Assert.Contains("0x15", Refused(c, new RemoveRequest("a.txt", false)));
        Assert.True(File.Exists(R("a.txt")));
    }

    [Fact]
    public void SetMeta_gives_a_file_its_mtime_to_the_nanosecond_and_its_mode()
    {
        File.WriteAllText(R("a.txt"), "a");
        using var c = Open();
        Ok(c, new SetMetaRequest("a.txt", 1_600_000_000, 123_456_789, 0x1A4 /* 0644 */ & 0x180 /* 0600 */));
        var meta = Bcmr.Engine.Platform.Fs.Lstat(R("a.txt"));
        Assert.Equal(1_600_000_000, meta.MtimeSec);
        Assert.Equal(123_456_789u, meta.MtimeNsec);
        Assert.Equal(0x180u, meta.Mode & 0xFFFu);
        Ok(c, new SetMetaRequest("a.txt", 1_500_000_000, 0, SetMetaRequest.KeepMode));
        meta = Bcmr.Engine.Platform.Fs.Lstat(R("a.txt"));
        Assert.Equal(1_500_000_000, meta.MtimeSec);
        Assert.Equal(0x180u, meta.Mode & 0xFFFu);
        Assert.Contains("No such file", Refused(c, new SetMetaRequest("none.txt", 1, 0, SetMetaRequest.KeepMode)));
    }

    [Fact]
    public void Remove_deletes_files_links_as_links_and_directories_whole_only_when_asked()
    {
        Directory.CreateDirectory(R("d/e"));
        File.WriteAllText(R("d/e/f"), "f");
        File.WriteAllText(R("a.txt"), "a");
        File.CreateSymbolicLink(R("out-link"), _outside);
        File.CreateSymbolicLink(R("file-link"), Path.Combine(_outside, "keep.txt"));
        using var c = Open();
        Ok(c, new RemoveRequest("a.txt", false));
        Assert.False(File.Exists(R("a.txt")));
        Ok(c, new RemoveRequest("a.txt", false)); // gone already: nothing to do
        Ok(c, new RemoveRequest("out-link", true));
        Ok(c, new RemoveRequest("file-link", false));
        Assert.False(Path.Exists(R("out-link")) || new FileInfo(R("out-link")).LinkTarget is not null);
        Assert.Null(new FileInfo(R("file-link")).LinkTarget);
        AssertOutsideUntouched();
        Assert.Contains("not empty", Refused(c, new RemoveRequest("d", false)));
        Assert.True(File.Exists(R("d/e/f")));
        Ok(c, new RemoveRequest("d", true));
        Assert.False(Directory.Exists(R("d")));
    }

    [Theory]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("/")]
    [InlineData("..")]
    [InlineData("../outside/keep.txt")]
    [InlineData("sub/../../outside/keep.txt")]
    [InlineData("link/f")]
    [InlineData("link/dir")]
    public void Remove_refuses_the_root_dot_dot_paths_outside_and_paths_through_a_link(string path)
    {
        Directory.CreateDirectory(R("sub"));
        File.CreateSymbolicLink(R("link"), _outside);
        File.WriteAllText(R("canary"), "c");
        using var c = Open();
        var text = Refused(c, new RemoveRequest(path == "/" ? _root : path, true));
        Assert.Matches("refused|outside", text);
        AssertOutsideUntouched();
        Assert.True(File.Exists(R("canary")));
        Assert.True(Directory.Exists(_root));
    }

    [Fact]
    public void A_link_inside_the_root_to_a_directory_inside_it_is_not_a_way_into_that_directory()
    {
        Directory.CreateDirectory(R("real"));
        File.WriteAllText(R("real/f"), "f");
        File.CreateSymbolicLink(R("alias"), R("real"));
        using var c = Open();
        Assert.Contains("symbolic link", Refused(c, new RemoveRequest("alias/f", false)));
        Assert.Contains("symbolic link", Refused(c, new RenameRequest("alias/f", "moved")));
        Assert.Contains("symbolic link", Refused(c, new SetMetaRequest("alias/f", 1, 0, 0)));
        Assert.True(File.Exists(R("real/f")));
    }

    [Fact]
    public void Rename_and_Link_keep_a_backup_creating_its_directories_and_never_leave_the_root()
    {
        Directory.CreateDirectory(R("d"));
        File.WriteAllText(R("d/f"), "old");
        File.WriteAllText(R("g"), "g");
        using var c = Open();
        Ok(c, new LinkRequest("d/f", ".backup/d/f"));
        Assert.Equal("old", File.ReadAllText(R(".backup/d/f")));
        Assert.Equal("old", File.ReadAllText(R("d/f")));
        Ok(c, new LinkRequest("g", ".backup/d/f")); // replaces what is there
        Assert.Equal("g", File.ReadAllText(R(".backup/d/f")));
        Ok(c, new RenameRequest("d", ".backup/moved/d"));
        Assert.False(Directory.Exists(R("d")));
        Assert.Equal("old", File.ReadAllText(R(".backup/moved/d/f")));
        Assert.Matches("refused|outside", Refused(c, new RenameRequest("g", "../outside/g")));
        Assert.Matches("refused|outside", Refused(c, new LinkRequest("../outside/keep.txt", "stolen")));
        Assert.Contains("Is a directory", Refused(c, new LinkRequest(".backup", "x")));
        Assert.False(File.Exists(R("stolen")));
        Assert.False(File.Exists(Path.Combine(_outside, "g")));
        AssertOutsideUntouched();
    }

    /// <summary>A server without a root jail (root "/", as over ssh without --root) pins nothing: only the check that no
    /// component on the way is a link keeps a delete from reaching through one.</summary>
    [Fact]
    public void Without_a_root_jail_a_path_through_a_link_is_still_refused()
    {
        Directory.CreateDirectory(_t["real"]);
        File.WriteAllText(_t["real/f"], "f");
        File.CreateSymbolicLink(_t["alias"], _t["real"]);
        using var c = ServeConnection.InProcess("/");
        c.Handshake(Caps.Extended);
        Assert.Contains("symbolic link", Refused(c, new RemoveRequest(_t["alias"] + "/f", false)));
        Assert.Contains("symbolic link", Refused(c, new RenameRequest(_t["alias"] + "/f", _t["moved"])));
        Assert.True(File.Exists(_t["real/f"]));
        Assert.False(File.Exists(_t["moved"]));
    }

    /// <summary>Without a jail a session remembers the directories it has walked (a tree upload costs one lstat per
    /// file); a remove or rename must not trust that memory: a directory the session wrote into a moment ago, swapped
    /// for a link since, is still found and refused.</summary>
    [Fact]
    public void Without_a_root_jail_a_directory_walked_before_and_swapped_for_a_link_since_is_refused()
    {
        Directory.CreateDirectory(_t["real/sub"]);
        File.WriteAllText(_t["real/sub/f"], "f");
        Directory.CreateDirectory(_t["d/sub"]);
        using var c = ServeConnection.InProcess("/");
        c.Handshake(Caps.Extended);
        Assert.IsType<OkResponse>(c.Put(_t["d"] + "/sub/f", "new"u8.ToArray()));
        Ok(c, new SetMetaRequest(_t["d"] + "/sub/f", 1, 0, SetMetaRequest.KeepMode));
        Directory.Delete(_t["d"], recursive: true);
        File.CreateSymbolicLink(_t["d"], _t["real"]);
        Assert.Contains("symbolic link", Refused(c, new RemoveRequest(_t["d"] + "/sub/f", false)));
        Assert.Contains("symbolic link", Refused(c, new RenameRequest(_t["d"] + "/sub/f", _t["moved"])));
        Assert.Equal("f", File.ReadAllText(_t["real/sub/f"]));
        Assert.False(File.Exists(_t["moved"]));
    }
}
