#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Runs tests/Pester against the published module (out/Bcmr) and writes NUnit XML; the one place that configures
    Pester, used by tools/test.sh (README's test command, CI) and by build.ps1 -Task Pester.
.PARAMETER PesterManifest
    Pester.psd1 to import (tools/test.sh passes the NuGet cache's pester/5.7.1); without it, Pester 5.x from PSModulePath.
#>
[CmdletBinding()]
param(
    [string] $PesterManifest,
    [string] $OutputPath = (Join-Path $PSScriptRoot '../TestResults/pester.xml'),
    [string[]] $Path = @(Join-Path $PSScriptRoot '../tests/Pester')
)
$ErrorActionPreference = 'Stop'
# Plain text everywhere, child pwsh processes included: escape codes in a failure message are not valid XML, and
# Pester could not write its report.
$env:NO_COLOR = '1'
$PSStyle.OutputRendering = 'PlainText'
if ($PesterManifest) { Import-Module $PesterManifest -Force }
else { Import-Module Pester -MinimumVersion 5.0 }

$config = New-PesterConfiguration
$config.Run.Path = $Path
$config.Run.Exit = $true
$config.Output.Verbosity = 'Detailed'
$config.TestResult.Enabled = $true
$config.TestResult.OutputFormat = 'NUnitXml'
$config.TestResult.OutputPath = $OutputPath
Invoke-Pester -Configuration $config
