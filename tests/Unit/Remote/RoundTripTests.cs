using Bcmr.Tests.Infrastructure;
using Bcmr.Tests.Module;

namespace Bcmr.Tests.Remote;

/// <summary>
/// What a small copy waits for over a distant link: requests that do not depend on one another's replies go out
/// together, so the copy pays one round trip for them, not one each (bench/turns.sh measures the turns against scp's).
/// The peer is tests/Unit/Remote/FakePeer/fake_serve.py in its "pipelined" mode, a real process that says Welcome and
/// then records every request that reaches it before it would have to answer one.
/// </summary>
public class RoundTripTests
{
    private static readonly string PeerDir = Path.Combine(PublishedModule.RepoRoot, "tests", "Unit", "Remote", "FakePeer");

    [RequiresToolsFact("python3", "python3")]
    public void An_upload_of_one_file_asks_every_stat_its_plan_may_need_at_once()
    {
        using var t = new TempDir();
        var src = t.WriteRandom("small.txt", 100, 1);
        var asked = t["asked"];
        var env = new Dictionary<string, string>
        {
            ["BCMR_SSH"] = $"sh {Path.Combine(PeerDir, "fake_ssh.sh")}",
            ["BCMR_REMOTE"] = $"python3 {Path.Combine(PeerDir, "fake_serve.py")} pipelined {asked}",
        };
        var r = BcmrRunner.Run(["copy", src, "peer:/srv/in/new.txt"], env, timeout: TimeSpan.FromMinutes(1));
        Assert.NotEqual(0, r.ExitCode); // the peer never answers and goes away
        Assert.DoesNotContain("Exception", r.Stderr);
        // Stat of /srv/in/new.txt (what is it?), of /srv/in (a new name's directory must exist) and of
        // /srv/in/new.txt/small.txt (the name inside it, if it is a directory), all before the first reply.
        Assert.Equal(["0x03", "0x03", "0x03"], File.ReadAllLines(asked));
    }
}
