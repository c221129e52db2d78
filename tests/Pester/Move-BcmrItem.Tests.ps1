#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# Move-BcmrItem in real pwsh: files and trees moved byte-identically with their sources gone, -WhatIf, errors.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Import-Module $ModuleManifest -Force
}

Describe 'Move-BcmrItem' {
    BeforeEach {
        $src = Join-Path $TestDrive "src-$([guid]::NewGuid().ToString('n'))"
        New-RandomFile (Join-Path $src 'a.bin') 300000 1
        New-RandomFile (Join-Path $src 'tree/b.bin') 4000 2
        New-RandomFile (Join-Path $src 'tree/deep/c.bin') 5000 3
        $dst = Join-Path $TestDrive "dst-$([guid]::NewGuid().ToString('n'))"
        $null = New-Item -ItemType Directory $dst
        $before = @{ a = (Get-FileHash (Join-Path $src 'a.bin')).Hash; tree = Get-TreeHash (Join-Path $src 'tree') }
    }

    It 'moves a file and a directory (no -Recurse needed, as Move-Item): bytes identical, sources gone' {
        Get-ChildItem $src | Move-BcmrItem -Destination $dst
        (Get-FileHash (Join-Path $dst 'a.bin')).Hash | Should -Be $before.a
        Get-TreeHash (Join-Path $dst 'tree') | Should -Be $before.tree
        Get-ChildItem $src | Should -BeNullOrEmpty
    }

    It 'moves across filesystems by copy, verify, delete (/dev/shm is tmpfs)' -Skip:(-not (Test-Path /dev/shm)) {
        $far = Join-Path /dev/shm "bcmr-move-$([guid]::NewGuid().ToString('n'))"
        $null = New-Item -ItemType Directory $far
        try {
            $results = Move-BcmrItem (Join-Path $src 'tree') $far -PassThru
            @($results).Count | Should -Be 2
            $results | ForEach-Object { $_.Status | Should -Be 'Moved'; $_.Blake3 | Should -Match '^[0-9a-f]{64}$' }
            Get-TreeHash (Join-Path $far 'tree') | Should -Be $before.tree
            Test-Path (Join-Path $src 'tree') | Should -BeFalse
        }
        finally { Remove-Item -Recurse -Force $far }
    }

    It '-WhatIf moves nothing and says Move' {
        $lines = & $Pwsh -NoProfile -NonInteractive -Command "Import-Module '$ModuleManifest'; Move-BcmrItem '$src/a.bin' '$dst' -WhatIf"
        ($lines | Out-String) | Should -Match 'What if: Performing the operation "Move File" on target "Item: .*a\.bin'
        Test-Path (Join-Path $src 'a.bin') | Should -BeTrue
        Get-ChildItem $dst | Should -BeNullOrEmpty
    }

    It 'a missing source is ObjectNotFound and the other items still move' {
        $missing = Join-Path $src 'nope.bin'
        Move-BcmrItem (Join-Path $src 'a.bin'), $missing $dst -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs | Should -HaveCount 1
        $errs[0].FullyQualifiedErrorId | Should -Be 'BcmrNotFound,Bcmr.Cmdlets.Commands.MoveBcmrItemCommand'
        $errs[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        (Get-FileHash (Join-Path $dst 'a.bin')).Hash | Should -Be $before.a
    }

    It 'onto an existing file with -NoClobber: ResourceExists, both files untouched' {
        Set-Content -Path (Join-Path $dst 'a.bin') -Value 'keep'
        Move-BcmrItem (Join-Path $src 'a.bin') $dst -NoClobber -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].CategoryInfo.Category | Should -Be 'ResourceExists'
        Get-Content (Join-Path $dst 'a.bin') | Should -Be 'keep'
        (Get-FileHash (Join-Path $src 'a.bin')).Hash | Should -Be $before.a
    }
}
