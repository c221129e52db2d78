#!/usr/bin/env bash
# Resumable copy benchmarks (issue 3), competitors in the same run, ratios printed.
#   1. 1 GiB with -C (checkpoint syncs included) against cp --reflink=never, and against cp followed by a sync of
#      the copy (the durable equivalent), on the disk (ext4) and on tmpfs (where syncs are free: CPU cost only).
#   2. The resume decision on a 64 MiB and a 768 MiB partial destination (resume_check_secs from --json),
#      warm and cold page cache.
# Usage: bench/resume.sh [runs] [copy|paired|decision|all]   (default 5 all). BCMR="path ..." picks the binaries, all in
# the same hyperfine run as cp (default: the portable AOT build, plus the AVX2 one, out/bcmr-linux-x64-v3/bcmr, if
# it was published). Each command's median, min and max are printed, and the ratios of medians and of minimums.
# 'paired' runs the 1 GiB copies as rounds of cp then each bcmr, back to back, and prints the median and range of
# the per-round ratios: on a machine others are using, neighbours in time see the same load, medians of separate
# series do not. ONLY=ext4 or ONLY=tmpfs limits the copies to one destination.
# Needs hyperfine, python3; writes under $BENCH_DIR (default /tmp/bcmr-bench) and /dev/shm.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
PART=${2:-all}
DIR=${BENCH_DIR:-/tmp/bcmr-bench}
SHM=/dev/shm/bcmr-bench
if [ -z "${BCMR:-}" ]; then
  BCMR=$PWD/out/bcmr-linux-x64/bcmr
  [ -x "$BCMR" ] || dotnet publish src/Bcmr.Cli -c Release -p:PublishProfile=aot-linux-x64 >/dev/null
  [ -x out/bcmr-linux-x64-v3/bcmr ] && BCMR="$BCMR $PWD/out/bcmr-linux-x64-v3/bcmr"
fi
read -r -a BINS <<<"$BCMR"
trap 'rm -rf "$DIR/trash" "$DIR/out" "$SHM"' EXIT   # also when a run fails: the set-aside outputs are GiBs
mkdir -p "$DIR" "$SHM"
export XDG_DATA_HOME="$DIR/xdg"   # sessions of the benchmark, not the user's (per location in part 1)

# Per command of a hyperfine export: median, min and max; then each bcmr against cp (the first command) and cp+sync.
report() {
  python3 - "$1" <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))["results"]
for r in rs:
    print(f"  {r['median']:6.2f} s median  ({r['min']:.2f}-{r['max']:.2f})  {r['command']}")
cp, cpsync = rs[0], rs[1]
for r in rs[2:]:
    name = r["command"].split()[0]
    print(f"RATIO 1GiB -C: {name}: bcmr/cp = {r['median']/cp['median']:.2f} (of minimums {r['min']/cp['min']:.2f}; "
          f"goal <= 1.5); bcmr/(cp+sync) = {r['median']/cpsync['median']:.2f}")
PY
}

[ -f "$DIR/big.bin" ] || head -c 1073741824 /dev/urandom > "$DIR/big.bin"
cat "$DIR/big.bin" > /dev/null
echo "binaries: ${BINS[*]}"

paired() {  # paired WHERE: rounds of cp, bcmr..., each after prep.sh; per-round ratios to cp
  python3 - "$1" "$RUNS" "$DIR/big.bin" "${BINS[@]}" <<'PY'
import os, statistics, subprocess, sys, time
where, runs, src, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
out = os.path.join(where, "out")
cmds = [["cp", "--reflink=never", src, out]] + [[b, "copy", "-q", "-C", "--reflink", "disable", src, out] for b in bins]
env = dict(os.environ, XDG_DATA_HOME=os.path.join(where, "xdg"))
times = [[] for _ in cmds]
for r in range(runs + 1):  # round 0 warms up
    for i, c in enumerate(cmds):
        subprocess.run([os.path.join(where, "prep.sh")], check=True)
        t = time.perf_counter()
        subprocess.run(c, check=True, env=env)
        if r: times[i].append(time.perf_counter() - t)
cp = times[0]
print(f"  cp: median {statistics.median(cp):.2f} s ({min(cp):.2f}-{max(cp):.2f}), {runs} rounds")
for b, ts in zip(bins, times[1:]):
    q = sorted(t / c for t, c in zip(ts, cp))
    print(f"PAIRED 1GiB -C: {b}: median {statistics.median(ts):.2f} s ({min(ts):.2f}-{max(ts):.2f}); "
          f"bcmr/cp per round: median {statistics.median(q):.2f}, range {q[0]:.2f}-{q[-1]:.2f}, "
          f"middle half {q[len(q) // 4]:.2f}-{q[(3 * len(q)) // 4]:.2f} (goal <= 1.5)")
PY
}

WHERES=("$DIR" "$SHM")   # ONLY=ext4 or ONLY=tmpfs runs the copies on one of them
[ "${ONLY:-}" = ext4 ] && WHERES=("$DIR")
[ "${ONLY:-}" = tmpfs ] && WHERES=("$SHM")
[ "$PART" = decision ] || for where in "${WHERES[@]}"; do
  # Outputs are set aside, not deleted, between runs: deleting a 1 GiB file right before writing one made ext4
  # runs swing by seconds. The pile is bounded (it once filled the disk): from 6 set-aside files on, all but the
  # newest are deleted, then a sync and a pause before the next run. The rest goes at the end.
  mkdir -p "$where/trash"
  # On tmpfs the pile would be held in RAM and reclaim would slow the later runs, so it is deleted there.
  if [ "$where" = "$SHM" ]; then aside='rm -f'; else aside="mv -t $where/trash"; fi
  cat > "$where/prep.sh" <<EOF
#!/bin/sh
[ -e "$where/out" ] && mv "$where/out" "$where/out.\$(date +%s%N)" && $aside "$where"/out.*
if [ "\$(ls "$where/trash" | wc -l)" -ge 6 ]; then
  ls -t "$where/trash" | tail -n +2 | sed "s|^|$where/trash/|" | xargs rm -f
  sync; sleep 2
fi
rm -rf "$where/xdg"
sync
exit 0
EOF
  chmod +x "$where/prep.sh"
  echo "== 1 GiB with -C, destination on $(df --output=fstype "$where" | tail -1 | tr -d ' ') ($where)"
  if [ "$PART" = paired ]; then paired "$where"; rm -rf "$where/trash" "$where/out"; continue; fi
  # Sessions on the same filesystem as the copy, so the tmpfs run measures CPU cost alone.
  cmds=("cp --reflink=never $DIR/big.bin $where/out" "sh -c 'cp --reflink=never $DIR/big.bin $where/out && sync $where/out'")
  for b in "${BINS[@]}"; do cmds+=("$b copy -q -C --reflink disable $DIR/big.bin $where/out"); done
  XDG_DATA_HOME="$where/xdg" hyperfine -N -r "$RUNS" -w 1 --prepare "$where/prep.sh" --export-json "$where/c.json" --style basic \
    "${cmds[@]}" >/dev/null
  report "$where/c.json"
  rm -rf "$where/trash" "$where/out"
done
[ "$PART" = copy ] || [ "$PART" = paired ] && { rm -rf "$SHM"; exit 0; }

BCMR=${BINS[0]}
echo "== resume decision: 64 MiB vs 768 MiB already written ($BCMR)"
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
