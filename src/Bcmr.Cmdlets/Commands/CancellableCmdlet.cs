using System.Management.Automation;

namespace Bcmr.Cmdlets.Commands;

/// <summary>A cmdlet whose work honours Ctrl+C: <see cref="StopProcessing"/> (called on another thread) cancels
/// <see cref="Cancellation"/>, which the engine checks between blocks.</summary>
public abstract class CancellableCmdlet : PSCmdlet, IDisposable
{
    private readonly CancellationTokenSource _cts = new();

    protected CancellationToken Cancellation => _cts.Token;

    protected void Cancel()
    {
        try { _cts.Cancel(); }
        catch (ObjectDisposedException) { }
    }

    protected override void StopProcessing() => Cancel();

    public void Dispose()
    {
        Dispose(true);
        _cts.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases what a derived cmdlet holds (PowerShell disposes a cmdlet also when its pipeline is stopped).</summary>
    protected virtual void Dispose(bool disposing) { }
}
