# Helpers shared by the Pester files: dot-source in BeforeAll. Everything lives under $TestDrive or a temp directory
# that the caller removes; nothing touches the real home.

$script:ModuleManifest = Join-Path $PSScriptRoot '../../out/Bcmr/Bcmr.psd1'
if (-not (Test-Path $script:ModuleManifest)) { throw "Publish the module first: dotnet publish src/Bcmr.Cmdlets -c Release -o out/Bcmr" }
# The pwsh running these tests: $PSHOME holds its launcher (under the .NET tool the process itself is dotnet).
$script:Pwsh = Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')

function New-RandomFile([string] $Path, [int] $Size, [int] $Seed) {
    $null = New-Item -ItemType Directory -Force -Path (Split-Path $Path)
    $bytes = [byte[]]::new($Size)
    [System.Random]::new($Seed).NextBytes($bytes)
    [System.IO.File]::WriteAllBytes($Path, $bytes)
}

# Relative path -> SHA-256 of every file under $Root (sorted), so two trees compare with Should -Be.
function Get-TreeHash([string] $Root) {
    Get-ChildItem -LiteralPath $Root -Recurse -File -Force | Sort-Object FullName | ForEach-Object {
        '{0} {1}' -f [System.IO.Path]::GetRelativePath($Root, $_.FullName).Replace('\', '/'), (Get-FileHash -LiteralPath $_.FullName -Algorithm SHA256).Hash
    }
}

# A private OpenSSH server on 127.0.0.1 (random port, fresh keys), as ../shared/tools/sshd-loopback.sh starts one.
# The remote command runs the published module in real pwsh: Start-BcmrServe, found through PSModulePath, with HOME
# (the server root) and XDG_DATA_HOME pointed at the server's own directory. Returns $null where sshd is missing.
function Start-LoopbackSshd {
    if (-not $IsLinux -or -not (Test-Path /usr/sbin/sshd)) { return $null }
    $dir = Join-Path ([System.IO.Path]::GetTempPath()) "bcmr-pester-sshd-$([guid]::NewGuid().ToString('n'))"
    $remoteHome = Join-Path $dir 'home'
    $null = New-Item -ItemType Directory -Force -Path $dir, $remoteHome, /run/sshd
    & ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519"
    & ssh-keygen -q -t ed25519 -N '' -f "$dir/client_ed25519"
    Copy-Item "$dir/client_ed25519.pub" "$dir/authorized_keys"
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start(); $port = $listener.LocalEndpoint.Port; $listener.Stop()
    Set-Content -Path "$dir/sshd_config" -Value @"
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
PidFile $dir/sshd.pid
UsePAM no
MaxStartups 100
MaxSessions 100
"@
    Set-Content -Path "$dir/ssh_config" -Value @"
Host bcmrtest
  HostName 127.0.0.1
  Port $port
  User $([Environment]::UserName)
  IdentityFile $dir/client_ed25519
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
"@
    $process = Start-Process /usr/sbin/sshd -ArgumentList '-D', '-e', '-f', "$dir/sshd_config" -PassThru -RedirectStandardError "$dir/sshd.log"
    $deadline = [DateTime]::UtcNow.AddSeconds(15)
    while ($true) {
        $probe = [System.Net.Sockets.TcpClient]::new()
        try { $probe.Connect([System.Net.IPAddress]::Loopback, $port); break }
        catch { if ([DateTime]::UtcNow -gt $deadline -or $process.HasExited) { throw "sshd did not start: $(Get-Content -Raw "$dir/sshd.log")" }; Start-Sleep -Milliseconds 50 }
        finally { $probe.Dispose() }
    }
    $modules = Split-Path (Split-Path (Resolve-Path $script:ModuleManifest))
    [pscustomobject]@{
        Dir           = $dir
        Process       = $process
        Home          = $remoteHome
        SshCommand    = "ssh -F $dir/ssh_config"
        RemoteCommand = "env HOME=$remoteHome XDG_DATA_HOME=$remoteHome/.local/share PSModulePath=$modules $script:Pwsh -NoProfile -NonInteractive -Command Start-BcmrServe"
    }
}

function Stop-LoopbackSshd($Sshd) {
    if ($null -eq $Sshd) { return }
    if (-not $Sshd.Process.HasExited) { $Sshd.Process.Kill($true); $Sshd.Process.WaitForExit(5000) }
    Remove-Item -Recurse -Force -LiteralPath $Sshd.Dir -ErrorAction SilentlyContinue
}
