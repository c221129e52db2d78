#!/usr/bin/env bash
# Remote copy benchmarks (issue 4) over a private loopback sshd, competitors in the same run, ratios printed.
#   1. 10 000 x 64 KiB files, upload and download: bcmr vs scp -r vs rsync -a -e ssh.
#   2. 1 GiB random file download: bcmr, bcmr --fast, scp.
#   3. Start-up cost of one remote call: one small file, bcmr vs scp.
# Usage: bench/remote.sh [runs]   (default 3). BCMR=path picks the binary (default: the portable AOT build).
# Needs sshd (openssh-server), hyperfine, rsync, python3. Uses /tmp/bcmr-rbench; port $PORT (default 2298).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
DIR=${BENCH_DIR:-/tmp/bcmr-rbench}
PORT=${PORT:-2298}
BCMR=${BCMR:-$PWD/out/bcmr-linux-x64/bcmr}
[ -x "$BCMR" ] || dotnet publish src/Bcmr.Cli -c Release -p:PublishProfile=aot-linux-x64 >/dev/null
mkdir -p "$DIR/home"
SSHD=$DIR/sshd
SSH=$(PORT=$PORT DIR=$SSHD bash ../shared/tools/sshd-loopback.sh 2>/dev/null || PORT=$PORT DIR=$SSHD bash "$(dirname "$0")/../../shared/tools/sshd-loopback.sh")
HOST=bench
# The remote bcmr serves $DIR/home (its HOME), so the benchmark never touches the real home.
printf '#!/bin/sh\nexport HOME=%s/home XDG_DATA_HOME=%s/home/.xdg\nexec %s "$@"\n' "$DIR" "$DIR" "$BCMR" > "$DIR/remote-bcmr"
chmod +x "$DIR/remote-bcmr"
export BCMR_SSH="ssh -F $SSHD/ssh_config" BCMR_REMOTE="$DIR/remote-bcmr" XDG_DATA_HOME="$DIR/xdg"
SCP="scp -q -F $SSHD/ssh_config"
RSYNC="rsync -a -e 'ssh -F $SSHD/ssh_config'"

median() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(str(r["median"]) for r in d["results"]))' "$1"; }
ratio()  { python3 -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2]):.2f}")' "$1" "$2"; }

if [ ! -d "$DIR/many" ]; then
  mkdir -p "$DIR/many"
  for d in $(seq -w 0 99); do
    mkdir -p "$DIR/many/d$d"
    for f in $(seq -w 0 99); do head -c 65536 /dev/urandom > "$DIR/many/d$d/f$f"; done
  done
fi
[ -f "$DIR/home/big.bin" ] || head -c 1073741824 /dev/urandom > "$DIR/home/big.bin"
echo "binary: $BCMR"

echo "== 10 000 x 64 KiB upload"
hyperfine -r "$RUNS" -w 1 --prepare "rm -rf $DIR/home/up" --export-json "$DIR/up.json" \
  "$SCP -r $DIR/many $HOST:$DIR/home/up" \
  "$RSYNC $DIR/many/ $HOST:$DIR/home/up/" \
  "$BCMR copy -q -r $DIR/many $HOST:$DIR/home/up"
read -r scp rsync bcmr <<<"$(median "$DIR/up.json")"
echo "upload:   bcmr/scp = $(ratio "$bcmr" "$scp") (goal <= 0.5)   bcmr/rsync = $(ratio "$bcmr" "$rsync") (goal <= 1.0)"

echo "== 10 000 x 64 KiB download"
cp -r "$DIR/many" "$DIR/home/many-src" 2>/dev/null || true
hyperfine -r "$RUNS" -w 1 --prepare "rm -rf $DIR/down" --export-json "$DIR/down.json" \
  "$SCP -r $HOST:$DIR/home/many-src $DIR/down" \
  "$RSYNC $HOST:$DIR/home/many-src/ $DIR/down/" \
  "$BCMR copy -q -r $HOST:$DIR/home/many-src $DIR/down"
read -r scp rsync bcmr <<<"$(median "$DIR/down.json")"
echo "download: bcmr/scp = $(ratio "$bcmr" "$scp") (goal <= 0.5)   bcmr/rsync = $(ratio "$bcmr" "$rsync") (goal <= 1.0)"

echo "== 1 GiB download"
hyperfine -r "$RUNS" -w 1 --prepare "rm -f $DIR/big.out" --export-json "$DIR/big.json" \
  "$SCP $HOST:$DIR/home/big.bin $DIR/big.out" \
  "$BCMR copy -q $HOST:$DIR/home/big.bin $DIR/big.out" \
  "$BCMR copy -q --fast $HOST:$DIR/home/big.bin $DIR/big.out"
read -r scp bcmr fast <<<"$(median "$DIR/big.json")"
echo "1 GiB:    bcmr/scp = $(ratio "$bcmr" "$scp") (goal <= 1.1)   bcmr --fast/scp = $(ratio "$fast" "$scp") (goal <= 1.0)"

echo "== start-up: one small file"
echo hello > "$DIR/home/small.txt"
hyperfine -N -r 10 -w 2 --prepare "rm -f $DIR/small.out" --export-json "$DIR/small.json" \
  "$SCP $HOST:$DIR/home/small.txt $DIR/small.out" \
  "$BCMR copy -q $HOST:$DIR/home/small.txt $DIR/small.out" \
  "ssh -F $SSHD/ssh_config $HOST true"
read -r scp bcmr ssh <<<"$(median "$DIR/small.json")"
echo "small:    bcmr/scp = $(ratio "$bcmr" "$scp")   (bare ssh round trip: $(python3 -c "print(f'{$ssh*1000:.0f}')") ms, bcmr $(python3 -c "print(f'{$bcmr*1000:.0f}')") ms, scp $(python3 -c "print(f'{$scp*1000:.0f}')") ms)"
