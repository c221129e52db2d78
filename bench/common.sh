#!/usr/bin/env bash
# Helpers the remote benchmarks share (sourced): a private sshd for the bench's own account, hyperfine medians, ratios.
# The caller sets DIR (where the sshd's keys and config go).

# bench_account: the remote end's account, bcmrbench, whose login shell is /bin/sh with no rc files, so that a login
# costs what ssh costs (root's shell here sources ~/.bashrc, which runs pyenv: 0.4-0.8 s of every login, paid by every
# tool, which blurs every ratio). Its home is $DEST/home (set again when another script made the account), so the
# remote bcmr keeps its data there ($HOME/.local/share/bcmr), never in the real home; $DIR must be readable by it.
# The caller sets DIR and DEST.
bench_account() {
  id bcmrbench >/dev/null 2>&1 || useradd -r -M -s /bin/sh -d "$DEST/home" bcmrbench
  [ "$(getent passwd bcmrbench | cut -d: -f6)" = "$DEST/home" ] || usermod -d "$DEST/home" bcmrbench
  usermod -p '*' bcmrbench # not locked (sshd refuses locked accounts), and no password either
  mkdir -p "$DIR" "$DEST/home"
  chmod 755 "$DIR"
  chown bcmrbench "$DEST/home"
}

# remote_wrapper BCMR FILE: FILE (give it as BCMR_REMOTE) is a link to BCMR, so sshd's shell starts the remote bcmr as
# it starts an installed one (and scp): one exec, no script between (a wrapper script that set HOME cost the remote
# end a shell's start, ~5 ms here, that scp does not pay). The account's home keeps it out of the real home.
remote_wrapper() {
  ln -sfn "$1" "$2"
}

# start_sshd NAME PORT PREFIX: a private sshd on 127.0.0.1:PORT (run with PREFIX, e.g. inside a namespace) as
# ../shared/tools/sshd-loopback.sh starts one, keys readable by bcmrbench; prints its ssh_config.
start_sshd() {
  local d=$DIR/$1
  mkdir -p "$d" /run/sshd && chmod 755 "$d"
  [ -f "$d/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/host_ed25519"
  [ -f "$d/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/client_ed25519"
  cp "$d/client_ed25519.pub" "$d/authorized_keys" && chmod 644 "$d/authorized_keys"
  printf '%s\n' "Port $2" "ListenAddress 127.0.0.1" "HostKey $d/host_ed25519" "AuthorizedKeysFile $d/authorized_keys" \
    "PasswordAuthentication no" "KbdInteractiveAuthentication no" "StrictModes no" "PidFile $d/sshd.pid" "UsePAM no" \
    "MaxStartups 100" "Subsystem sftp /usr/lib/openssh/sftp-server" > "$d/sshd_config"
  [ -f "$d/sshd.pid" ] && kill "$(cat "$d/sshd.pid")" 2>/dev/null && sleep 0.3
  $3 /usr/sbin/sshd -f "$d/sshd_config"
  printf '%s\n' "Host bench" "  HostName 127.0.0.1" "  Port $2" "  User bcmrbench" "  IdentityFile $d/client_ed25519" \
    "  IdentitiesOnly yes" "  StrictHostKeyChecking no" "  UserKnownHostsFile /dev/null" "  LogLevel ERROR" > "$d/ssh_config"
  echo "$d/ssh_config"
}

# bench_bcmr: $BCMR (default: the shipped AOT bcmr, published if missing) on both ends, as the bench account runs it:
# the remote command a link to the binary, the client's data in $DIR/xdg, the server's in its home.
bench_bcmr() {
  BCMR=${BCMR:-$PWD/out/bcmr-linux-x64/bcmr}
  [ -x "$BCMR" ] || dotnet publish src/Bcmr.Cli -c Release -p:PublishProfile=aot-linux-x64 >/dev/null
  bench_account
  remote_wrapper "$BCMR" "$DIR/remote-bcmr"
  export XDG_DATA_HOME="$DIR/xdg" BCMR_REMOTE="$DIR/remote-bcmr"
}

# stop_sshd NAME: stops the sshd that start_sshd NAME started, and the sessions a failed run left behind, if the pid
# file still names it (one left by an earlier run may name another process by now).
stop_sshd() {
  local d=$DIR/$1 pid cmd=
  pid=$(cat "$d/sshd.pid" 2>/dev/null) || pid=
  [ -n "$pid" ] && cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || true
  if [[ $cmd == *"-f $d/sshd_config"* ]]; then
    pkill -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  fi
}

# many_files DIR: the many-file workload, 10 000 random files of 64 KiB in 100 directories, made once (built under
# another name and renamed, so a run cut short never leaves a partial set that passes for it).
many_files() {
  [ -d "$1" ] && return
  rm -rf "$1.part"
  for d in $(seq -w 0 99); do
    mkdir -p "$1.part/d$d"
    for f in $(seq -w 0 99); do head -c 65536 /dev/urandom > "$1.part/d$d/f$f"; done
  done
  mv "$1.part" "$1"
}

median() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(str(r["median"]) for r in d["results"]))' "$1"; }
ratio()  { python3 -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2]):.2f}")' "$1" "$2"; }

