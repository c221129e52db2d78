using System.Text.Json;
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
            // Every file in flight (one per connection with --parallel, one per worker with -j): "file" is the newest.
            w.WriteStartArray("active");
            foreach (var f in p.ActiveFiles)
            {
                w.WriteStartObject();
                w.WriteString("file", f.Path);
                w.WriteNumber("file_size", f.Size);
                w.WriteNumber("file_progress", f.Bytes);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
    }

    public void OnResult(CopyResult r) => Line(w => TransferJson.WriteFile(w, r));

    public void Result(string operation, TransferSummary? s, string? error, int exitCode) =>
        Line(w => TransferJson.WriteResult(w, operation, s, error, exitCode));

    public void Line(Action<Utf8JsonWriter> body)
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
