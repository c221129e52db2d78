#!/usr/bin/env bash
# Protocol turns of one small file copy, bcmr against scp (OpenSSH 9's scp speaks SFTP), over a loopback sshd with the
# bytes between each program and its ssh held back DELAY_MS in each direction (bench/tools/delay-pipe.py): what a
# link's latency costs each protocol after the login. The login itself is not delayed, so the times understate a
# real WAN's by the same amount for both; the difference between DELAY_MS=0 and DELAY_MS=D, divided by 2D, is the
# number of round trips each one waits for. Rounds interleaved (bcmr, scp, in turn), medians printed.
# Usage: bench/turns.sh [rounds] (default 7)   DELAY_MS="0 25" (the delays run), BCMR=path (default: the shipped AOT bcmr),
#   PORT=2298. Needs root (a user of its own for the remote end), sshd, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-7}
DIR=${BENCH_DIR:-/tmp/bcmr-tbench}
DEST=${BENCH_DEST:-/dev/shm/bcmr-tbench}
PORT=${PORT:-2298}
DELAYS=${DELAY_MS:-0 25}
. bench/common.sh
bench_bcmr
home=$DEST/home

cleanup() {
  stop_sshd sshd
  rm -rf "$home/small.txt" "$home/up" "$home/.local" "$DEST/down"
  rmdir "$home" "$DEST" 2>/dev/null || true
}
trap cleanup EXIT

cfg=$(start_sshd sshd "$PORT" "")
sleep 0.3
# The ssh both tools run: delay-pipe in front of the real one (scp's -S calls it as ssh).
printf '#!/bin/sh\nexec %s ssh "$@"\n' "$PWD/bench/tools/delay-pipe.py" > "$DIR/delayed-ssh"
chmod 755 "$DIR/delayed-ssh"
echo "$(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) cores; bcmr: $("$BCMR" --version | head -1); $ROUNDS rounds"

printf 'a small file\n' > "$DIR/small.txt"
cp "$DIR/small.txt" "$home/small.txt" && chown bcmrbench "$home/small.txt"
mkdir -p "$home/up" "$DEST/down" && chown bcmrbench "$home/up"
ms() { echo $(( ($2 - $1) / 1000000 )); }
for delay in $DELAYS; do
  export DELAY_MS=$delay
  out=$DIR/turns-$delay.txt
  : > "$out"
  for i in $(seq 1 "$ROUNDS"); do
    for dir in down up; do
      rm -f "$DEST/down/small.txt" "$home/up/small.txt"
      if [ $dir = down ]; then from=bench:$home/small.txt to=$DEST/down/small.txt; else from=$DIR/small.txt to=bench:$home/up/small.txt; fi
      if [ $dir = down ]; then copy=$DEST/down/small.txt; else copy=$home/up/small.txt; fi
      s=$(date +%s%N); BCMR_SSH="$DIR/delayed-ssh -F $cfg" "$BCMR" copy -q "$from" "$to"; e=$(date +%s%N)
      cmp "$DIR/small.txt" "$copy" # a copy that did not arrive is not timed
      echo "bcmr-$dir $(ms "$s" "$e")" >> "$out"
      rm -f "$DEST/down/small.txt" "$home/up/small.txt"
      s=$(date +%s%N); scp -q -S "$DIR/delayed-ssh" -F "$cfg" "$from" "$to"; e=$(date +%s%N)
      cmp "$DIR/small.txt" "$copy"
      echo "scp-$dir $(ms "$s" "$e")" >> "$out"
    done
  done
done
python3 - "$DIR" $DELAYS <<'PY'
import statistics, sys
d, delays = sys.argv[1], sys.argv[2:]
med = {}
for delay in delays:
    runs = {}
    for line in open(f"{d}/turns-{delay}.txt"):
        k, v = line.split(); runs.setdefault(k, []).append(int(v))
    for k, v in runs.items(): med[(delay, k)] = statistics.median(v)
    print(f"DELAY_MS={delay}: " + ", ".join(f"{k} {med[(delay, k)]:.0f} ms" for k in sorted(runs))
          + f" | bcmr/scp down {med[(delay, 'bcmr-down')] / med[(delay, 'scp-down')]:.2f}, up {med[(delay, 'bcmr-up')] / med[(delay, 'scp-up')]:.2f}")
base = delays[0]
for delay in delays[1:]:
    rtt = 2 * float(delay)
    if rtt == 0: continue
    print(f"round trips waited for at DELAY_MS={delay} (against {base}): " + ", ".join(
        f"{k} {(med[(delay, k)] - med[(base, k)]) / rtt:.1f}" for k in ("bcmr-down", "scp-down", "bcmr-up", "scp-up")))
PY
