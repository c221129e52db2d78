#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Build tasks for Bcmr. Every task runs plain `dotnet` commands that README.md also lists, so nothing here
    is needed where pwsh is not installed.
.EXAMPLE
    ./build.ps1 -Task Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'PublishAot')]
    [string] $Task = 'Build',
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release'
)
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot

function Invoke-Dotnet {
    & dotnet @args
    if ($LASTEXITCODE -ne 0) { throw "dotnet $($args -join ' ') failed with exit code $LASTEXITCODE" }
}

switch ($Task) {
    'Build'      { Invoke-Dotnet build Bcmr.PowerShell.sln -c $Configuration }
    'Test'       { Invoke-Dotnet test -c $Configuration }
    'PublishAot' { Invoke-Dotnet publish src/Bcmr.Cli -c Release -p:PublishProfile=aot-linux-x64 }
}
