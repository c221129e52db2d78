using Bcmr.Engine;

namespace Bcmr.Tests.Infrastructure;

/// <summary>Engine settings for servers and engines a test runs in its own process: the data directory (sessions,
/// the content store, remembered hashes) in a temporary directory of this test run, never the real home's.</summary>
public static class TestSettings
{
    private static readonly string DataDirectory = TempDir.ForTheRun("bcmr-test-data-");

    public static EngineSettings Isolated { get; } = EngineSettings.Defaults with { DataDirectory = DataDirectory };
}
