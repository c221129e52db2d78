using System.CommandLine;
using System.Text.Json;
using Bcmr.Cli.Output;
using Bcmr.Engine;
using Bcmr.Engine.Sync;
using Bcmr.Engine.Transfers;

namespace Bcmr.Cli;

/// <summary><c>bcmr sync [options] SRC DST</c>: make DST's tree match SRC's (rsync's <c>SRC/ DST/</c>).</summary>
internal static class SyncCommand
{
    public static Command Create(EngineSettings settings)
    {
        var cmd = new Command("sync",
            "Make DST's tree match SRC's, a directory: the contents of SRC go into DST (rsync's 'SRC/ DST/'; DST is created when missing). " +
            "New files are copied, changed ones (size or modification time; with -c, BLAKE3) replaced through a temporary name and a rename, " +
            "equal ones left alone; times and modes are kept, so the next run finds nothing to do. With --delete, what DST has and SRC " +
            "lacks is removed, after every copy succeeded (none when any failed). Either side may be host:path.\n" + ExitCodes.HelpText);
        var paths = new Argument<string[]>("paths") { Description = "SRC DST (a directory and where its contents go).", Arity = ArgumentArity.OneOrMore };
        var delete = new Option<bool>("--delete") { Description = "Remove entries of DST that SRC lacks (links as links, never followed), only after every copy succeeded." };
        var deleteExcluded = new Option<bool>("--delete-excluded") { Description = "With --delete, also remove DST's entries that -e excludes (otherwise they are kept, and so is what holds them)." };
        var maxDelete = new Option<int?>("--max-delete") { Description = "With --delete: when more than N entries would be removed, remove none and fail.", HelpName = "N" };
        maxDelete.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, out var n) && n < 0) r.AddError("--max-delete must be 0 or more");
        });
        var backupDir = new Option<string?>("--backup-dir")
        {
            Description = "Move what a sync replaces or removes into DIR (the same relative path under it) instead of losing it; a relative DIR is inside DST, and neither it nor the directories holding it are synced or removed. An earlier backup of the same name is kept as NAME.~N~ (the plain name is the newest).",
            HelpName = "DIR",
        };
        var checksum = new Option<bool>("--checksum", "-c") { Description = "Compare files of equal size by BLAKE3 instead of modification time (each side hashes its own; no file data crosses the wire to compare)." };
        var t = new TransferOptions();
        cmd.Add(paths);
        foreach (var o in new Option[] { delete, deleteExcluded, maxDelete, backupDir, checksum }.Concat(t.All)) cmd.Add(o);

        cmd.SetAction((parse, ct) =>
        {
            bool json = parse.GetValue(Program.Json);
            var all = parse.GetValue(paths) ?? [];
            if (all.Length != 2)
            {
                Console.Error.WriteLine("bcmr: sync: needs exactly a source and a destination (usage: bcmr sync [options] SRC DST)");
                return Task.FromResult(ExitCodes.Usage);
            }
            CopyRequest transfer;
            try { transfer = t.Request(parse, settings); }
            catch (BcmrException e)
            {
                Console.Error.WriteLine($"bcmr: sync: {e.Message}");
                return Task.FromResult(ExitCodes.Usage);
            }
            var request = new SyncRequest
            {
                Source = all[0], Destination = all[1],
                Delete = parse.GetValue(delete), DeleteExcluded = parse.GetValue(deleteExcluded), MaxDelete = parse.GetValue(maxDelete),
                BackupDirectory = parse.GetValue(backupDir), Checksum = parse.GetValue(checksum),
                DryRun = transfer.DryRun, Excludes = transfer.Excludes, Transfer = transfer with { DryRun = false },
            };
            if (request.DeleteExcluded && !request.Delete)
            {
                Console.Error.WriteLine("bcmr: sync: --delete-excluded needs --delete");
                return Task.FromResult(ExitCodes.Usage);
            }
            return Task.FromResult(Run(request, json, parse.GetValue(t.Quiet), parse.GetValue(t.Verbose), ct));
        });
        return cmd;
    }

    private static int Run(SyncRequest request, bool json, bool quiet, bool verbose, CancellationToken ct)
    {
        using var jsonOut = json ? new JsonOutput() : null;
        var human = json ? null : new HumanOutput(quiet, verbose);
        IProgress<TransferProgress>? progress = json ? jsonOut : human!.WantsProgress ? human : null;
        void OnAction(SyncAction a)
        {
            if (json) jsonOut!.Line(w => WriteAction(w, a));
            else if (a.Status == SyncStatus.Failed) human!.Error(a.Message ?? $"{a.Destination}: failed");
            else if (verbose || request.DryRun)
                human!.Line($"{(request.DryRun ? "would " : "")}{a.Verb,-6} {a.ReasonText,-10} {a.Path}{(a.Kind == Engine.Platform.EntryKind.Directory ? "/" : "")}" +
                    (a.Status == SyncStatus.Declined ? " (kept)" : a.Status == SyncStatus.Skipped ? " (skipped)" : ""), toStdout: true);
        }
        SyncSummary summary;
        try { summary = SyncEngine.Run(request, progress, OnAction, ct); }
        catch (OperationCanceledException) { summary = new SyncSummary { Cancelled = true }; }
        catch (BcmrException e)
        {
            int code = e.Code == BcmrErrorCode.InvalidArgument ? ExitCodes.Usage : ExitCodes.Failure;
            if (json) jsonOut!.Line(w => { w.WriteString("type", "result"); w.WriteString("operation", "sync"); w.WriteString("status", "error"); w.WriteString("error", e.Message); w.WriteNumber("exit_code", code); });
            else human!.Error($"sync: {e.Message}");
            return code;
        }
        int exit = summary.Cancelled ? ExitCodes.Interrupted
            : summary.Fatal is not null ? ExitCodes.Failure
            : summary.Failed > 0 ? (summary.Copied + summary.Updated + summary.Deleted > 0 ? ExitCodes.Partial : ExitCodes.Failure)
            : summary.DeletesSkipped is not null ? ExitCodes.Failure
            : ExitCodes.Success;
        var error = summary.Fatal?.Message ?? summary.DeletesSkipped;
        if (json) jsonOut!.Line(w => WriteSummary(w, summary, error, exit));
        else
        {
            if (summary.Fatal is not null) human!.Error(summary.Fatal.Message);
            else if (summary.DeletesSkipped is not null) human!.Error(summary.DeletesSkipped);
            if (summary.Cancelled) human!.Error("interrupted; temporary files removed (run the same sync again to finish)");
            if (!quiet)
                human!.Line($"{(summary.DryRun ? "dry run: would have " : "")}" +
                    $"copied {summary.Copied}, updated {summary.Updated}, deleted {summary.Deleted}, unchanged {summary.Unchanged}" +
                    (summary.Failed > 0 ? $", failed {summary.Failed}" : "") + $" ({Units.Bytes(summary.Bytes)}, {summary.Duration.TotalSeconds:0.00} s)", toStdout: false);
        }
        return exit;
    }

    private static void WriteAction(Utf8JsonWriter w, SyncAction a)
    {
        w.WriteString("type", "action");
        w.WriteString("action", a.Verb);
        w.WriteString("reason", a.ReasonText);
        w.WriteString("path", a.Path);
        w.WriteString("kind", a.Kind.ToString().ToLowerInvariant());
        w.WriteString("status", a.Status.ToString().ToLowerInvariant());
        if (a.Source is not null) w.WriteString("source", a.Source);
        w.WriteString("destination", a.Destination);
        if (a.Action != SyncActionKind.Delete) w.WriteNumber("bytes", a.Bytes); else w.WriteNumber("entries", a.Entries);
        if (a.Action != SyncActionKind.Delete && a.Status == SyncStatus.Done) w.WriteNumber("wire_bytes", a.WireBytes);
        if (a.Blake3 is not null) w.WriteString("blake3", a.Blake3);
        if (a.ResumedFrom > 0) w.WriteNumber("resumed_from", a.ResumedFrom);
        if (a.Backup is not null) w.WriteString("backup", a.Backup);
        if (a.Message is not null) w.WriteString("message", a.Message);
        if (a.ErrorCode is { } code) w.WriteString("error_code", code.ToString());
    }

    private static void WriteSummary(Utf8JsonWriter w, SyncSummary s, string? error, int exit)
    {
        w.WriteString("type", "result");
        w.WriteString("operation", "sync");
        w.WriteString("status", exit == 0 ? "success" : s.Cancelled ? "interrupted" : "error");
        w.WriteBoolean("dry_run", s.DryRun);
        w.WriteNumber("copied", s.Copied);
        w.WriteNumber("updated", s.Updated);
        w.WriteNumber("deleted", s.Deleted);
        w.WriteNumber("unchanged", s.Unchanged);
        w.WriteNumber("failed", s.Failed);
        w.WriteNumber("bytes", s.Bytes);
        w.WriteNumber("wire_bytes", s.WireBytes);
        w.WriteNumber("duration_secs", Math.Round(s.Duration.TotalSeconds, 3));
        w.WriteString("transport", s.Transport);
        if (s.DeletesSkipped is not null) w.WriteString("deletes_skipped", s.DeletesSkipped);
        if (error is not null) w.WriteString("error", error); else w.WriteNull("error");
        w.WriteNumber("exit_code", exit);
    }
}
