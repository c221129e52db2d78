@{
    RootModule           = 'Bcmr.Cmdlets.dll'
    ModuleVersion        = '0.1.0'
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
        'Remove-BcmrSession'
        'Start-BcmrServe'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            # Placeholders until the project has a public home and a LICENSE file; checked only for URI syntax.
            Tags       = @('copy', 'transfer', 'blake3', 'ssh', 'rsync', 'resume', 'integrity', 'Linux', 'Windows', 'PSEdition_Core')
            ProjectUri = 'https://github.com/bcmr/bcmr-powershell'
            LicenseUri = 'https://github.com/bcmr/bcmr-powershell/blob/main/LICENSE'
        }
    }
}
