#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# The module as a gallery package: Compress-PSResource (PSResourceGet, shipped with pwsh 7.6) packs out/Bcmr, a local
# folder repository serves it, Install-PSResource installs it into a clean user module path (a HOME of its own, so the
# real repository list and modules are never touched), and a pwsh that knows only that path imports it and copies.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $manifest = Import-PowerShellDataFile $ModuleManifest

    # Runs a script in a child pwsh whose HOME (and so its PSResourceGet settings and user module path) is $HomeDir.
    function Invoke-InHome([string] $HomeDir, [string] $Script) {
        $saved = @{ HOME = $env:HOME; PSModulePath = $env:PSModulePath; XDG_DATA_HOME = $env:XDG_DATA_HOME; XDG_CONFIG_HOME = $env:XDG_CONFIG_HOME }
        try {
            # .NET finds the user's data folder only if it exists (otherwise PSResourceGet would keep its settings
            # relative to the current directory).
            $null = New-Item -ItemType Directory -Force (Join-Path $HomeDir '.local/share'), (Join-Path $HomeDir '.config')
            $env:HOME = $HomeDir
            $env:XDG_DATA_HOME = Join-Path $HomeDir '.local/share'
            $env:XDG_CONFIG_HOME = Join-Path $HomeDir '.config'
            # Only the modules pwsh ships (PSResourceGet among them) and the user path under this HOME.
            $env:PSModulePath = @((Join-Path $HomeDir '.local/share/powershell/Modules'), (Join-Path $PSHOME 'Modules')) -join [IO.Path]::PathSeparator
            & $Pwsh -NoProfile -NonInteractive -Command $Script 2>&1
        }
        finally { foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) } }
    }
}

Describe 'Packaging' -Skip:(-not $IsLinux) {
    It 'the manifest is gallery-ready: a real version, Core only, PowerShell 7.4, tags, release notes, no placeholder links' {
        $manifest.ModuleVersion | Should -Match '^\d+\.\d+\.\d+$'
        $manifest.ModuleVersion | Should -Not -Be '0.0.0'
        $manifest.CompatiblePSEditions | Should -Be @('Core')
        $manifest.PowerShellVersion | Should -Be '7.4'
        $manifest.PrivateData.PSData.Tags | Should -Contain 'PSEdition_Core'
        $manifest.PrivateData.PSData.ReleaseNotes | Should -Match $manifest.ModuleVersion
        $manifest.PrivateData.PSData.Keys | Should -Not -Contain 'ProjectUri'
        $manifest.PrivateData.PSData.Keys | Should -Not -Contain 'LicenseUri'
        Test-Path (Join-Path (Split-Path $ModuleManifest) 'LICENSE') | Should -BeTrue
        Test-ModuleManifest $ModuleManifest | Should -Not -BeNullOrEmpty
    }

    It 'Compress-PSResource packs it; Install-PSResource from a local repository installs it into a clean module path; it copies' {
        $repo = Join-Path $TestDrive 'repo'
        $userHome = Join-Path $TestDrive 'home'
        $null = New-Item -ItemType Directory $repo, $userHome
        $null = Invoke-InHome $userHome "Compress-PSResource -Path '$(Split-Path $ModuleManifest)' -DestinationPath '$repo'"
        $nupkg = Join-Path $repo "Bcmr.$($manifest.ModuleVersion).nupkg"
        Test-Path $nupkg | Should -BeTrue

        $install = Invoke-InHome $userHome "Register-PSResourceRepository -Name BcmrLocal -Uri '$repo' -Trusted; Install-PSResource -Name Bcmr -Repository BcmrLocal -Scope CurrentUser -TrustRepository; (Get-Module Bcmr -ListAvailable).ModuleBase"
        $base = ($install | Select-Object -Last 1).ToString()
        $base | Should -BeLike "$userHome*"
        Test-Path (Join-Path $base 'bcmr') | Should -BeTrue

        $src = Join-Path $TestDrive 'packaged-src.bin'
        New-RandomFile $src 2000000 31
        $out = Invoke-InHome $userHome "Import-Module Bcmr; (Get-Module Bcmr).ModuleBase; (Get-Command -Module Bcmr).Count; (Copy-BcmrItem '$src' '$TestDrive/packaged-copy.bin' -Verify -PassThru).Status; (Get-Help about_Bcmr | Out-String) -match 'Copy-BcmrItem'"
        ($out | ForEach-Object ToString) | Should -Be @($base, '7', 'Copied', 'True')
        (Get-FileHash "$TestDrive/packaged-copy.bin").Hash | Should -Be (Get-FileHash $src).Hash
        # The zip kept no execute bit; importing the module gave it back.
        (Get-Item (Join-Path $base 'bcmr')).UnixMode | Should -Match '^-rwx'
        & (Join-Path $base 'bcmr') --version | Should -Match "^$([regex]::Escape($manifest.ModuleVersion))\b"
    }
}
