#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# Sync-BcmrItem in real pwsh: -WhatIf lists every action and changes nothing, -Mirror with -Confirm:$false deletes,
# -PassThru objects carry the action and the reason, -MaxDelete refuses, and a mirror to a loopback sshd both ways.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Import-Module $ModuleManifest -Force
}

Describe 'Sync-BcmrItem' {
    BeforeEach {
        $src = Join-Path $TestDrive "src-$([guid]::NewGuid().ToString('n'))"
        New-RandomFile (Join-Path $src 'a.bin') 300000 1
        New-RandomFile (Join-Path $src 'tree/b.bin') 4000 2
        New-RandomFile (Join-Path $src 'tree/deep/c.bin') 5000 3
        $dst = Join-Path $TestDrive "dst-$([guid]::NewGuid().ToString('n'))"
        New-RandomFile (Join-Path $dst 'extra.bin') 10 4
        New-RandomFile (Join-Path $dst 'old/gone.bin') 10 5
    }

    It '-WhatIf prints one What if line per action, with the reason, and changes nothing' {
        $before = Get-TreeHash $dst
        $lines = & $Pwsh -NoProfile -NonInteractive -Command "Import-Module '$ModuleManifest'; Sync-BcmrItem '$src' '$dst' -Mirror -WhatIf | Out-Null"
        $text = $lines | Out-String
        @($lines | Where-Object { $_ -match '^What if:' }).Count | Should -Be 7  # a.bin, tree/, tree/b.bin, tree/deep/, c.bin; extra.bin, old/ (with gone.bin)
        $text | Should -Match 'What if: Performing the operation "Copy File \(new\)" on target ".*a\.bin"'
        $text | Should -Match 'What if: Performing the operation "Delete File \(extraneous\)" on target ".*extra\.bin"'
        $text | Should -Match 'What if: Performing the operation "Delete Directory \(extraneous\)" on target ".*old"'
        Get-TreeHash $dst | Should -Be $before
        $summary = Sync-BcmrItem $src $dst -Mirror -WhatIf
        $summary.WhatIf | Should -BeTrue
        $summary.Copied | Should -Be 5
        $summary.Deleted | Should -Be 3
        Get-TreeHash $dst | Should -Be $before
    }

    It '-Mirror -Confirm:$false deletes; -PassThru objects carry the action and the reason; a rerun does nothing' {
        $out = Sync-BcmrItem $src $dst -Mirror -Confirm:$false -PassThru
        Get-TreeHash $dst | Should -Be (Get-TreeHash $src)
        $actions = $out | Where-Object { $_ -is [Bcmr.SyncAction] }
        $summary = $out[-1]
        $summary | Should -BeOfType Bcmr.SyncSummary
        ($actions | Where-Object Path -eq 'extra.bin').Action | Should -Be 'Delete'
        ($actions | Where-Object Path -eq 'extra.bin').Reason | Should -Be 'Extraneous'
        ($actions | Where-Object Path -eq 'a.bin').Reason | Should -Be 'New'
        ($actions | Where-Object Path -eq 'a.bin').Bytes | Should -Be 300000
        $summary.Deleted | Should -Be 3

        $again = Sync-BcmrItem $src $dst -Mirror -Confirm:$false -PassThru
        @($again).Count | Should -Be 1
        $again.Unchanged | Should -Be 3
    }

    It 'without -Delete nothing is removed, and without -Confirm:$false a non-interactive mirror removes nothing' {
        $summary = Sync-BcmrItem $src $dst
        $summary.Deleted | Should -Be 0
        Test-Path (Join-Path $dst 'extra.bin') | Should -BeTrue
        # ConfirmImpact High: with no host to ask, every delete is declined (kept), never done silently.
        $lines = & $Pwsh -NoProfile -NonInteractive -Command "Import-Module '$ModuleManifest'; (Sync-BcmrItem '$src' '$dst' -Mirror -ErrorAction SilentlyContinue).Deleted" 2>&1
        Test-Path (Join-Path $dst 'extra.bin') | Should -BeTrue
        Test-Path (Join-Path $dst 'old/gone.bin') | Should -BeTrue
    }

    It '-MaxDelete below the count: an error with its id, nothing removed, the copies made' {
        $err = $null
        $summary = Sync-BcmrItem $src $dst -Mirror -MaxDelete 2 -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err.FullyQualifiedErrorId | Should -Match '^BcmrDeletesSkipped'
        "$err" | Should -Match '-MaxDelete 2: 3 entries would be removed; none was'
        Test-Path (Join-Path $dst 'extra.bin') | Should -BeTrue
        (Get-FileHash (Join-Path $dst 'a.bin')).Hash | Should -Be (Get-FileHash (Join-Path $src 'a.bin')).Hash
        $summary.DeletesSkipped | Should -Not -BeNullOrEmpty
    }

    It 'a source that is a file is a terminating error naming it' {
        { Sync-BcmrItem (Join-Path $src 'a.bin') $dst -ErrorAction Stop } | Should -Throw -ExpectedMessage '*sync needs a directory*'
    }
}

Describe 'Sync-BcmrItem through a loopback sshd' {
    BeforeAll {
        $sshd = Start-LoopbackSshd
        if ($sshd) {
            $env:BCMR_SSH = $sshd.SshCommand
            $env:BCMR_REMOTE = $sshd.RemoteCommand
        }
    }
    AfterAll {
        Remove-Item Env:BCMR_SSH, Env:BCMR_REMOTE -ErrorAction SilentlyContinue
        Stop-LoopbackSshd $sshd
    }
    BeforeEach {
        if (-not $sshd) { Set-ItResult -Skipped -Because '/usr/sbin/sshd is not installed (openssh-server)' }
    }

    It 'mirrors up and back down: identical trees, extraneous entries gone, a second run moves no data' {
        $src = Join-Path $TestDrive "up-$([guid]::NewGuid().ToString('n'))"
        New-RandomFile (Join-Path $src 'a.bin') 200000 7
        New-RandomFile (Join-Path $src 'd/b.bin') 3000 8
        $remote = Join-Path $sshd.Home "mirror-$([guid]::NewGuid().ToString('n'))"
        New-RandomFile (Join-Path $remote 'stale.bin') 10 9
        $up = Sync-BcmrItem $src "bcmrtest:$remote" -Mirror -Confirm:$false
        $up.Deleted | Should -Be 1
        Get-TreeHash $remote | Should -Be (Get-TreeHash $src)
        (Get-Item (Join-Path $remote 'a.bin')).LastWriteTimeUtc.ToString('s') | Should -Be (Get-Item (Join-Path $src 'a.bin')).LastWriteTimeUtc.ToString('s')
        $again = Sync-BcmrItem $src "bcmrtest:$remote" -Mirror -Confirm:$false
        $again.WireBytes | Should -Be 0
        ($again.Copied + $again.Updated + $again.Deleted) | Should -Be 0

        $back = Join-Path $TestDrive "down-$([guid]::NewGuid().ToString('n'))"
        New-RandomFile (Join-Path $back 'local-only.bin') 10 10
        $down = Sync-BcmrItem "bcmrtest:$remote" $back -Mirror -Confirm:$false
        $down.Deleted | Should -Be 1
        Get-TreeHash $back | Should -Be (Get-TreeHash $src)
    }
}
