using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Bcmr.Cli.Output;
using Bcmr.Engine;
using Bcmr.Engine.Server;

namespace Bcmr.Cli;

/// <summary><c>bcmr cas stats|prune [--max-size MB]|clear</c>: the content store that <c>bcmr serve</c> keeps for
/// dedup uploads (the same engine calls Clear-BcmrCas makes).</summary>
internal static class CasCommand
{
    internal static Command Create(EngineSettings settings)
    {
        var command = new Command("cas",
            "The content store of 4 MiB blocks that 'bcmr serve' keeps so that repeat uploads skip blocks it already has. " +
            "Location: BCMR_CAS_DIR, else $XDG_DATA_HOME/bcmr/cas (~/.local/share/bcmr/cas). " +
            "Cap: BCMR_CAS_CAP_MB (default 1024, 0 = unbounded), enforced least recently used first before and after each dedup upload.");

        var stats = new Command("stats", "Show the store's directory, blobs, bytes and cap.");
        stats.SetAction(parse => Run(parse, "cas_stats", () =>
        {
            var s = ContentStore.Default(settings).Stats();
            return (w =>
            {
                w.WriteString("directory", s.Directory);
                w.WriteNumber("blobs", s.Blobs);
                w.WriteNumber("bytes", s.Bytes);
                w.WriteNumber("cap_bytes", s.CapBytes);
            }, string.Create(CultureInfo.InvariantCulture,
                $"{s.Directory}: {s.Blobs} blob{(s.Blobs == 1 ? "" : "s")}, {Units.Bytes(s.Bytes)} ({s.Bytes} bytes); cap {(s.CapBytes == 0 ? "none (unbounded)" : Units.Bytes(s.CapBytes))}"));
        }));

        var maxSize = new Option<long?>("--max-size")
        {
            Description = "Keep at most this many MiB (least recently used blobs go first); default: the cap (BCMR_CAS_CAP_MB).",
        };
        maxSize.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<long?>() is { } v && (v < 0 || v > long.MaxValue / (1024 * 1024)))
                r.AddError($"--max-size must be a number of MiB, 0 or more (got {v})");
        });
        var prune = new Command("prune", "Remove the least recently used blobs until the store fits in --max-size MiB (default: its cap).") { maxSize };
        prune.SetAction(parse => Run(parse, "cas_prune", () =>
        {
            var store = ContentStore.Default(settings);
            long? limit = parse.GetValue(maxSize) is { } mb ? mb * 1024 * 1024 : store.CapBytes > 0 ? store.CapBytes : null;
            var r = limit is { } l ? store.Prune(l) : store.EnforceCap();
            return (w => WriteResult(w, store, r, limit), Describe(store, r, limit is null ? "no cap set (BCMR_CAS_CAP_MB=0) and no --max-size: nothing pruned; " : ""));
        }));

        var clear = new Command("clear", "Remove every blob.");
        clear.SetAction(parse => Run(parse, "cas_clear", () =>
        {
            var store = ContentStore.Default(settings);
            var r = store.Clear();
            return (w => WriteResult(w, store, r, 0), Describe(store, r, ""));
        }));

        command.Add(stats);
        command.Add(prune);
        command.Add(clear);
        return command;
    }

    private static string Describe(ContentStore store, CasPruneResult r, string prefix) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{prefix}{store.Directory}: removed {r.BlobsFreed} blob{(r.BlobsFreed == 1 ? "" : "s")} ({Units.Bytes(r.BytesFreed)}), " +
            $"{r.BlobsLeft} left ({Units.Bytes(r.BytesLeft)})");

    private static void WriteResult(Utf8JsonWriter w, ContentStore store, CasPruneResult r, long? limit)
    {
        w.WriteString("directory", store.Directory);
        if (limit is { } l) w.WriteNumber("max_bytes", l);
        else w.WriteNull("max_bytes");
        w.WriteNumber("blobs_freed", r.BlobsFreed);
        w.WriteNumber("bytes_freed", r.BytesFreed);
        w.WriteNumber("blobs_left", r.BlobsLeft);
        w.WriteNumber("bytes_left", r.BytesLeft);
    }

    private static int Run(ParseResult parse, string type, Func<(Action<Utf8JsonWriter> Json, string Text)> body)
    {
        bool json = parse.GetValue(Program.Json);
        (Action<Utf8JsonWriter> Json, string Text) result;
        try { result = body(); }
        catch (Exception e) when (e is BcmrException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"bcmr: cas: {e.Message}");
            return ExitCodes.Failure;
        }
        if (json)
        {
            JsonLine.Write(w =>
            {
                w.WriteString("type", type);
                result.Json(w);
            });
        }
        else
        {
            Console.WriteLine(result.Text);
        }
        return ExitCodes.Success;
    }
}
