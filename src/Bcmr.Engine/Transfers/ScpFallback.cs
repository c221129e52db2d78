using Bcmr.Engine.Client;
using Bcmr.Engine.Platform;
using System.Diagnostics;
using Bcmr.Engine.Local;

namespace Bcmr.Engine.Transfers;

/// <summary>
/// The copy when the remote host has no bcmr: one <c>scp</c> run with the same ssh program and options, so it reaches
/// the host the same way. What scp cannot do is not pretended: no resume, no end-to-end BLAKE3, and it overwrites
/// existing remote files (the warning says so). One result per source, from scp's exit status.
/// </summary>
internal sealed class ScpFallback(CopyRequest req, ResultLog log, ProgressTracker tracker, CancellationToken ct)
{
    /// <summary>ssh options that scp takes under the same letter; -p (port) becomes scp's -P.</summary>
    private static readonly HashSet<string> WithValue = ["-F", "-i", "-o", "-J", "-c", "-l", "-P"];
    private static readonly HashSet<string> Flags = ["-4", "-6", "-C", "-q", "-v"];

    public static List<string> BuildArguments(CopyRequest req, IEnumerable<string> sources, string destination)
    {
        var ssh = ShellWords.Split(SshChannel.SshCommandOrDefault(req.SshCommand));
        var args = new List<string> { "scp", "-B" };
        if (ssh[0] != "ssh") { args.Add("-S"); args.Add(ssh[0]); }
        for (int i = 1; i < ssh.Count; i++)
        {
            var a = ssh[i];
            if (a == "-p" && i + 1 < ssh.Count) { args.Add("-P"); args.Add(ssh[++i]); continue; }
            if (WithValue.Contains(a) && i + 1 < ssh.Count) { args.Add(a); args.Add(ssh[++i]); continue; }
            if (a.Length > 2 && WithValue.Contains(a[..2])) { args.Add(a); continue; }
            if (Flags.Contains(a)) { args.Add(a); continue; }
            throw new BcmrException(BcmrErrorCode.Unsupported, null,
                $"cannot fall back to scp: the ssh option '{a}' from --ssh/BCMR_SSH has no scp equivalent (use --no-fallback, or install bcmr on the remote host)");
        }
        if (req.Recurses) args.Add("-r");
        if (req.Preserve) args.Add("-p");
        args.Add("--");
        args.AddRange(sources);
        args.Add(destination);
        return args;
    }

    public void Run(bool upload, List<RemoteSpec?> srcSpecs, RemoteSpec? dstSpec)
    {
        if (req.DryRun)
        {
            foreach (var s in req.Sources)
                log.Succeed(new CopyResult { Source = s, Destination = req.Destination, Status = CopyStatus.DryRun, Transport = "scp" });
            return;
        }
        if (upload)
        {
            // Only what scp can copy is given to it; the rest is reported per source, as in the ssh path.
            var ok = new List<string>();
            foreach (var s in req.Sources)
            {
                var meta = Fs.TryStat(s);
                if (meta is null) log.Fail(s, req.Destination, EntryKind.File, new BcmrException(BcmrErrorCode.NotFound, s, $"{s}: No such file or directory"), "scp");
                else if (meta.Value.Kind == EntryKind.Directory && !req.Recurses)
                    log.Fail(s, req.Destination, EntryKind.Directory, CopyRules.NotRecursive(s), "scp");
                else
                {
                    ok.Add(s);
                    tracker.AddPlanned(meta.Value.Kind == EntryKind.File ? meta.Value.Size : 0);
                }
            }
            if (ok.Count > 0) RunScp(ok, dstSpec!.ToString(), s => Fs.TryStat(s) is { Kind: EntryKind.File } m ? m.Size : 0);
        }
        else
        {
            if (!req.Force && srcSpecs.Count == 1 && Fs.TryStat(req.Destination) is { Kind: EntryKind.File })
            {
                log.Fail(srcSpecs[0]!.ToString(), req.Destination, EntryKind.File, FileCopier.ExistsError(req.Destination), "scp");
                return;
            }
            RunScp(srcSpecs.Select(s => s!.ToString()).ToList(), req.Destination, _ => 0);
        }
    }

    private void RunScp(List<string> sources, string destination, Func<string, long> sizeOf)
    {
        var argv = BuildArguments(req, sources, destination);
        var psi = new ProcessStartInfo(argv[0])
        {
            UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true,
            WorkingDirectory = req.WorkingDirectory ?? "",
        };
        foreach (var a in argv.Skip(1)) psi.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        string stderr;
        int exit;
        try
        {
            using var p = Process.Start(psi)!;
            p.StandardInput.Close();
            using var reg = ct.Register(() => { try { p.Kill(true); } catch (Exception) { } });
            var err = p.StandardError.ReadToEndAsync(ct);
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            ct.ThrowIfCancellationRequested();
            stderr = err.Result.Trim();
            exit = p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new BcmrException(BcmrErrorCode.RemoteUnavailable, destination, $"cannot run scp for the fallback: {e.Message}");
        }
        foreach (var s in sources)
        {
            if (exit == 0)
            {
                long size = sizeOf(s);
                log.Succeed(new CopyResult
                {
                    Source = s, Destination = destination, Status = CopyStatus.Copied, Bytes = size, Duration = clock.Elapsed,
                    Transport = "scp", WireBytes = size,
                });
            }
            else
            {
                log.Fail(s, destination, EntryKind.File, new BcmrException(BcmrErrorCode.ConnectionFailed, s,
                    $"scp fallback failed (exit {exit}){(stderr.Length > 0 ? ": " + stderr.Replace('\n', ' ') : "")}"), "scp");
            }
        }
    }
}
