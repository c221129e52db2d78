#!/usr/bin/env bash
# Resumable copy benchmarks (issue 3), competitors in the same run, ratios printed.
#   1. 1 GiB with -C (checkpoint syncs included) against cp --reflink=never, and against cp followed by a sync of
#      the copy (the durable equivalent), on the disk (ext4) and on tmpfs (where syncs are free: CPU cost only).
#   2. The resume decision on a 64 MiB and a 768 MiB partial destination (resume_check_secs from --json),
#      warm and cold page cache.
# Usage: bench/resume.sh [runs]   (default 5). BCMR=path picks the binary (default: the portable AOT build).
# Needs hyperfine, python3; writes under $BENCH_DIR (default /tmp/bcmr-bench) and /dev/shm.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
DIR=${BENCH_DIR:-/tmp/bcmr-bench}
SHM=/dev/shm/bcmr-bench
BCMR=${BCMR:-$PWD/out/bcmr-linux-x64/bcmr}
[ -x "$BCMR" ] || dotnet publish src/Bcmr.Cli -c Release -p:PublishProfile=aot-linux-x64 >/dev/null
mkdir -p "$DIR" "$SHM"
export XDG_DATA_HOME="$DIR/xdg"   # sessions of the benchmark, not the user's (per location in part 1)

median() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(str(r["median"]) for r in d["results"]))' "$1"; }
ratio()  { python3 -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2]):.2f}")' "$1" "$2"; }

[ -f "$DIR/big.bin" ] || head -c 1073741824 /dev/urandom > "$DIR/big.bin"
cat "$DIR/big.bin" > /dev/null
echo "binary: $BCMR"

for where in "$DIR" "$SHM"; do
  # Outputs are set aside, not deleted, between runs: deleting a 1 GiB file right before writing one made ext4
  # runs swing by seconds. The pile goes at the end.
  mkdir -p "$where/trash"
  # On tmpfs the pile would be held in RAM and reclaim would slow the later runs, so it is deleted there.
  if [ "$where" = "$SHM" ]; then aside='rm -f'; else aside="mv -t $where/trash"; fi
  printf '#!/bin/sh\n[ -e "%s/out" ] && mv "%s/out" "%s/out.$(date +%%s%%N)" && %s "%s"/out.*\nrm -rf "%s/xdg"\nsync\nexit 0\n' \
    "$where" "$where" "$where" "$aside" "$where" "$where" > "$where/prep.sh"
  chmod +x "$where/prep.sh"
  echo "== 1 GiB with -C, destination on $(df --output=fstype "$where" | tail -1 | tr -d ' ') ($where)"
  # Sessions on the same filesystem as the copy, so the tmpfs run measures CPU cost alone.
  XDG_DATA_HOME="$where/xdg" hyperfine -N -r "$RUNS" -w 1 --prepare "$where/prep.sh" --export-json "$where/c.json" \
    "cp --reflink=never $DIR/big.bin $where/out" \
    "sh -c 'cp --reflink=never $DIR/big.bin $where/out && sync $where/out'" \
    "$BCMR copy -q -C --reflink disable $DIR/big.bin $where/out"
  read -r cp cpsync bcmr <<<"$(median "$where/c.json")"
  echo "RATIO 1GiB -C: bcmr/cp = $(ratio "$bcmr" "$cp") (goal <= 1.5); bcmr/(cp+sync) = $(ratio "$bcmr" "$cpsync")"
  rm -rf "$where/trash" "$where/out"
done

echo "== resume decision: 64 MiB vs 768 MiB already written"
SRC="$DIR/resume-src.bin"
[ -f "$SRC" ] || head -c $((800 * 1024 * 1024)) "$DIR/big.bin" > "$SRC"
for mib in 64 768; do
  state="$DIR/state-$mib"
  rm -rf "$state" "$DIR/xdg" && mkdir -p "$state"
  # Interrupt a real copy just after the checkpoint at $mib MiB.
  "$BCMR" copy -q -C "$SRC" "$state/dst.bin" & pid=$!
  while [ "$(stat -c %s "$state/.dst.bin.bcmr-part" 2>/dev/null || echo 0)" -lt $(((mib + 2) * 1024 * 1024)) ]; do sleep 0.001; done
  kill -9 $pid; wait $pid 2>/dev/null || true
  cp -a "$DIR/xdg" "$state/xdg"
  cp --reflink=never "$state/.dst.bin.bcmr-part" "$state/part.keep"
  for cache in warm cold; do
    times=()
    for _ in $(seq "$RUNS"); do
      rm -rf "$DIR/xdg" && cp -a "$state/xdg" "$DIR/xdg"
      cp --reflink=never "$state/part.keep" "$state/.dst.bin.bcmr-part" && sync
      [ "$cache" = cold ] && echo 3 > /proc/sys/vm/drop_caches
      line=$("$BCMR" --json copy -C "$SRC" "$state/dst.bin" | grep '"type":"file"')
      times+=("$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["resume_check_secs"], d["resume_check_bytes"], d["resumed_from"])' "$line")")
      rm -f "$state/dst.bin"
    done
    printf '%s\n' "${times[@]}" | python3 -c '
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
t = statistics.median(float(r[0]) for r in rows) * 1000
print(f"RESUME {sys.argv[1]:>3} MiB written, {sys.argv[2]} cache: decision {t:.1f} ms (median of {len(rows)}), "
      f"read back {int(rows[0][1]) // 1048576} MiB, resumed from {int(rows[0][2]) // 1048576} MiB (goal <= 50 ms)")' "$mib" "$cache"
  done
  rm -rf "$state"
done
rm -rf "$DIR/xdg" "$SHM"
