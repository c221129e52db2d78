using System.Text.Json;
using Bcmr.Engine.Local;
using Bcmr.Engine.Transfers;

namespace Bcmr.Cli.Output;

/// <summary>
/// --json: one JSON object per line on stdout, written as things happen: bcmr's "progress" lines (at most every
/// 200 ms) and final "result" line with its field names, plus our "file" lines, one per entry. Written by hand
/// with Utf8JsonWriter: no reflection, so the Native AOT build keeps it.
/// </summary>
internal sealed class JsonOutput : IProgress<TransferProgress>, IDisposable
{
    private readonly object _lock = new();
    private readonly Stream _stdout = Console.OpenStandardOutput();
    private readonly Utf8JsonWriter _writer;
    private static readonly byte[] NewLine = "\n"u8.ToArray();

    public JsonOutput()
    {
        _writer = new Utf8JsonWriter(_stdout, JsonLine.Options);
    }

    public void Report(TransferProgress p)
    {
        if (p.Final) return; // the result line closes the stream of events
        Line(w =>
        {
            w.WriteString("type", "progress");
            w.WriteString("operation", p.Operation);
            w.WriteNumber("bytes_done", p.BytesDone);
            w.WriteNumber("bytes_total", p.BytesTotal);
            w.WriteNumber("percent", Math.Round(p.Percent, 2));
            w.WriteNumber("speed_bps", Math.Round(p.BytesPerSecond));
            if (p.Eta is { } eta) w.WriteNumber("eta_secs", Math.Round(eta.TotalSeconds, 1)); else w.WriteNull("eta_secs");
            if (p.CurrentFile is null) w.WriteNull("file"); else w.WriteString("file", p.CurrentFile);
            w.WriteNumber("file_size", p.CurrentFileSize);
            w.WriteNumber("file_progress", p.CurrentFileBytes);
            w.WriteNumber("items_done", p.FilesDone);
            w.WriteNumber("items_total", p.FilesTotal);
        });
    }

    public void OnResult(CopyResult r) => Line(w =>
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
        if (r.Resume is { } decision)
        {
            w.WriteString("resume", decision switch
            {
                ResumeDecision.Resumed => "resumed", ResumeDecision.AlreadyComplete => "already_complete",
                ResumeDecision.StartedOver => "started_over", _ => "fresh",
            });
            w.WriteNumber("resumed_from", r.ResumedFrom);
            w.WriteNumber("resume_check_bytes", r.ResumeCheckBytes);
            w.WriteNumber("resume_check_secs", Math.Round(r.ResumeCheckTime.TotalSeconds, 6));
        }
        if (r.Message is not null) w.WriteString(r.Status == CopyStatus.Failed ? "error" : "message", r.Message);
        if (r.ErrorCode is { } code) w.WriteString("error_code", code.ToString());
    });

    public void Result(string operation, TransferSummary? s, string? error, int exitCode) => Line(w =>
    {
        w.WriteString("type", "result");
        w.WriteString("status", exitCode == 0 ? "success" : "error");
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
        w.WriteNumber("exit_code", exitCode);
    });

    private void Line(Action<Utf8JsonWriter> body)
    {
        lock (_lock)
        {
            _writer.Reset();
            _writer.WriteStartObject();
            body(_writer);
            _writer.WriteEndObject();
            _writer.Flush();
            _stdout.Write(NewLine);
            _stdout.Flush();
        }
    }

    public void Dispose() => _writer.Dispose();
}
