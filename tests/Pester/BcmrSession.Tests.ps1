#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# Get-BcmrSession, Remove-BcmrSession and Clear-BcmrCas in a real pwsh, each run in a child pwsh whose data directory
# is the test's own.

BeforeAll {
    $module = Join-Path $PSScriptRoot '../../out/Bcmr/Bcmr.psd1'
    if (-not (Test-Path $module)) { throw "Publish the module first: dotnet publish src/Bcmr.Cmdlets -c Release -o out/Bcmr" }
    # The pwsh running this file: $PSHOME holds its launcher (under the .NET tool the process itself is dotnet).
    $pwsh = Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')

    function Invoke-Isolated([string] $Script, [hashtable] $Environment) {
        $saved = @{}
        foreach ($k in $Environment.Keys) { $saved[$k] = [Environment]::GetEnvironmentVariable($k); [Environment]::SetEnvironmentVariable($k, $Environment[$k]) }
        try { & $pwsh -NoProfile -NonInteractive -Command "Import-Module '$module'; $Script" }
        finally { foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) } }
    }
}

Describe 'Get-BcmrSession and Remove-BcmrSession' -Skip:(-not $IsLinux) {
    It 'lists a session left in the store and removes it with its partial file' {
        $data = Join-Path $TestDrive 'data'
        $sessions = Join-Path $data 'bcmr/sessions'
        $null = New-Item -ItemType Directory -Force -Path $sessions
        # A session file that cannot be parsed is still listed, with its problem, and can be removed.
        Set-Content -Path (Join-Path $sessions '0123456789abcdef.session') -Value 'not a session'
        $env = @{ XDG_DATA_HOME = $data }
        Invoke-Isolated '(Get-BcmrSession).Id' $env | Should -Be '0123456789abcdef'
        Invoke-Isolated 'Get-BcmrSession | Remove-BcmrSession -WhatIf' $env
        Test-Path (Join-Path $sessions '0123456789abcdef.session') | Should -BeTrue
        Invoke-Isolated 'Get-BcmrSession | Remove-BcmrSession' $env
        Test-Path (Join-Path $sessions '0123456789abcdef.session') | Should -BeFalse
    }
}

Describe 'Clear-BcmrCas' {
    It 'honours -WhatIf and reports what it freed' {
        $cas = Join-Path $TestDrive 'cas'
        $blob = Join-Path $cas 'ab/cd/ef0123456789abcdef0123456789abcdef0123456789abcdef0123456789.blk'
        $null = New-Item -ItemType Directory -Force -Path (Split-Path $blob)
        [System.IO.File]::WriteAllBytes($blob, [byte[]]::new(1000))
        $env = @{ BCMR_CAS_DIR = $cas }
        Invoke-Isolated 'Clear-BcmrCas -WhatIf' $env
        Test-Path $blob | Should -BeTrue
        Invoke-Isolated '(Clear-BcmrCas).BytesFreed' $env | Should -Be '1000'
        Test-Path $blob | Should -BeFalse
    }
}
