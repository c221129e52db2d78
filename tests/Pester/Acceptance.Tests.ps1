#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# The module's acceptance suite: Copy-BcmrItem used the way admins write scripts, in real pwsh, locally and through a
# loopback sshd whose remote command is Start-BcmrServe in real pwsh.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Import-Module $ModuleManifest -Force

    function New-Artifacts([string] $Root) {
        New-RandomFile (Join-Path $Root 'app.zip') 1500000 1
        New-RandomFile (Join-Path $Root 'app.pdb') 70000 2
        New-RandomFile (Join-Path $Root 'notes [v2].txt') 900 3
        New-RandomFile (Join-Path $Root 'build.log') 5000 4
        $Root
    }
}

Describe 'The destination rule (as the help table says)' {
    BeforeEach {
        $artifacts = New-Artifacts (Join-Path $TestDrive "artifacts-$([guid]::NewGuid().ToString('n'))")
        $out = Join-Path $TestDrive "out-$([guid]::NewGuid().ToString('n'))"
    }

    It 'several piped files into a missing folder: the folder is created and holds them (the mission example)' {
        Get-ChildItem $artifacts | Copy-BcmrItem -Destination $out
        Get-TreeHash $out | Should -Be (Get-TreeHash $artifacts)
    }

    It 'several items into a missing folder whose parents are missing too: all are created' {
        $deep = Join-Path $out 'a/b'
        Get-ChildItem $artifacts | Copy-BcmrItem -Destination $deep
        Get-TreeHash $deep | Should -Be (Get-TreeHash $artifacts)
    }

    It 'one piped file into a missing name: the copy gets that name' {
        $null = New-Item -ItemType Directory $out
        Get-Item (Join-Path $artifacts 'app.zip') | Copy-BcmrItem -Destination (Join-Path $out 'renamed.zip')
        (Get-ChildItem $out).Name | Should -Be 'renamed.zip'
        (Get-FileHash (Join-Path $out 'renamed.zip')).Hash | Should -Be (Get-FileHash (Join-Path $artifacts 'app.zip')).Hash
    }

    It 'a folder with -Recurse into a missing name: the copy of the folder gets that name' {
        Copy-BcmrItem $artifacts $out -Recurse
        Get-TreeHash $out | Should -Be (Get-TreeHash $artifacts)
    }

    It 'several items into an existing folder: each lands inside under its own name' {
        $null = New-Item -ItemType Directory $out
        Get-ChildItem $artifacts -Filter *.zip | Copy-BcmrItem -Destination $out
        Get-ChildItem $artifacts -Filter *.pdb | Copy-BcmrItem -Destination $out
        (Get-ChildItem $out).Name | Sort-Object | Should -Be @('app.pdb', 'app.zip')
    }

    It 'several items into an existing file: a terminating error, nothing copied, the file untouched' {
        Set-Content -Path $out -Value 'a file'
        { Get-ChildItem $artifacts | Copy-BcmrItem -Destination $out -ErrorAction Stop } |
            Should -Throw -ErrorId 'BcmrNotADirectory,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand'
        Get-Content $out | Should -Be 'a file'
    }

    It '-WhatIf creates nothing, not even the folder' {
        Get-ChildItem $artifacts | Copy-BcmrItem -Destination $out -WhatIf
        Test-Path $out | Should -BeFalse
    }
}

Describe 'Scripts as admins write them' {
    BeforeEach {
        $src = Join-Path $TestDrive "src-$([guid]::NewGuid().ToString('n'))"
        New-RandomFile (Join-Path $src 'keep/a.dat') 10000 1
        New-RandomFile (Join-Path $src 'keep/b.dat') 20000 2
        New-RandomFile (Join-Path $src 'keep/deep/c.dat') 30000 3
        New-RandomFile (Join-Path $src 'skip/x.tmp') 40000 4
        New-RandomFile (Join-Path $src 'y.tmp') 50000 5
        $dst = Join-Path $TestDrive "dst-$([guid]::NewGuid().ToString('n'))"
        $null = New-Item -ItemType Directory $dst
    }

    It 'Get-ChildItem -Recurse | Where-Object | Copy-BcmrItem copies just the chosen files' {
        Get-ChildItem $src -Recurse -File | Where-Object Extension -eq '.dat' | Copy-BcmrItem -Destination $dst
        (Get-ChildItem $dst).Name | Sort-Object | Should -Be @('a.dat', 'b.dat', 'c.dat')
        (Get-FileHash (Join-Path $dst 'c.dat')).Hash | Should -Be (Get-FileHash (Join-Path $src 'keep/deep/c.dat')).Hash
    }

    It '-PassThru gives one object per file: Measure-Object adds up the bytes, Export-Csv and Format-Table take them' {
        $results = Get-ChildItem $src -Recurse -File | Copy-BcmrItem -Destination $dst -PassThru
        $results | Should -HaveCount 5
        $results | ForEach-Object { $_ | Should -BeOfType ([Bcmr.CopyResult]) }
        ($results | Measure-Object -Property Bytes -Sum).Sum | Should -Be 150000
        $csv = Join-Path $TestDrive 'copies.csv'
        $results | Export-Csv -Path $csv
        $back = Import-Csv $csv
        $back | Should -HaveCount 5
        ($back | Where-Object { $_.Destination -like '*c.dat' }).Bytes | Should -Be '30000'
        $table = $results | Format-Table | Out-String -Width 400
        $table | Should -Match 'c\.dat'
        $table | Should -Match '29\.3 KiB'
    }

    It 'a function ending in a copy returns nothing unless asked (no summary mixed into the output)' {
        function Save-Logs($From, $To) { Get-ChildItem $From -File | Copy-BcmrItem -Destination $To }
        Save-Logs $src $dst | Should -BeNullOrEmpty
        $info = $null
        Copy-BcmrItem (Join-Path $src 'y.tmp') (Join-Path $dst 'again.tmp') -InformationVariable info
        $info.MessageData.Files | Should -Be 1
        (Copy-BcmrItem (Join-Path $src 'y.tmp') (Join-Path $dst 'third.tmp') -Summary).Bytes | Should -Be 50000
    }

    It '-ErrorAction Stop inside try/catch: the catch sees the error with its id, category and target' {
        $missing = Join-Path $src 'nope.dat'
        $caught = $null
        try { Copy-BcmrItem $missing $dst -ErrorAction Stop; throw 'not reached' }
        catch { $caught = $_ }
        $caught.FullyQualifiedErrorId | Should -Be 'BcmrNotFound,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand'
        $caught.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $caught.TargetObject | Should -Be $missing
    }

    It '$ErrorActionPreference = Stop stops the script at the first failed file' {
        $script = @"
Import-Module '$ModuleManifest'
`$ErrorActionPreference = 'Stop'
Copy-BcmrItem '$src/keep' '$dst/k'
'after the copy'
"@
        $out = & $Pwsh -NoProfile -NonInteractive -Command $script 2>&1
        $LASTEXITCODE | Should -Be 1
        ($out | Out-String) | Should -Not -Match 'after the copy'
        ($out | Out-String) | Should -Match 'use -Recurse'
    }

    It 'messages name the cmdlet''s parameters, not the command line''s flags' {
        $null = Copy-BcmrItem "$src/keep" $dst -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].Exception.Message | Should -Match '\(use -Recurse to copy directories\)'
        Copy-BcmrItem "$src/y.tmp" $dst
        $null = Copy-BcmrItem "$src/y.tmp" $dst -NoClobber -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].Exception.Message | Should -Match '\(kept because of -NoClobber\)'
        $errs[0].Exception.Message | Should -Not -Match ' -f '
    }

    It 'a rerun into an existing tree replaces the files and keeps their LastWriteTime, as Copy-Item does' {
        $old = [datetime]::new(2021, 6, 7, 8, 9, 10, [DateTimeKind]::Utc)
        Get-ChildItem $src -Recurse -File | ForEach-Object { $_.LastWriteTimeUtc = $old }
        Get-ChildItem $src | Copy-BcmrItem -Destination $dst -Recurse
        New-RandomFile (Join-Path $src 'keep/a.dat') 10001 11
        (Get-Item (Join-Path $src 'keep/a.dat')).LastWriteTimeUtc = $old.AddDays(1)
        Get-ChildItem $src | Copy-BcmrItem -Destination $dst -Recurse -ErrorAction Stop
        Get-TreeHash $dst | Should -Be (Get-TreeHash $src)
        (Get-Item (Join-Path $dst 'keep/deep/c.dat')).LastWriteTimeUtc | Should -Be $old
        (Get-Item (Join-Path $dst 'keep/a.dat')).LastWriteTimeUtc | Should -Be $old.AddDays(1)
    }

    It '-SkipUnchanged copies only what changed since the last run (size and LastWriteTime)' {
        Get-ChildItem $src | Copy-BcmrItem -Destination $dst -Recurse
        New-RandomFile (Join-Path $src 'keep/b.dat') 20000 12   # same size, new content, new time
        $results = Get-ChildItem $src | Copy-BcmrItem -Destination $dst -Recurse -SkipUnchanged -PassThru -Verbose 4>&1
        $copied = @($results | Where-Object { $_ -is [Bcmr.CopyResult] -and $_.Status -eq 'Copied' })
        $copied.Destination | Should -Be @((Join-Path $dst 'keep/b.dat'))
        @($results | Where-Object { $_ -is [Bcmr.CopyResult] -and $_.Status -eq 'Skipped' }) | Should -HaveCount 4
        ($results | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] } | Out-String) | Should -Match 'unchanged \(same size and modification time'
        Get-TreeHash $dst | Should -Be (Get-TreeHash $src)
    }

    It '-WhatIf lists what would be copied and nothing that -Exclude leaves out' {
        $lines = & $Pwsh -NoProfile -NonInteractive -Command "Import-Module '$ModuleManifest'; Get-ChildItem '$src' | Copy-BcmrItem -Destination '$dst' -Recurse -Exclude *.tmp,skip -WhatIf"
        ($lines | Out-String) | Should -Match 'What if: Performing the operation "Copy Directory" on target "Item: .*keep'
        ($lines | Out-String) | Should -Not -Match 'y\.tmp|skip'
        Get-ChildItem $dst | Should -BeNullOrEmpty
        Get-ChildItem $src | Copy-BcmrItem -Destination $dst -Recurse -Exclude *.tmp, skip
        Get-TreeHash (Join-Path $dst 'keep') | Should -Be (Get-TreeHash (Join-Path $src 'keep'))
        Test-Path (Join-Path $dst 'skip'), (Join-Path $dst 'y.tmp') | Should -Be @($false, $false)
    }
}

Describe 'Several copies at once from one process' {
    BeforeAll {
        $src = Join-Path $TestDrive 'fan-src'
        1..6 | ForEach-Object { New-RandomFile (Join-Path $src "f$_.bin") (200000 * $_) $_ }
    }

    It 'ForEach-Object -Parallel -ThrottleLimit 4: each runspace''s results name only its own files, every copy exact' {
        $targets = 1..4 | ForEach-Object { Join-Path $TestDrive "fan-$_" }
        $rows = $targets | ForEach-Object -ThrottleLimit 4 -Parallel {
            Import-Module $using:ModuleManifest
            $to = $_
            Get-ChildItem $using:src -File | Copy-BcmrItem -Destination $to -PassThru -Verify |
                ForEach-Object { [pscustomobject]@{ Target = $to; Destination = $_.Destination; Blake3 = $_.Blake3 } }
        }
        $rows | Should -HaveCount 24
        foreach ($t in $targets) {
            $mine = @($rows | Where-Object Target -eq $t)
            $mine | Should -HaveCount 6
            $mine | ForEach-Object { $_.Destination | Should -BeLike "$t*" }
            Get-TreeHash $t | Should -Be (Get-TreeHash $src)
        }
    }

    It 'Start-ThreadJob: four copies, one stopped mid-way, the other three complete and exact' {
        $sshd = Start-LoopbackSshd
        if ($null -eq $sshd) { Set-ItResult -Skipped -Because '/usr/sbin/sshd is not installed (openssh-server)'; return }
        try {
            $big = Join-Path $TestDrive 'slow.bin'
            New-RandomFile $big (64MB) 7
            $remoteSlow = Join-Path $sshd.Home 'slow'
            $null = New-Item -ItemType Directory $remoteSlow
            $common = @{ SshCommand = $sshd.SshCommand; RemoteCommand = $sshd.RemoteCommand; NoFallback = $true }
            # The slow one: 64 MiB at 8 MB/s, stopped after a second; the others copy locally.
            $slow = Start-ThreadJob -ArgumentList $ModuleManifest, $big, "bcmrtest:$remoteSlow", $common -ScriptBlock {
                param($m, $from, $to, $common)
                Import-Module $m
                Copy-BcmrItem $from $to -BandwidthLimit 8MB @common -PassThru
            }
            $fast = 1..3 | ForEach-Object {
                Start-ThreadJob -ArgumentList $ModuleManifest, $src, (Join-Path $TestDrive "job-$_") -ScriptBlock {
                    param($m, $from, $to)
                    Import-Module $m
                    Get-ChildItem $from -File | Copy-BcmrItem -Destination $to -PassThru
                }
            }
            $deadline = [DateTime]::UtcNow.AddSeconds(30)
            while (-not (Get-ChildItem -Force $remoteSlow) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
            Start-Sleep -Milliseconds 500
            $slow.State | Should -Be 'Running'
            Stop-Job $slow
            $null = $fast | Wait-Job -Timeout 120
            foreach ($j in $fast) {
                $j.State | Should -Be 'Completed'
                (Receive-Job $j) | Should -HaveCount 6
            }
            1..3 | ForEach-Object { Get-TreeHash (Join-Path $TestDrive "job-$_") | Should -Be (Get-TreeHash $src) }
            $slow.State | Should -Be 'Stopped'
            Test-Path (Join-Path $remoteSlow 'slow.bin') | Should -BeFalse
        }
        finally {
            Get-Job | Remove-Job -Force
            Stop-LoopbackSshd $sshd
        }
    }
}

Describe 'Remote copies through a loopback sshd, Start-BcmrServe in real pwsh at the other end' {
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
        $artifacts = New-Artifacts (Join-Path $TestDrive "artifacts-$([guid]::NewGuid().ToString('n'))")
    }

    It 'the mission example: Get-ChildItem ./artifacts | Copy-BcmrItem -Destination host:/data/artifacts, which does not exist yet' {
        $remote = Join-Path $sshd.Home "data-$([guid]::NewGuid().ToString('n'))/artifacts"
        $workspace = Join-Path $TestDrive "ws-$([guid]::NewGuid().ToString('n'))"
        $null = New-Item -ItemType Directory $workspace
        Move-Item $artifacts (Join-Path $workspace 'artifacts')
        Push-Location $workspace
        try {
            Get-ChildItem ./artifacts | Copy-BcmrItem -Destination "bcmrtest:$remote"
        }
        finally { Pop-Location }
        Get-TreeHash $remote | Should -Be (Get-TreeHash (Join-Path $workspace 'artifacts'))
    }

    It 'the destination rule over ssh, row by row' {
        $remote = Join-Path $sshd.Home "rows-$([guid]::NewGuid().ToString('n'))"
        $null = New-Item -ItemType Directory $remote
        $zip = Join-Path $artifacts 'app.zip'
        # One file into a name that does not exist: that name.
        Copy-BcmrItem $zip "bcmrtest:$remote/renamed.zip"
        (Get-FileHash "$remote/renamed.zip").Hash | Should -Be (Get-FileHash $zip).Hash
        # One file into an existing folder: inside, under its own name.
        Copy-BcmrItem $zip "bcmrtest:$remote"
        (Get-FileHash "$remote/app.zip").Hash | Should -Be (Get-FileHash $zip).Hash
        # One file onto an existing file: replaced; with -NoClobber refused and kept.
        Set-Content "$remote/renamed.zip" 'old'
        Copy-BcmrItem $zip "bcmrtest:$remote/renamed.zip" -NoClobber -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].CategoryInfo.Category | Should -Be 'ResourceExists'
        Get-Content "$remote/renamed.zip" | Should -Be 'old'
        Copy-BcmrItem $zip "bcmrtest:$remote/renamed.zip"
        (Get-FileHash "$remote/renamed.zip").Hash | Should -Be (Get-FileHash $zip).Hash
        # A folder with -Recurse into a name that does not exist: the copy gets that name; again: inside it.
        Copy-BcmrItem $artifacts "bcmrtest:$remote/tree" -Recurse
        Get-TreeHash "$remote/tree" | Should -Be (Get-TreeHash $artifacts)
        Copy-BcmrItem $artifacts "bcmrtest:$remote/tree" -Recurse
        Get-TreeHash "$remote/tree/$(Split-Path -Leaf $artifacts)" | Should -Be (Get-TreeHash $artifacts)
        # Several items into an existing folder: each inside; into an existing file: a terminating error.
        $null = New-Item -ItemType Directory "$remote/many"
        Get-ChildItem $artifacts | Copy-BcmrItem -Destination "bcmrtest:$remote/many"
        Get-TreeHash "$remote/many" | Should -Be (Get-TreeHash $artifacts)
        { Get-ChildItem $artifacts | Copy-BcmrItem -Destination "bcmrtest:$remote/app.zip" -ErrorAction Stop } |
            Should -Throw -ErrorId 'BcmrNotADirectory,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand'
        (Get-FileHash "$remote/app.zip").Hash | Should -Be (Get-FileHash $zip).Hash
        # A folder without -Recurse: an error for it alone.
        Copy-BcmrItem $artifacts "bcmrtest:$remote/norecurse" -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].Exception.Message | Should -Match 'use -Recurse'
        Test-Path "$remote/norecurse" | Should -BeFalse
    }

    It 'and back down: several remote items into a missing local folder, with -PassThru results from ssh' {
        $remote = Join-Path $sshd.Home "down-$([guid]::NewGuid().ToString('n'))"
        Copy-BcmrItem $artifacts "bcmrtest:$remote" -Recurse -NoFallback
        $back = Join-Path $TestDrive "back-$([guid]::NewGuid().ToString('n'))/deeper"
        $results = Copy-BcmrItem "bcmrtest:$remote/*" $back -PassThru -NoFallback -Verify
        $results | Should -HaveCount 4
        $results | ForEach-Object { $_.Transport | Should -Be 'ssh' }
        Get-TreeHash $back | Should -Be (Get-TreeHash $artifacts)
    }

    It 'Move-BcmrItem from the remote host: the local tree is exact, every result says Moved, the remote folder is gone' {
        $remote = Join-Path $sshd.Home "mv-$([guid]::NewGuid().ToString('n'))"
        Copy-BcmrItem $artifacts "bcmrtest:$remote" -Recurse -NoFallback
        $back = Join-Path $TestDrive "mvback-$([guid]::NewGuid().ToString('n'))"
        $results = Move-BcmrItem "bcmrtest:$remote" $back -PassThru -NoFallback
        $results | Should -HaveCount 4
        $results | ForEach-Object { $_.Status | Should -Be 'Moved' }
        Get-TreeHash $back | Should -Be (Get-TreeHash $artifacts)
        Test-Path $remote | Should -BeFalse
    }

    It '-Parallel 3 both ways: exact trees, -PassThru results in the order of the files piped in' {
        $remote = Join-Path $sshd.Home "par-$([guid]::NewGuid().ToString('n'))"
        $piped = Get-ChildItem $artifacts -File | Sort-Object Length -Descending
        $up = $piped | Copy-BcmrItem -Destination "bcmrtest:$remote" -Parallel 3 -PassThru -NoFallback
        $up.Source | Should -Be $piped.FullName
        Get-TreeHash $remote | Should -Be (Get-TreeHash $artifacts)
        $back = Join-Path $TestDrive "pback-$([guid]::NewGuid().ToString('n'))"
        $down = Copy-BcmrItem "bcmrtest:$remote/*" $back -Parallel 3 -PassThru -NoFallback -Verify
        $down | Should -HaveCount $piped.Count
        Get-TreeHash $back | Should -Be (Get-TreeHash $remote)
    }

    It '-Parallel 2 stripes a 70 MiB file both ways: one result carried by both connections, BLAKE3 equal to b3sum' {
        $remote = Join-Path $sshd.Home "stripe-$([guid]::NewGuid().ToString('n'))"
        $null = New-Item -ItemType Directory $remote
        $big = Join-Path $TestDrive 'striped.bin'
        New-RandomFile $big (70MB + 3) 71
        $expected = (& b3sum --no-names $big).Trim()
        $up = Copy-BcmrItem $big "bcmrtest:$remote/striped.bin" -Parallel 2 -PassThru -NoFallback
        $up.Connections | Should -Be 2
        $up.Blake3 | Should -Be $expected
        (Get-FileHash "$remote/striped.bin").Hash | Should -Be (Get-FileHash $big).Hash
        $back = Join-Path $TestDrive 'striped-back.bin'
        $down = Copy-BcmrItem "bcmrtest:$remote/striped.bin" $back -Parallel 2 -PassThru -NoFallback -Verify
        $down.Connections | Should -Be 2
        $down.Blake3 | Should -Be $expected
        (Get-FileHash $back).Hash | Should -Be (Get-FileHash $big).Hash
    }

    It '-Direct both ways with Start-BcmrServe at the other end: Transport direct, BLAKE3 equal to b3sum' {
        $remote = Join-Path $sshd.Home "direct-$([guid]::NewGuid().ToString('n'))"
        $null = New-Item -ItemType Directory $remote
        $big = Join-Path $TestDrive 'direct.bin'
        New-RandomFile $big (9MB + 7) 72
        $expected = (& b3sum --no-names $big).Trim()
        $up = Copy-BcmrItem $big "bcmrtest:$remote/direct.bin" -Direct -PassThru -NoFallback -WarningVariable warned
        $up.Transport | Should -Be 'direct'
        $up.Blake3 | Should -Be $expected
        $warned | Should -BeNullOrEmpty
        (Get-FileHash "$remote/direct.bin").Hash | Should -Be (Get-FileHash $big).Hash
        $back = Join-Path $TestDrive 'direct-back.bin'
        $down = Copy-BcmrItem "bcmrtest:$remote/direct.bin" $back -Direct -PassThru -NoFallback
        $down.Transport | Should -Be 'direct'
        $down.Blake3 | Should -Be $expected
        (Get-FileHash $back).Hash | Should -Be (Get-FileHash $big).Hash
    }

    It '-SshPersist: the first copy leaves one ssh master in a private socket folder, the next copy goes through it' {
        $remote = Join-Path $sshd.Home "persist-$([guid]::NewGuid().ToString('n'))"
        $null = New-Item -ItemType Directory $remote
        # Short: a socket path has at most 107 bytes (TestDrive's is too long, and bcmr would warn and not share).
        $runtime = "/tmp/bp-$([guid]::NewGuid().ToString('n').Substring(0, 8))"
        $null = New-Item -ItemType Directory $runtime
        chmod 700 $runtime
        $env:XDG_RUNTIME_DIR = $runtime
        $socket = "$runtime/bcmr-ssh/%C"
        try {
            Copy-BcmrItem (Join-Path $artifacts 'app.zip') "bcmrtest:$remote/one.zip" -SshPersist 60 -NoFallback
            $first = "$(& ssh -F "$($sshd.Dir)/ssh_config" -o "ControlPath=$socket" -O check bcmrtest 2>&1)"
            $LASTEXITCODE | Should -Be 0
            Copy-BcmrItem (Join-Path $artifacts 'app.zip') "bcmrtest:$remote/two.zip" -SshPersist 60 -NoFallback
            $first | Should -Match 'Master running'
            "$(& ssh -F "$($sshd.Dir)/ssh_config" -o "ControlPath=$socket" -O check bcmrtest 2>&1)" | Should -Be $first   # the same master
            (Get-FileHash "$remote/two.zip").Hash | Should -Be (Get-FileHash (Join-Path $artifacts 'app.zip')).Hash
        }
        finally {
            & ssh -F "$($sshd.Dir)/ssh_config" -o "ControlPath=$socket" -O exit bcmrtest 2>&1 | Out-Null
            Remove-Item Env:XDG_RUNTIME_DIR
            Remove-Item -Recurse -Force $runtime
        }
    }

    It '-SkipUnchanged reruns: an upload proves unchanged files by BLAKE3, a download by size and time; only the changed file moves' {
        # Both runs go into existing folders, so both land in the same place (cp's rule).
        $leaf = Split-Path -Leaf $artifacts
        $remote = Join-Path $sshd.Home "skip-$([guid]::NewGuid().ToString('n'))"
        $null = New-Item -ItemType Directory $remote
        Copy-BcmrItem $artifacts "bcmrtest:$remote" -Recurse
        New-RandomFile (Join-Path $artifacts 'build.log') 5000 44   # same size, new bytes
        $up = Copy-BcmrItem $artifacts "bcmrtest:$remote" -Recurse -SkipUnchanged -PassThru
        @($up | Where-Object Status -eq 'Copied').Destination | Should -Be "bcmrtest:$remote/$leaf/build.log"
        @($up | Where-Object Status -eq 'Skipped') | Should -HaveCount 3
        ($up | Where-Object Status -eq 'Skipped')[0].Message | Should -Match 'unchanged \(same size and BLAKE3'
        Get-TreeHash "$remote/$leaf" | Should -Be (Get-TreeHash $artifacts)

        $back = Join-Path $TestDrive "skipback-$([guid]::NewGuid().ToString('n'))"
        $null = New-Item -ItemType Directory $back
        Copy-BcmrItem "bcmrtest:$remote/$leaf" $back -Recurse
        # Our server's listing carries the nanoseconds (ListMeta): the copy has the remote file's time exactly.
        (Get-Item "$back/$leaf/app.zip").LastWriteTimeUtc | Should -Be (Get-Item "$remote/$leaf/app.zip").LastWriteTimeUtc
        $down = Copy-BcmrItem "bcmrtest:$remote/$leaf" $back -Recurse -SkipUnchanged -PassThru
        @($down | Where-Object Status -eq 'Skipped') | Should -HaveCount 4
        Get-TreeHash "$back/$leaf" | Should -Be (Get-TreeHash $artifacts)
    }

    It '-RetryCount 2: the ssh connection killed once during a 200 MiB upload, the copy completes exactly with one warning' {
        $big = Join-Path $TestDrive 'retry-big.bin'
        New-RandomFile $big (200MB) 21
        $remote = Join-Path $sshd.Home "retry-$([guid]::NewGuid().ToString('n'))"
        $null = New-Item -ItemType Directory $remote
        # A thread job kills this process's ssh once 40 MiB have arrived (the copy itself blocks this runspace).
        $killer = Start-ThreadJob -ArgumentList $remote, $PID -ScriptBlock {
            param($dir, $parent)
            $deadline = [DateTime]::UtcNow.AddMinutes(2)
            while ([DateTime]::UtcNow -lt $deadline) {
                $partial = Get-ChildItem -Force $dir -Filter '.retry-big.bin*' -ErrorAction SilentlyContinue | Measure-Object Length -Sum
                if ($partial.Sum -ge 40MB) {
                    $ssh = Get-Process ssh -ErrorAction SilentlyContinue | Where-Object { $_.Parent.Id -eq $parent }
                    if ($ssh) { $ssh | Stop-Process -Force; return 'killed' }
                }
                Start-Sleep -Milliseconds 5
            }
            'not killed'
        }
        $result = Copy-BcmrItem $big "bcmrtest:$remote" -RetryCount 2 -RetryDelay 0 -PassThru -WarningVariable warnings -WarningAction SilentlyContinue
        $killer | Wait-Job | Receive-Job | Should -Be 'killed'
        $result.Status | Should -Be 'Copied'
        (Get-FileHash (Join-Path $remote 'retry-big.bin')).Hash | Should -Be (Get-FileHash $big).Hash
        $warnings | Should -HaveCount 1
        $warnings[0] | Should -Match '^retry 1/2 of 1 file after a transient failure'
    }

    It '-RetryCount does not retry what cannot heal: a source this account cannot read' -Skip:(-not $IsLinux -or -not (Get-Command setpriv -ErrorAction SilentlyContinue)) {
        $secret = Join-Path $TestDrive 'secret.bin'
        New-RandomFile $secret 1000 22
        # Unreadable even to root: mode 000, and the child pwsh runs without the capabilities that override it.
        & chmod 000 $secret
        $out = & setpriv --bounding-set=-dac_override,-dac_read_search $Pwsh -NoProfile -NonInteractive -Command "Import-Module '$ModuleManifest'; Copy-BcmrItem '$secret' '$TestDrive/unreadable-copy.bin' -RetryCount 3 -RetryDelay 0" 2>&1 | Out-String
        $out | Should -Match 'Permission denied'
        $out | Should -Not -Match 'retry'
    }

    It '-LogPath appends JSON lines that Get-Content | ConvertFrom-Json reads, resolved against the PowerShell location' {
        $remote = Join-Path $sshd.Home "log-$([guid]::NewGuid().ToString('n'))"
        Push-Location $TestDrive
        try {
            Get-ChildItem $artifacts | Copy-BcmrItem -Destination "bcmrtest:$remote" -LogPath ./transfers.log
            Copy-BcmrItem (Join-Path $artifacts 'nope.bin') "bcmrtest:$remote" -LogPath ./transfers.log -ErrorAction SilentlyContinue
        }
        finally { Pop-Location }
        $entries = Get-Content (Join-Path $TestDrive 'transfers.log') | ConvertFrom-Json
        ($entries | Where-Object type -eq 'result') | Should -HaveCount 2
        $files = $entries | Where-Object { $_.type -eq 'file' -and $_.status -eq 'copied' }
        $files | Should -HaveCount 4
        $files | ForEach-Object { $_.transport | Should -Be 'ssh'; [datetime]$_.time | Should -BeOfType ([datetime]) }
        ($entries | Where-Object type -eq 'result')[0].files | Should -Be 4
        ($entries | Where-Object status -eq 'failed').error_code | Should -Be 'NotFound'
    }

    It '-SshCommand with a relative -F path resolves against the PowerShell location' {
        $cfgDir = Join-Path $TestDrive "cfg-$([guid]::NewGuid().ToString('n'))"
        $null = New-Item -ItemType Directory $cfgDir
        Copy-Item (Join-Path $sshd.Dir 'ssh_config') (Join-Path $cfgDir 'my_config')
        $remote = Join-Path $sshd.Home "rel-$([guid]::NewGuid().ToString('n'))"
        Push-Location $cfgDir
        try { Copy-BcmrItem $artifacts "bcmrtest:$remote" -Recurse -NoFallback -SshCommand 'ssh -F ./my_config' -ErrorAction Stop }
        finally { Pop-Location }
        Get-TreeHash $remote | Should -Be (Get-TreeHash $artifacts)
    }
}

Describe 'Help' {
    It 'Get-Help -Full documents every parameter of <Name>' -ForEach @(@{ Name = 'Copy-BcmrItem' }, @{ Name = 'Sync-BcmrItem' }) {
        $help = Get-Help $Name -Full
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $names = (Get-Command $Name).Parameters.Keys | Where-Object { $_ -notin [System.Management.Automation.PSCmdlet]::CommonParameters -and $_ -notin [System.Management.Automation.PSCmdlet]::OptionalCommonParameters }
        foreach ($n in $names) {
            $p = $help.parameters.parameter | Where-Object name -eq $n
            $p | Should -Not -BeNullOrEmpty -Because "$n needs a help entry"
            ($p.description.Text -join ' ') | Should -Not -BeNullOrEmpty -Because "$n needs a description"
        }
    }
}
