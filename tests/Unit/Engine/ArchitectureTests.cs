using System.Text.RegularExpressions;
using Bcmr.Tests.Module;

namespace Bcmr.Tests.Engine;

/// <summary>
/// The layering of shared/DESIGN.md, checked on the source: a folder of the engine may use only the layers above it
/// in <see cref="Layers"/> (and itself), and the client and the server meet only in the protocol. A use that has to break it for a while is listed in <see cref="KnownDebt"/>
/// (none today): a new one fails this test, and so does an entry that is no longer needed, so the list stays true.
/// </summary>
public class ArchitectureTests
{
    private static readonly string[] Layers = ["Platform", "Hashing", "Codecs", "Local", "Protocol", "Server", "Client", "Sync", "Transfers"];

    /// <summary>Never, whatever the order: the server and the client meet only in Protocol/.</summary>
    private static readonly (string From, string To)[] Apart = [("Client", "Server")];

    /// <summary>"folder/file: layer" of each use that breaks the order today.</summary>
    private static readonly HashSet<string> KnownDebt = [];

    private static readonly Regex Use = new(@"(?:using\s+Bcmr\.Engine\.|\bBcmr\.Engine\.|(?<![\w.])(?=(?:" + string.Join('|', Layers) + @")\.[A-Z]))(" + string.Join('|', Layers) + @")\b");

    [Fact]
    public void Every_engine_folder_uses_only_the_layers_above_it()
    {
        var engine = Path.Combine(PublishedModule.RepoRoot, "src", "Bcmr.Engine");
        var found = new HashSet<string>();
        foreach (var layer in Layers)
        {
            int rank = Array.IndexOf(Layers, layer);
            foreach (var file in Directory.EnumerateFiles(Path.Combine(engine, layer), "*.cs", SearchOption.AllDirectories))
            {
                var rel = Path.GetRelativePath(engine, file).Replace('\\', '/');
                var code = string.Join('\n', File.ReadLines(file).Where(l => !l.TrimStart().StartsWith("//", StringComparison.Ordinal)));
                foreach (Match m in Use.Matches(code))
                {
                    var used = m.Groups[1].Value;
                    if (Array.IndexOf(Layers, used) > rank || Apart.Contains((layer, used))) found.Add($"{rel}: {used}");
                }
            }
        }
        var added = found.Except(KnownDebt).Order().ToList();
        var gone = KnownDebt.Except(found).Order().ToList();
        Assert.True(added.Count == 0, "uses that break the layering of shared/DESIGN.md:\n" + string.Join('\n', added));
        Assert.True(gone.Count == 0, "no longer needed, remove from KnownDebt:\n" + string.Join('\n', gone));
    }
}
