@{
    RootModule           = 'Bcmr.Cmdlets.dll'
    ModuleVersion        = '0.2.0'
    GUID                 = '1754097b-aa8e-466e-8097-a4e6df9287cf'
    Author               = 'Bcmr contributors'
    CompanyName          = 'Bcmr contributors'
    Copyright            = '(c) Bcmr contributors. MIT License.'
    Description          = 'Fast, BLAKE3-integrity-checked file copy and transfer: Copy-BcmrItem (local and over SSH), Start-BcmrServe, resumable sessions.'
    CompatiblePSEditions = @('Core')
    PowerShellVersion    = '7.4'
    FormatsToProcess     = @('Bcmr.format.ps1xml')
    CmdletsToExport      = @(
        'Clear-BcmrCas'
        'Copy-BcmrItem'
        'Get-BcmrSession'
        'Move-BcmrItem'
        'Remove-BcmrSession'
        'Sync-BcmrItem'
        'Start-BcmrServe'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('copy', 'transfer', 'blake3', 'ssh', 'rsync', 'robocopy', 'resume', 'integrity', 'Linux', 'Windows', 'PSEdition_Core')
            # No ProjectUri or LicenseUri: the project has no public home yet; the LICENSE file ships in the module.
            ReleaseNotes = @'
0.2.0
- Copy-BcmrItem behaves as Copy-Item on reruns: existing files are replaced atomically and copies keep LastWriteTime;
  -NoClobber keeps existing files, -SkipUnchanged copies only what changed.
- Several piped items into a folder that does not exist create it.
- -PassThru writes per-file results only; the summary is on the information stream, or the output with -Summary.
- -RetryCount/-RetryDelay retry transient failures on a new connection; -LogPath appends JSON lines;
  -TimeoutSec gives up a stalled connection.
- Move-BcmrItem; about_Bcmr help; Start-BcmrServe without -Root reaches what the ssh account may, as scp.
'@
        }
    }
}
