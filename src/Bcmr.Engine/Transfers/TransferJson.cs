using System.Text.Json;
using Bcmr.Engine.Local;

namespace Bcmr.Engine.Transfers;

/// <summary>
/// The JSON shape of a file result and of a transfer's result: bcmr's "file" and "result" lines, shared by the CLI's
/// --json output and by the log files of --log and -LogPath, so that one parser reads them all. Written by hand with
/// Utf8JsonWriter (no reflection, so the Native AOT build keeps it); paths keep their characters (relaxed escaping).
/// </summary>
public static class TransferJson
{
    public static readonly JsonWriterOptions Options = new()
    {
        Indented = false,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static void WriteFile(Utf8JsonWriter w, CopyResult r)
    {
        w.WriteString("type", "file");
        w.WriteString("status", r.Status switch
        {
            CopyStatus.Copied => "copied", CopyStatus.Moved => "moved", CopyStatus.Skipped => "skipped",
            CopyStatus.DryRun => "dry_run", _ => "failed",
        });
        w.WriteString("source", r.Source);
        w.WriteString("destination", r.Destination);
        w.WriteString("kind", r.Kind.ToString().ToLowerInvariant());
        w.WriteNumber("bytes", r.Bytes);
        if (r.Blake3 is null) w.WriteNull("blake3"); else w.WriteString("blake3", r.Blake3);
        w.WriteString("method", r.Method.ToString().ToLowerInvariant());
        w.WriteNumber("duration_secs", Math.Round(r.Duration.TotalSeconds, 6));
        w.WriteString("transport", r.Transport);
        w.WriteNumber("wire_bytes", r.WireBytes);
        w.WriteNumber("dedup_blocks", r.DedupBlocks);
        if (r.Connections > 1) w.WriteNumber("connections", r.Connections);
        if (r.Resume is { } decision)
        {
            w.WriteString("resume", decision switch
            {
                ResumeDecision.Resumed => "resumed", ResumeDecision.AlreadyComplete => "already_complete",
                ResumeDecision.StartedOver => "started_over", _ => "fresh",
            });
            w.WriteNumber("resumed_from", r.ResumedFrom);
            if (r.ResumeCompared is { } compared) w.WriteString("resume_compared", compared);
            w.WriteNumber("resume_check_bytes", r.ResumeCheckBytes);
            w.WriteNumber("resume_check_secs", Math.Round(r.ResumeCheckTime.TotalSeconds, 6));
        }
        if (r.Message is not null) w.WriteString(r.Status == CopyStatus.Failed ? "error" : "message", r.Message);
        if (r.ErrorCode is { } code) w.WriteString("error_code", code.ToString());
    }

    /// <param name="exitCode">The CLI's exit code; null where there is none (the cmdlets).</param>
    public static void WriteResult(Utf8JsonWriter w, string operation, TransferSummary? s, string? error, int? exitCode)
    {
        w.WriteString("type", "result");
        w.WriteString("status", error is null ? "success" : "error");
        w.WriteString("operation", operation);
        w.WriteNumber("bytes_total", s?.Bytes ?? 0);
        w.WriteNumber("duration_secs", Math.Round(s?.Duration.TotalSeconds ?? 0, 6));
        w.WriteNumber("avg_speed_bps", Math.Round(s?.BytesPerSecond ?? 0));
        if (error is null) w.WriteNull("error"); else w.WriteString("error", error);
        w.WriteNumber("files", s?.Files ?? 0);
        w.WriteNumber("skipped", s?.Skipped ?? 0);
        w.WriteNumber("failed", s?.Failed ?? 0);
        w.WriteNumber("directories", s?.Directories ?? 0);
        w.WriteString("transport", s?.Transport ?? "local");
        w.WriteNumber("wire_bytes", s?.WireBytes ?? 0);
        w.WriteNumber("dedup_blocks", s?.DedupBlocks ?? 0);
        if (exitCode is { } exit) w.WriteNumber("exit_code", exit);
    }

    /// <summary>What went wrong overall, in one line, or null for a transfer that did everything it was asked.</summary>
    public static string? ErrorOf(TransferSummary s) =>
        s.Fatal?.Message
        ?? (s.Cancelled ? "interrupted" : s.Failed > 0 ? $"{s.Failed} item(s) failed; first: {s.Failures[0].Message}" : null);
}

/// <summary>
/// --log FILE / -LogPath: appends one JSON line per file and one result line per run to a file, each with the time
/// (UTC, ISO 8601) and the operation, so that a scheduled task keeps a record that <c>Get-Content | ConvertFrom-Json</c>
/// or <c>jq</c> reads. Never truncates; safe to call from the engine's worker threads.
/// </summary>
public sealed class TransferLog : IDisposable
{
    private readonly object _lock = new();
    private readonly FileStream _file;
    private readonly Utf8JsonWriter _writer;
    private readonly string _operation;

    private TransferLog(FileStream file, string operation)
    {
        _file = file;
        _operation = operation;
        _writer = new Utf8JsonWriter(file, TransferJson.Options);
    }

    /// <summary>Opens (creating if needed) <paramref name="path"/> for appending; a file that cannot be opened is an
    /// error before anything is copied.</summary>
    public static TransferLog Open(string path, string operation)
    {
        try
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(path));
            if (dir is not null && !Directory.Exists(dir))
                throw new BcmrException(BcmrErrorCode.NotFound, path, $"log file {path}: its directory {dir} does not exist");
            return new TransferLog(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete), operation);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var inner = BcmrException.FromIo(e, path);
            throw new BcmrException(inner.Code, path, $"log file {inner.Message}", e);
        }
    }

    public void File(CopyResult r) => Line(w =>
    {
        w.WriteString("operation", _operation);
        TransferJson.WriteFile(w, r);
    });

    public void Result(TransferSummary? s, string? error, int? exitCode = null) =>
        Line(w => TransferJson.WriteResult(w, _operation, s, error, exitCode));

    private void Line(Action<Utf8JsonWriter> body)
    {
        lock (_lock)
        {
            _writer.Reset();
            _writer.WriteStartObject();
            _writer.WriteString("time", DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture));
            body(_writer);
            _writer.WriteEndObject();
            _writer.Flush();
            _file.Write("\n"u8);
            _file.Flush();
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _writer.Dispose();
            _file.Dispose();
        }
    }
}
