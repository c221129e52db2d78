using Bcmr.Engine;
using Bcmr.Engine.Server;
using Bcmr.Tests.Infrastructure;
using CsCheck;

namespace Bcmr.Tests.Server;

/// <summary>Every path a client names resolves inside the root or is refused, whatever mix of "..", ".", "//",
/// NUL bytes and symlinks (inside, outside, dangling, looping) it holds.</summary>
public sealed class RootJailTests : IDisposable
{
    private readonly TempDir _t = new();
    private readonly string _root;
    private readonly string _outside;
    private readonly RootJail _jail;

    public RootJailTests()
    {
        _root = _t["root"];
        _outside = _t["outside"];
        Directory.CreateDirectory(Path.Combine(_root, "a", "b"));
        Directory.CreateDirectory(_outside);
        File.WriteAllText(Path.Combine(_root, "f"), "inside");
        File.WriteAllText(Path.Combine(_outside, "secret"), "outside");
        Link("in_dir", "a");
        Link("in_rel", "../root/a");
        Link("in_file", "f");
        Link("out_abs", _outside);
        Link("out_rel", "../outside");
        Link("dangling_out", Path.Combine(_outside, "nope", "x"));
        Link("dangling_in", "a/not-yet");
        Link("loop1", "loop2");
        Link("loop2", "loop1");
        Link("self", ".");
        Link("up", "..");
        Link("a/b/deep_out", "../../../outside");
        Link("a/sneaky", "../in_dir");
        _jail = new RootJail(_root);
    }

    private readonly List<string> _links = new();

    private void Link(string at, string target)
    {
        var path = Path.Combine(_root, at);
        File.CreateSymbolicLink(path, target);
        _links.Add(path);
    }

    public void Dispose()
    {
        // TempDir's clean-up walks directories recursively and .NET follows symlinked directories: remove the loops first.
        foreach (var link in _links) File.Delete(link);
        _t.Dispose();
    }

    [Theory]
    [InlineData("f", "f")]
    [InlineData("", "")]
    [InlineData(".", "")]
    [InlineData("./a//b/", "a/b")]
    [InlineData("a/../f", "f")]
    [InlineData("in_dir/b", "a/b")]
    [InlineData("in_rel/b/new", "a/b/new")]
    [InlineData("in_file", "f")]
    [InlineData("a/sneaky/b", "a/b")]
    [InlineData("self/self/f", "f")]
    [InlineData("dangling_in", "a/not-yet")]
    [InlineData("new/dir/file", "new/dir/file")]
    [InlineData("../root/f", "f")]
    public void Paths_inside_resolve_to_their_canonical_place(string client, string expected)
    {
        var want = expected.Length == 0 ? _jail.Root : _jail.Root + "/" + expected;
        Assert.Equal(want, _jail.Resolve(client));
    }

    [Fact]
    public void Absolute_paths_are_accepted_only_inside_the_root()
    {
        Assert.Equal(_jail.Root + "/f", _jail.Resolve(_root + "/f"));
        Assert.Equal(_jail.Root + "/a/b", _jail.Resolve(_root + "/in_dir/./b"));
        AssertOutside("/etc/passwd");
        AssertOutside(_outside + "/secret");
        AssertOutside("/");
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("..")]
    [InlineData("a/../../outside/secret")]
    [InlineData("out_abs")]
    [InlineData("out_abs/secret")]
    [InlineData("out_rel/new-file")]
    [InlineData("dangling_out")]
    [InlineData("up")]
    [InlineData("up/outside/secret")]
    [InlineData("a/b/deep_out/secret")]
    [InlineData("in_dir/../../outside")]
    public void Escapes_are_refused_with_the_documented_message(string client) => AssertOutside(client);

    private void AssertOutside(string client)
    {
        var e = Assert.Throws<BcmrException>(() => _jail.Resolve(client));
        Assert.Equal(BcmrErrorCode.OutsideRoot, e.Code);
        Assert.StartsWith(string.Format(RootJail.OutsideRootFormat, client, _jail.Root), e.Message);
        Assert.True(RootJail.IsOutsideRootMessage(e.Message));
    }

    [Fact]
    public void Nul_bytes_loops_and_overlong_paths_are_refused()
    {
        var nul = Assert.Throws<BcmrException>(() => _jail.Resolve("f\0../../etc/passwd"));
        Assert.Equal(BcmrErrorCode.InvalidArgument, nul.Code);
        Assert.Contains("NUL", nul.Message);
        Assert.Contains("f\\0", nul.Message);

        var loop = Assert.Throws<BcmrException>(() => _jail.Resolve("loop1/x"));
        Assert.Contains("too many levels of symbolic links", loop.Message);

        var longPath = Assert.Throws<BcmrException>(() => _jail.Resolve(string.Concat(Enumerable.Repeat("abcdefgh/", 600))));
        Assert.Equal(BcmrErrorCode.InvalidArgument, longPath.Code);
    }

    [Fact]
    public void A_root_given_through_a_symlink_is_canonical_and_both_spellings_work()
    {
        var linkToRoot = _t["root-link"];
        File.CreateSymbolicLink(linkToRoot, _root);
        var jail = new RootJail(linkToRoot);
        Assert.Equal(_jail.Root, jail.Root);
        Assert.Equal(jail.Root + "/f", jail.Resolve(linkToRoot + "/f"));
        Assert.Equal(jail.Root + "/f", jail.Resolve("f"));
    }

    [Fact]
    public void A_missing_or_file_root_is_refused()
    {
        Assert.Equal(BcmrErrorCode.NotFound, Assert.Throws<BcmrException>(() => new RootJail(_t["nope"])).Code);
        Assert.Equal(BcmrErrorCode.NotADirectory, Assert.Throws<BcmrException>(() => new RootJail(Path.Combine(_root, "f"))).Code);
    }

    private static readonly string[] Segments =
        ["a", "b", "f", "..", ".", "", "in_dir", "in_rel", "in_file", "out_abs", "out_rel", "dangling_out", "dangling_in",
         "loop1", "self", "up", "sneaky", "deep_out", "outside", "secret", "root", "new", "x\0y", "/"];

    private Gen<string> ClientPaths => Gen.Select(
        Gen.OneOf(Gen.Const(""), Gen.Const("/"), Gen.Const(_root + "/"), Gen.Const(_outside + "/")),
        Gen.Int[0, Segments.Length - 1].Array[0, 8],
        (prefix, picks) => prefix + string.Join("/", picks.Select(i => Segments[i])));

    [Fact]
    public void Generated_paths_never_resolve_outside_the_root()
    {
        ClientPaths.Sample(client =>
        {
            string resolved;
            try { resolved = _jail.Resolve(client); }
            catch (BcmrException e)
            {
                Assert.True(e.Code is BcmrErrorCode.OutsideRoot or BcmrErrorCode.InvalidArgument or BcmrErrorCode.NotADirectory,
                    $"{client}: unexpected {e.Code}: {e.Message}");
                return;
            }
            Assert.True(_jail.Contains(resolved), $"{client} resolved to {resolved}, outside {_jail.Root}");
            Assert.StartsWith(_jail.Root, resolved);
            AssertCanonical(resolved);
        }, iter: 3000);
    }

    /// <summary>No ".", ".." or empty component, and no symlink anywhere along the part that exists: the server will
    /// touch exactly this path and nothing it could redirect to.</summary>
    private static void AssertCanonical(string path)
    {
        Assert.StartsWith("/", path);
        var parts = path.Split('/')[1..];
        if (path == "/") return;
        Assert.DoesNotContain("", parts);
        Assert.DoesNotContain(".", parts);
        Assert.DoesNotContain("..", parts);
        var prefix = "";
        foreach (var part in parts)
        {
            prefix += "/" + part;
            var info = new FileInfo(prefix);
            if (!info.Exists && !Directory.Exists(prefix) && info.LinkTarget is null) break;
            Assert.True(info.LinkTarget is null, $"{prefix} is a symlink inside resolved path {path}");
        }
    }

    [RequiresToolsFact("coreutils", "realpath")]
    public void Generated_paths_resolve_as_the_kernel_does()
    {
        // realpath -m (GNU coreutils) resolves symlinks on the existing part, dangling ones included, and appends the
        // rest: the same rule. Where it lands outside the root, the jail must refuse.
        ClientPaths.Where(p => !p.Contains('\0')).Sample(client =>
        {
            var absolute = client.StartsWith('/') ? client : _jail.Root + "/" + client;
            var (code, stdout) = Tool.Run("realpath", "-m", "--", absolute);
            string? ours;
            try { ours = _jail.Resolve(client); }
            catch (BcmrException e) when (e.Message.Contains("too many levels of symbolic links"))
            {
                return; // a loop: realpath -m gives up and prints the path unresolved, we refuse
            }
            catch (BcmrException) { ours = null; }
            if (code != 0)
            {
                Assert.Null(ours);
                return;
            }
            var kernel = stdout.TrimEnd('\n');
            if (_jail.Contains(kernel)) Assert.Equal(kernel, ours);
            else Assert.Null(ours);
        }, iter: 400);
    }
}
