#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# Copy-BcmrItem in a real pwsh, with Get-ChildItem and the rest of PowerShell's own cmdlets (the xunit suite covers
# the same behaviour through the hosted engine, where they do not exist). Run: ./build.ps1 -Task Pester

BeforeAll {
    $module = Join-Path $PSScriptRoot '../../out/Bcmr/Bcmr.psd1'
    if (-not (Test-Path $module)) { throw "Publish the module first: dotnet publish src/Bcmr.Cmdlets -c Release -o out/Bcmr" }
    Import-Module $module -Force

    function New-RandomFile([string] $Path, [int] $Size, [int] $Seed) {
        $null = New-Item -ItemType Directory -Force -Path (Split-Path $Path)
        $bytes = [byte[]]::new($Size)
        [System.Random]::new($Seed).NextBytes($bytes)
        [System.IO.File]::WriteAllBytes($Path, $bytes)
    }
}

Describe 'Copy-BcmrItem' {
    BeforeEach {
        $src = Join-Path $TestDrive "src-$([guid]::NewGuid().ToString('n'))"
        $dst = Join-Path $TestDrive "dst-$([guid]::NewGuid().ToString('n'))"
        New-RandomFile (Join-Path $src 'a.txt') 1000 1
        New-RandomFile (Join-Path $src 'b.bin') 3000000 2
        New-RandomFile (Join-Path $src '[1].txt') 77 3
        New-RandomFile (Join-Path $src 'sub/deep/c.txt') 12345 4
        $null = New-Item -ItemType Directory -Path $dst
    }

    It 'copies Get-ChildItem output byte-identically and emits typed results' {
        $out = Get-ChildItem $src | Copy-BcmrItem -Destination $dst -Recurse -PassThru -Summary -Verify
        $results = $out | Where-Object { $_ -is [Bcmr.CopyResult] }
        $results | Should -HaveCount 4
        foreach ($file in Get-ChildItem $src -Recurse -File) {
            $copy = Join-Path $dst ([System.IO.Path]::GetRelativePath($src, $file.FullName))
            (Get-FileHash -LiteralPath $copy).Hash | Should -Be (Get-FileHash -LiteralPath $file.FullName).Hash
        }
        $results | ForEach-Object { $_.Blake3 | Should -Match '^[0-9a-f]{64}$' }
        $summary = $out | Select-Object -Last 1
        $summary | Should -BeOfType ([Bcmr.TransferSummary])
        $summary.Files | Should -Be 4
        $summary.Bytes | Should -BeOfType ([long])
    }

    It 'takes -LiteralPath names with wildcard characters literally' {
        Copy-BcmrItem -LiteralPath (Join-Path $src '[1].txt') -Destination $dst
        Test-Path -LiteralPath (Join-Path $dst '[1].txt') | Should -BeTrue
    }

    It 'expands -Path wildcards through the provider' {
        Copy-BcmrItem (Join-Path $src '*.txt') $dst
        (Get-ChildItem $dst).Name | Sort-Object | Should -Be @('[1].txt', 'a.txt')
    }

    It 'copies nothing with -WhatIf' {
        Get-ChildItem $src | Copy-BcmrItem -Destination $dst -Recurse -WhatIf
        Get-ChildItem $dst | Should -BeNullOrEmpty
    }

    It 'reports a missing source as ObjectNotFound and copies the others' {
        $missing = Join-Path $src 'nope.txt'
        Copy-BcmrItem (Join-Path $src 'a.txt'), $missing, (Join-Path $src 'b.bin') $dst -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs | Should -HaveCount 1
        $errs[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $errs[0].FullyQualifiedErrorId | Should -Be 'BcmrNotFound,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand'
        $errs[0].TargetObject | Should -Be $missing
        Test-Path (Join-Path $dst 'b.bin') | Should -BeTrue
    }

    It 'refuses to overwrite with -NoClobber (ResourceExists) and replaces without it' {
        Set-Content -Path (Join-Path $dst 'a.txt') -Value 'keep me'
        Copy-BcmrItem (Join-Path $src 'a.txt') $dst -NoClobber -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].CategoryInfo.Category | Should -Be 'ResourceExists'
        Get-Content (Join-Path $dst 'a.txt') | Should -Be 'keep me'
        Copy-BcmrItem (Join-Path $src 'a.txt') $dst
        (Get-FileHash (Join-Path $dst 'a.txt')).Hash | Should -Be (Get-FileHash (Join-Path $src 'a.txt')).Hash
    }

    It 'refuses paths of other providers' {
        { Copy-BcmrItem Env:/PATH $dst -ErrorAction Stop } | Should -Throw -ErrorId 'NotFileSystemPath,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand'
    }

    It 'refuses a BCMR_SSH_PERSIST that is not a number of seconds, naming it, and copies nothing' {
        $env:BCMR_SSH_PERSIST = 'soon'
        try {
            $target = Join-Path $dst 'persist.txt'
            { Copy-BcmrItem (Join-Path $src 'a.txt') $target -ErrorAction Stop } | Should -Throw '*BCMR_SSH_PERSIST*not a number of seconds*'
            Test-Path $target | Should -BeFalse
        }
        finally { Remove-Item Env:BCMR_SSH_PERSIST }
    }

    It 'writes progress ending with Completed records, and none when silenced' {
        # 2 GiB: 256 MiB was copied and verified before the first progress record was due on an AVX-512 EPYC.
        $big = Join-Path $TestDrive 'big.bin'
        $block = [byte[]]::new(256MB)
        [System.Random]::new(9).NextBytes($block)
        $file = [System.IO.File]::Create($big)
        for ($i = 0; $i -lt 8; $i++) { $block[0] = $i; $file.Write($block, 0, $block.Length) } # no two blocks alike
        $file.Dispose()
        $records = [System.Collections.Generic.List[object]]::new()
        $ps = [powershell]::Create()
        # Paced to at least 2 s: -Verify reads back beside the copy, and 2 GiB took about a second unpaced.
        $null = $ps.AddScript("Import-Module '$module'; Copy-BcmrItem '$big' '$dst' -Verify -BandwidthLimit 1GB")
        $null = $ps.Invoke()
        $progress = @($ps.Streams.Progress)
        $progress.Where({ $_.ActivityId -eq 1 }).Count | Should -BeGreaterThan 1
        $progress[-1].RecordType | Should -Be 'Completed'
        $ps.Dispose()

        Remove-Item (Join-Path $dst 'big.bin')
        $ps = [powershell]::Create()
        $null = $ps.AddScript("Import-Module '$module'; `$ProgressPreference = 'SilentlyContinue'; Copy-BcmrItem '$big' '$dst' -Verify")
        $null = $ps.Invoke()
        $ps.Streams.Progress | Should -BeNullOrEmpty
        $ps.Dispose()
    }
}

Describe 'Module' {
    It 'exports exactly the cmdlets' {
        (Get-Command -Module Bcmr).Name | Sort-Object | Should -Be @('Clear-BcmrCas', 'Copy-BcmrItem', 'Get-BcmrSession', 'Move-BcmrItem', 'Remove-BcmrSession', 'Start-BcmrServe', 'Sync-BcmrItem')
    }

    It 'has help with examples for every cmdlet' {
        foreach ($c in Get-Command -Module Bcmr) {
            (Get-Help $c.Name -Examples).examples.example.Count | Should -BeGreaterOrEqual 2
        }
    }

    It 'formats results with units while the objects keep numbers' {
        $src = Join-Path $TestDrive 'fmt.bin'
        [System.IO.File]::WriteAllBytes($src, [byte[]]::new(3MB))
        $dst = Join-Path $TestDrive 'fmt-copy.bin'
        $out = Copy-BcmrItem $src $dst -PassThru -Verify
        $table = $out | Format-Table | Out-String
        $table | Should -Match '3\.0 MiB'
        $out[0].Bytes | Should -Be 3145728
    }

    It 'ships no PowerShell assembly' {
        Get-ChildItem (Split-Path $module) -Recurse -Filter *.dll |
            Where-Object Name -Match '^(System\.Management\.Automation|Microsoft\.PowerShell\.|Microsoft\.Management\.Infrastructure)' |
            Should -BeNullOrEmpty
    }
}
