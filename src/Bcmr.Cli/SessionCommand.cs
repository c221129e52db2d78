using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Bcmr.Cli.Output;
using Bcmr.Engine;
using Bcmr.Engine.Local;

namespace Bcmr.Cli;

/// <summary><c>bcmr session list|show|clear</c>: the resume sessions of interrupted copies (the same objects
/// Get-BcmrSession returns).</summary>
internal static class SessionCommand
{
    internal static Command Create(EngineSettings settings)
    {
        var command = new Command("session",
            "Resume sessions of interrupted copies (-C/-s/-a), kept in $XDG_DATA_HOME/bcmr/sessions (~/.local/share/bcmr/sessions). " +
            "A session is removed when its copy completes, and refused when older than 7 days, corrupt, or when the source changed.");

        var listDirs = new Argument<string[]>("DIR")
        {
            Description = "Also list the temporaries (.NAME.<hex>.bcmr-tmp) that killed copies left in these directories and below; " +
                "the next copy into such a directory removes them.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var list = new Command("list", "List sessions: id, progress, age, source and destination; with DIR, also the stale temporaries there.") { listDirs };
        list.SetAction(parse =>
        {
            bool json = parse.GetValue(Program.Json);
            var dirs = parse.GetValue(listDirs) ?? [];
            int rc = Print(SessionStore.Default(settings).List(), json, details: false, quietWhenEmpty: dirs.Length > 0);
            foreach (var dir in dirs)
            {
                if (!Directory.Exists(dir))
                {
                    Console.Error.WriteLine($"bcmr: session list: {dir}: not a directory");
                    rc = ExitCodes.Failure;
                    continue;
                }
                foreach (var t in StaleTemporaries.Find(dir))
                {
                    if (json)
                        JsonLine.Write(w =>
                        {
                            w.WriteString("type", "stale_temporary");
                            w.WriteString("path", t.Path);
                            w.WriteNumber("bytes", t.Bytes);
                            w.WriteNumber("modified_unix", t.Modified.ToUnixTimeSeconds());
                        });
                    else
                        Console.WriteLine($"stale temporary  {Units.Bytes(t.Bytes)}  {Units.Duration(DateTimeOffset.UtcNow - t.Modified)} ago  {t.Path}");
                }
            }
            return rc;
        });

        var showId = new Argument<string>("ID") { Description = "A session id (or its first digits), or the copy's source or destination path." };
        var show = new Command("show", "Show one session in full.") { showId };
        show.SetAction(parse =>
        {
            var found = SessionStore.Default(settings).Find(parse.GetValue(showId)!);
            if (found.Count == 0) return NotFound(parse.GetValue(showId)!);
            return Print(found, parse.GetValue(Program.Json), details: true);
        });

        var clearIds = new Argument<string[]>("ID") { Description = "Sessions to clear (ids, id prefixes or paths); none means all.", Arity = ArgumentArity.ZeroOrMore };
        var clear = new Command("clear", "Delete sessions and the partial files they describe; with no ID, all of them.") { clearIds };
        clear.SetAction(parse =>
        {
            var store = SessionStore.Default(settings);
            var ids = parse.GetValue(clearIds) ?? [];
            var targets = new List<SessionInfo>();
            foreach (var id in ids)
            {
                var found = store.Find(id);
                if (found.Count == 0) return NotFound(id);
                targets.AddRange(found);
            }
            if (ids.Length == 0) targets.AddRange(store.List());
            var removed = targets.DistinctBy(s => s.Id).ToList();
            foreach (var s in removed) store.Remove(s);
            if (parse.GetValue(Program.Json))
            {
                JsonLine.Write(w =>
                {
                    w.WriteString("type", "session_clear");
                    w.WriteNumber("removed", removed.Count);
                    w.WriteStartArray("ids");
                    foreach (var s in removed) w.WriteStringValue(s.Id);
                    w.WriteEndArray();
                });
            }
            else
            {
                Console.WriteLine($"removed {removed.Count} session{(removed.Count == 1 ? "" : "s")}");
            }
            return ExitCodes.Success;
        });

        command.Add(list);
        command.Add(show);
        command.Add(clear);
        return command;
    }

    private static int NotFound(string id)
    {
        Console.Error.WriteLine($"bcmr: session: no session matches '{id}' (see 'bcmr session list')");
        return ExitCodes.Failure;
    }

    private static int Print(IReadOnlyList<SessionInfo> sessions, bool json, bool details, bool quietWhenEmpty = false)
    {
        if (json)
        {
            foreach (var s in sessions) JsonLine.Write(w => WriteSession(w, s));
            return ExitCodes.Success;
        }
        if (sessions.Count == 0)
        {
            if (!quietWhenEmpty) Console.WriteLine("no sessions");
            return ExitCodes.Success;
        }
        foreach (var s in sessions)
        {
            if (details)
            {
                Console.WriteLine($"id:          {s.Id}");
                Console.WriteLine($"file:        {s.SessionFile}");
                if (s.Problem is not null) { Console.WriteLine($"problem:     {s.Problem}"); Console.WriteLine(); continue; }
                Console.WriteLine($"source:      {s.Source}");
                Console.WriteLine($"destination: {s.Destination}");
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "done:        {0} of {1} bytes ({2:0.0}%), {3} blocks of 4 MiB", s.BytesDone, s.TotalBytes, s.Percent, s.Blocks));
                Console.WriteLine($"partial:     {s.PartialFile}");
                Console.WriteLine($"created:     {s.Created:u}");
                Console.WriteLine($"updated:     {s.Updated:u} ({Age(s)} ago){(s.IsStale ? "; stale: the next copy will start over" : "")}");
                Console.WriteLine();
            }
            else if (s.Problem is not null)
            {
                Console.WriteLine($"{s.Id}  unusable: {s.Problem}");
            }
            else
            {
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0}  {1,5:0.0}%  {2} / {3}  {4} ago{5}  {6} -> {7}",
                    s.Id, s.Percent, Units.Bytes(s.BytesDone), Units.Bytes(s.TotalBytes), Age(s), s.IsStale ? " (stale)" : "", s.Source, s.Destination));
            }
        }
        return ExitCodes.Success;
    }

    private static string Age(SessionInfo s) => s.Age is { } a ? Units.Duration(a < TimeSpan.Zero ? TimeSpan.Zero : a) : "?";

    private static void WriteSession(Utf8JsonWriter w, SessionInfo s)
    {
        w.WriteString("type", "session");
        w.WriteString("id", s.Id);
        w.WriteString("session_file", s.SessionFile);
        if (s.Problem is not null) { w.WriteString("problem", s.Problem); return; }
        w.WriteString("source", s.Source);
        w.WriteString("destination", s.Destination);
        w.WriteNumber("bytes_done", s.BytesDone);
        w.WriteNumber("bytes_total", s.TotalBytes);
        w.WriteNumber("percent", Math.Round(s.Percent, 2));
        w.WriteNumber("blocks", s.Blocks);
        w.WriteString("partial_file", s.PartialFile);
        if (s.Created is { } c) w.WriteNumber("created_unix", c.ToUnixTimeSeconds());
        if (s.Updated is { } u) w.WriteNumber("updated_unix", u.ToUnixTimeSeconds());
        w.WriteNumber("age_secs", Math.Round(s.Age?.TotalSeconds ?? 0));
        w.WriteBoolean("stale", s.IsStale);
    }
}
