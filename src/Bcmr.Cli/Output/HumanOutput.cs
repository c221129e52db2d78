using Bcmr.Engine.Platform;
using System.Globalization;
using Bcmr.Engine.Transfers;

namespace Bcmr.Cli.Output;

/// <summary>
/// What a person sees: a live one-line progress display on stderr when it is a terminal (redrawn at most 5 times
/// a second), plain progress lines at most once a second otherwise, errors as they happen, -v lines on stdout,
/// and one summary line at the end. All writes go through one lock because results arrive from worker threads.
/// </summary>
internal sealed class HumanOutput : IProgress<TransferProgress>
{
    private readonly object _lock = new();
    private readonly bool _quiet, _verbose, _live;
    private readonly TextWriter _err = Console.Error, _out = Console.Out;
    private bool _lineDrawn;
    private TimeSpan _lastPlain;

    public HumanOutput(bool quiet, bool verbose)
    {
        _quiet = quiet;
        _verbose = verbose;
        _live = !quiet && !Console.IsErrorRedirected;
    }

    public bool WantsProgress => !_quiet;

    public void Report(TransferProgress p)
    {
        if (_quiet || p.Final) { ClearLine(); return; }
        lock (_lock)
        {
            if (_live)
            {
                var line = Format(p);
                int width = TerminalWidth();
                if (line.Length > width - 1) line = line[..(width - 1)];
                _err.Write("\r\u001b[2K" + line);
                _lineDrawn = true;
            }
            else if (p.Elapsed - _lastPlain >= TimeSpan.FromSeconds(1)) // also keeps sub-second copies silent
            {
                _lastPlain = p.Elapsed;
                _err.WriteLine("bcmr: " + Format(p));
            }
        }
    }

    private static string Format(TransferProgress p)
    {
        var eta = p.Eta is { } e ? " ETA " + Units.Duration(e) : "";
        var file = p.CurrentFile is null ? "" : "  " + p.CurrentFile + (p.ActiveFiles.Count > 1 ? $" (+{p.ActiveFiles.Count - 1} more)" : "");
        return string.Format(CultureInfo.InvariantCulture, "{0,5:0.0}% {1} / {2}  {3}/{4} files  {5}/s{6}{7}",
            p.Percent, Units.Bytes(p.BytesDone), Units.Bytes(p.BytesTotal), p.FilesDone, p.FilesTotal,
            Units.Bytes(p.BytesPerSecond), eta, file);
    }

    public void OnResult(CopyResult r)
    {
        lock (_lock)
        {
            switch (r.Status)
            {
                case CopyStatus.Failed:
                case CopyStatus.Skipped:
                    ClearLineLocked();
                    _err.WriteLine("bcmr: " + r.Message);
                    break;
                case CopyStatus.DryRun:
                    _out.WriteLine($"would {(r.Kind == Engine.Platform.EntryKind.Directory ? "create" : "copy")} '{r.Source}' -> '{r.Destination}'");
                    break;
                default:
                    if (r.Message is not null && !_quiet)
                    {
                        ClearLineLocked();
                        _err.WriteLine("bcmr: " + r.Message);
                    }
                    if (_verbose)
                    {
                        ClearLineLocked();
                        _out.WriteLine(r.Blake3 is null ? $"'{r.Source}' -> '{r.Destination}'" : $"'{r.Source}' -> '{r.Destination}'  blake3:{r.Blake3}");
                    }
                    break;
            }
            if (_verbose && r.Warnings is { } warnings)
                foreach (var w in warnings) _err.WriteLine("bcmr: warning: " + w);
        }
    }

    public void Error(string message)
    {
        lock (_lock)
        {
            ClearLineLocked();
            _err.WriteLine("bcmr: " + message);
        }
    }

    public void Summary(TransferSummary s, bool dryRun)
    {
        ClearLine();
        if (_quiet) return;
        var verb = dryRun ? "would " + s.Operation : s.Operation == "move" ? "moved" : "copied";
        _err.WriteLine(string.Format(CultureInfo.InvariantCulture,
            "bcmr: {0} {1} file{2} ({3}) in {4}, {5}/s; {6} skipped, {7} failed{8}",
            verb, s.Files, s.Files == 1 ? "" : "s", Units.Bytes(s.Bytes), Units.Duration(s.Duration),
            Units.Bytes(s.BytesPerSecond), s.Skipped, s.Failed, s.Cancelled ? "; interrupted" : ""));
    }

    private void ClearLine() { lock (_lock) ClearLineLocked(); }

    /// <summary>A line of another command's own (sync's actions, its summary), after the live progress line is cleared.</summary>
    public void Line(string text, bool toStdout)
    {
        lock (_lock)
        {
            ClearLineLocked();
            (toStdout ? Console.Out : _err).WriteLine(text);
        }
    }

    private void ClearLineLocked()
    {
        if (!_lineDrawn) return;
        _err.Write("\r\u001b[2K");
        _lineDrawn = false;
    }

    private static int TerminalWidth()
    {
        try { return Console.WindowWidth > 20 ? Console.WindowWidth : 100; }
        catch (IOException) { return 100; }
    }
}
