#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Build tasks for Bcmr. Every task runs plain `dotnet` commands that README.md also lists, so nothing here
    is needed where pwsh is not installed.
.DESCRIPTION
    Build       dotnet build of the solution
    Test        tools/test.sh: the xunit suite, the Native AOT pass and Pester, as README and CI run them
    Package     dotnet publish src/Bcmr.Cmdlets -o out/Bcmr: the whole module (manifest, format file, help, bcmr)
    Nupkg       Package, then Compress-PSResource: out/packages/Bcmr.<version>.nupkg, ready for Publish-PSResource
    Help        en-US/Bcmr.Cmdlets.dll-Help.xml from docs/help/*.md: platyPS's New-ExternalHelp where platyPS is
                installed, else the same MSBuild step Package runs
    Pester      Package, then the Pester 5 tests in tests/Pester against out/Bcmr
    PublishAot  the Native AOT bcmr
.EXAMPLE
    ./build.ps1 -Task Package
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Package', 'Nupkg', 'Help', 'Pester', 'PublishAot')]
    [string] $Task = 'Build',
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release'
)
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot
$ModuleOut = Join-Path $PSScriptRoot 'out/Bcmr'

function Invoke-Dotnet {
    & dotnet @args
    if ($LASTEXITCODE -ne 0) { throw "dotnet $($args -join ' ') failed with exit code $LASTEXITCODE" }
}

function Invoke-Package {
    Invoke-Dotnet publish src/Bcmr.Cmdlets -c $Configuration -o $ModuleOut
}

switch ($Task) {
    'Build'      { Invoke-Dotnet build Bcmr.PowerShell.sln -c $Configuration }
    'Test'       { & bash ./tools/test.sh; if ($LASTEXITCODE -ne 0) { throw "tools/test.sh failed with exit code $LASTEXITCODE" } }
    'Package'    { Invoke-Package }
    'Nupkg' {
        Invoke-Package
        $packages = Join-Path $PSScriptRoot 'out/packages'
        $null = New-Item -ItemType Directory -Force $packages
        Compress-PSResource -Path $ModuleOut -DestinationPath $packages
        Get-ChildItem $packages -Filter 'Bcmr.*.nupkg'
    }
    'Help' {
        if (Get-Module -ListAvailable -Name platyPS) {
            Import-Module platyPS
            $null = New-ExternalHelp -Path docs/help -OutputPath (Join-Path $ModuleOut 'en-US') -Force
        }
        else {
            Write-Verbose 'platyPS is not installed: generating the MAML with the build step of src/Bcmr.Cmdlets'
            Invoke-Package
        }
        Get-Item (Join-Path $ModuleOut 'en-US/Bcmr.Cmdlets.dll-Help.xml')
    }
    'Pester' {
        Invoke-Package
        # The same Pester as tools/test.sh (the NuGet package in the NuGet cache) where it is there, else Pester 5
        # from PSModulePath (installed from the Gallery where one is reachable).
        $nugetPester = Join-Path ($env:NUGET_PACKAGES ?? (Join-Path $HOME '.nuget/packages')) 'pester/5.7.1/tools/Pester.psd1'
        if (Test-Path $nugetPester) { & ./tools/Invoke-PesterSuite.ps1 -PesterManifest $nugetPester }
        else {
            if (-not (Get-Module -ListAvailable -Name Pester | Where-Object Version -ge '5.0')) {
                Install-Module Pester -MinimumVersion 5.0 -Scope CurrentUser -Force -SkipPublisherCheck
            }
            & ./tools/Invoke-PesterSuite.ps1
        }
    }
    'PublishAot' { Invoke-Dotnet publish src/Bcmr.Cli -c Release -p:PublishProfile=aot-linux-x64 }
}
