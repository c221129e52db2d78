using Bcmr.Engine;
using Bcmr.Engine.Codecs;
using Bcmr.Engine.Protocol;
using Bcmr.Engine.Server;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Server;

/// <summary>What ServeHost decides for both <c>bcmr serve</c> and <c>Start-BcmrServe</c>: the scope, the descriptors
/// and the codecs offered.</summary>
public sealed class ServeHostTests : IDisposable
{
    private readonly TempDir _t = new();

    public void Dispose() => _t.Dispose();

    [Theory]
    [InlineData("192.0.2.7 50000 198.51.100.2 22", "198.51.100.2")]
    [InlineData("::1 50000 ::1 22", "::1")]
    [InlineData("::ffff:10.0.0.1 1 ::ffff:10.0.0.2 22", "10.0.0.2")]
    [InlineData("1.2.3.4 1 0.0.0.0 22", null)]
    [InlineData("1.2.3.4 1 :: 22", null)]
    [InlineData("1.2.3.4 1 ::ffff:0.0.0.0 22", null)]
    [InlineData("1.2.3.4 1 host.example 22", null)]
    [InlineData("1.2.3.4 1 10.0.0.2", null)]
    [InlineData(null, null)]
    public void A_direct_channel_binds_the_server_address_of_SSH_CONNECTION_never_an_unspecified_one(string? sshConnection, string? expected)
    {
        Assert.Equal(expected, ServeHost.SshServerAddress(sshConnection)?.ToString());
        var options = new ServeHost { Home = _t.Path, Settings = EngineSettings.Defaults with { SshConnection = sshConnection } }.StdioOptions();
        Assert.Equal(expected, options.DirectAddress?.ToString());
        if (expected is null) Assert.Contains("SSH_CONNECTION", options.DirectRefusal);
    }

    [Fact]
    public void A_stdio_serve_with_a_root_is_jailed_there_and_created()
    {
        var host = new ServeHost { Home = _t["home"], Root = _t["jail"] };
        var o = host.StdioOptions();
        Assert.True(Directory.Exists(_t["jail"]));
        Assert.Equal(_t["jail"], o.Root);
        Assert.Null(o.Home);
        Assert.Equal(OperatingSystem.IsLinux() ? 0 : null, o.InputFd);
        Assert.Equal(OperatingSystem.IsLinux() ? 1 : null, o.OutputFd);
        Assert.Equal(ServeSession.SupportedCaps, o.Capabilities);
    }

    [Fact]
    public void A_stdio_serve_without_a_root_has_the_ssh_scope_and_a_listener_the_home_directory()
    {
        var host = new ServeHost { Home = _t["home"] };
        var stdio = host.StdioOptions();
        Assert.Equal(ServeOptions.SshScope(null, _t["home"]), (stdio.Root, stdio.Home));
        var listen = host.ListenOptions();
        Assert.Equal(_t["home"], listen.Root);
        Assert.Null(listen.Home);
        Assert.Null(listen.OutputFd);
        Assert.True(Directory.Exists(_t["home"]));
    }

    [Theory]
    [InlineData(null, Caps.Lz4 | Caps.Zstd)]
    [InlineData("", Caps.Lz4 | Caps.Zstd)]
    [InlineData("none", 0)]
    [InlineData("ZSTD", Caps.Zstd)]
    public void BCMR_COMPRESS_limits_the_codecs_offered_in_both_modes(string? value, int codecs)
    {
        var host = new ServeHost { Home = _t["home"], Root = _t["r"], Compression = ServeHost.CompressionFrom(value) };
        byte others = (byte)(ServeSession.SupportedCaps & ~(Caps.Lz4 | Caps.Zstd));
        Assert.Equal(others | codecs, host.StdioOptions().Capabilities);
        Assert.Equal(others | codecs, host.ListenOptions().Capabilities);
    }

    [Fact]
    public void An_invalid_BCMR_COMPRESS_is_an_error_naming_the_variable()
    {
        var e = Assert.Throws<BcmrException>(() => ServeHost.CompressionFrom("fast"));
        Assert.Equal(BcmrErrorCode.InvalidArgument, e.Code);
        Assert.Contains(Compression.EnvironmentVariable, e.Message);
    }
}
