#!/usr/bin/env bash
# bcmr sync --delete against rsync -a --delete (issue 21), competitors in the same hyperfine runs, ratios printed.
#   Profile (sparsync's): 10 dirs x 100 files x 4 KiB + 8 files x 2 MiB.
#   1. Remote, over a loopback sshd, the same ssh options for both tools: first sync (destination empty), no-change
#      sync, 100 files changed. Once with a new ssh connection per run for both, once with a warm ControlMaster for
#      both (rsync: -o ControlMaster=auto/ControlPersist; bcmr: --ssh-persist, which also keeps a resident server on
#      the host, reached through the master). Goals: first <= 0.8x rsync,
#      no-change <= 0.3x, 100 changed <= 0.5x.
#   2. Local mirror: first and no-change against rsync -a --delete. Goals: first <= 0.8x, no-change <= 0.5x.
#   3. 100 000 files (100 dirs x 1000 x 100 bytes), no-change, local and remote: time and peak memory of each tool.
#   4. --checksum, no change, remote: rsync -c (reads every file on both ends each run) against bcmr -c with its
#      remembered hashes cleared before each run (cold) and kept (warm: only what changed is read).
# Usage: bench/sync.sh [runs]   (default 5)   PARTS="remote local large" (default all)
#   BCMR=path  the binary on both ends (default: the shipped AOT bcmr; built if missing).
# Needs root (a user of its own for the remote end), sshd, hyperfine, rsync, python3, /usr/bin/time.
# Sources in $BENCH_DIR (default /tmp/bcmr-sbench), copies in $BENCH_DEST (default /dev/shm/bcmr-sbench).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
PARTS=${PARTS:-remote local large checksum}
DIR=${BENCH_DIR:-/tmp/bcmr-sbench}
DEST=${BENCH_DEST:-/dev/shm/bcmr-sbench}
BCMR=${BCMR:-$PWD/out/bcmr-linux-x64/bcmr}
[ -x "$BCMR" ] || dotnet publish src/Bcmr.Cli -c Release -p:PublishProfile=aot-linux-x64 >/dev/null
. bench/common.sh # (the script runs from the repository root)
bench_account # its own account, no rc files (common.sh says why)
remote_wrapper "$BCMR" "$DIR/remote-bcmr"
export XDG_DATA_HOME="$DIR/xdg" BCMR_REMOTE="$DIR/remote-bcmr" XDG_RUNTIME_DIR="$DIR/run"
mkdir -p "$DIR/run" && chmod 700 "$DIR/run"

profile() { # sparsync's profile in $1
  [ -d "$1" ] && return
  for d in $(seq 0 9); do
    mkdir -p "$1/d$d"
    for f in $(seq 0 99); do head -c 4096 /dev/urandom > "$1/d$d/f$f"; done
  done
  mkdir -p "$1/big"
  for f in $(seq 0 7); do head -c 2097152 /dev/urandom > "$1/big/b$f"; done
}

# change100 SRC: 100 of the small files get different bytes and a different size (one line appended).
change100() { for d in $(seq 0 9); do for f in $(seq 0 9); do date +%s%N >> "$1/d$d/f$f"; done; done; }

# trio LABEL RSYNC BCMR RSYNC_DST BCMR_DST: first, no-change, 100-changed, each rsync then bcmr in one hyperfine run.
trio() {
  local label=$1 rs=$2 bc=$3 rdst=$4 bdst=$5 src=$DIR/profile
  echo "== $label: first sync"
  hyperfine -r "$RUNS" -w 1 --prepare "rm -rf ${rdst#bench:} ${bdst#bench:}" --export-json "$DIR/$label-first.json" "$rs $src/ $rdst/" "$bc $src $bdst"
  echo "== $label: no change"
  hyperfine -r "$RUNS" -w 1 --export-json "$DIR/$label-same.json" "$rs $src/ $rdst/" "$bc $src $bdst"
  echo "== $label: 100 files changed"
  hyperfine -r "$RUNS" -w 1 --prepare "bash -c '$(declare -f change100); change100 $src'" --export-json "$DIR/$label-changed.json" \
    "$rs $src/ $rdst/" "$bc $src $bdst"
  local f s c
  read -r -a f <<<"$(median "$DIR/$label-first.json")"
  read -r -a s <<<"$(median "$DIR/$label-same.json")"
  read -r -a c <<<"$(median "$DIR/$label-changed.json")"
  echo "RESULT $label: first rsync ${f[0]}s bcmr ${f[1]}s ($(ratio "${f[1]}" "${f[0]}")x) | no change rsync ${s[0]}s bcmr ${s[1]}s" \
    "($(ratio "${s[1]}" "${s[0]}")x) | 100 changed rsync ${c[0]}s bcmr ${c[1]}s ($(ratio "${c[1]}" "${c[0]}")x)"
}

# peak LABEL CMD...: wall time and peak resident memory of one run (after one warm-up run).
peak() {
  local label=$1; shift
  "$@" >/dev/null 2>&1 || true
  /usr/bin/time -f "%e %M" -o "$DIR/peak" "$@" >/dev/null 2>&1 || true
  read -r secs kib <"$DIR/peak"
  echo "RESULT $label: ${secs}s, peak $((kib / 1024)) MiB"
}

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; bcmr: $BCMR ($("$BCMR" --version | head -1))"
# Made afresh each run: change100 appends to files, and a profile kept across runs drifts from 4 KiB random files to
# larger, compressible ones (a 14 KiB file, two thirds digits, after 500 runs).
rm -rf "$DIR/profile"
profile "$DIR/profile"
cfg=$(start_sshd sshd 2298 "")
# At the end: the sshd, rsync's master, bcmr's master and the resident server it reaches (--ssh-persist).
trap 'stop_sshd sshd; ssh -F "$cfg" -o ControlPath="$DIR/cm-%C" -O exit bench 2>/dev/null || true
  ssh -F "$cfg" -o ControlPath="$DIR/run/bcmr-ssh/%C" -O exit bench 2>/dev/null || true; pkill -u bcmrbench -f -- "serve --resident" || true' EXIT
home=$DEST/home

if [[ " $PARTS " == *" remote "* ]]; then
  trio "remote, a new ssh connection per run" "rsync -a --delete -e 'ssh -F $cfg'" "BCMR_SSH='ssh -F $cfg' $BCMR sync -q --delete" \
    "bench:$home/rs" "bench:$home/bc"
  mux="-o ControlMaster=auto -o ControlPath=$DIR/cm-%C -o ControlPersist=120"
  ssh -F "$cfg" $mux bench true # rsync's master, warm before the first run
  trio "remote, a warm ControlMaster for both" "rsync -a --delete -e 'ssh -F $cfg $mux'" \
    "BCMR_SSH='ssh -F $cfg' $BCMR sync -q --delete --ssh-persist 120" "bench:$home/rs" "bench:$home/bc"
fi

if [[ " $PARTS " == *" local "* ]]; then
  trio "local" "rsync -a --delete" "$BCMR sync -q --delete" "$DEST/rs" "$DEST/bc"
fi

if [[ " $PARTS " == *" large "* ]]; then
  big=$DIR/large
  if [ ! -d "$big" ]; then
    python3 - "$big" <<'EOF'
import os, sys
root = sys.argv[1]
for d in range(100):
    os.makedirs(f"{root}/d{d:03}")
    for f in range(1000):
        with open(f"{root}/d{d:03}/f{f:04}", "wb") as o: o.write(os.urandom(100))
EOF
  fi
  rsync -a --delete "$big/" "$DEST/large-rs/"; "$BCMR" sync -q --delete "$big" "$DEST/large-bc"
  peak "100 000 files, local no change, rsync" rsync -a --delete "$big/" "$DEST/large-rs/"
  peak "100 000 files, local no change, bcmr" "$BCMR" sync -q --delete "$big" "$DEST/large-bc"
  rsync -a --delete -e "ssh -F $cfg" "$big/" "bench:$home/large-rs/"
  BCMR_SSH="ssh -F $cfg" "$BCMR" sync -q --delete "$big" "bench:$home/large-bc"
  peak "100 000 files, remote no change, rsync" rsync -a --delete -e "ssh -F $cfg" "$big/" "bench:$home/large-rs/"
  peak "100 000 files, remote no change, bcmr" env BCMR_SSH="ssh -F $cfg" "$BCMR" sync -q --delete "$big" "bench:$home/large-bc"
  peak "100 000 files, remote no change, bcmr --ssh-persist (master and resident server warm)" \
    env BCMR_SSH="ssh -F $cfg" "$BCMR" sync -q --delete --ssh-persist 120 "$big" "bench:$home/large-bc"
fi

if [[ " $PARTS " == *" checksum "* ]]; then
  src=$DIR/profile
  rsync -a --delete -e "ssh -F $cfg" "$src/" "bench:$home/rs/"
  BCMR_SSH="ssh -F $cfg" "$BCMR" sync -q --delete "$src" "bench:$home/bc"
  echo "== checksum, no change"
  # One --prepare per command, in the commands' order: the cold run clears both ends' remembered hashes.
  hyperfine -r "$RUNS" -w 1 --export-json "$DIR/checksum.json" \
    --prepare "true" --prepare "rm -rf $DIR/xdg/bcmr/hashes $home/.local/share/bcmr/hashes" --prepare "true" \
    "rsync -a -c --delete -e 'ssh -F $cfg' $src/ bench:$home/rs/" \
    "BCMR_SSH='ssh -F $cfg' $BCMR sync -q -c --delete $src bench:$home/bc" \
    "BCMR_SSH='ssh -F $cfg' $BCMR sync -q -c --delete $src bench:$home/bc"
  read -r -a t <<<"$(median "$DIR/checksum.json")"
  echo "RESULT checksum no change: rsync -c ${t[0]}s | bcmr -c cold ${t[1]}s ($(ratio "${t[1]}" "${t[0]}")x) | bcmr -c warm ${t[2]}s ($(ratio "${t[2]}" "${t[0]}")x)"
fi
