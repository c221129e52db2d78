#!/usr/bin/env bash
# Local copy benchmarks (issues 2 and 17): bcmr (Native AOT build) against cp and rsync in the same run, warm cache,
# hyperfine medians, ratios printed. Usage: bench/local.sh [runs]   (default 5 runs per command)
# Needs: hyperfine, rsync, clang + zlib1g-dev (AOT publish). Data lives in $BENCH_DIR (default /tmp/bcmr-bench).
#   BCMR=path         the bcmr measured (default: the shipped AOT bcmr, built if missing)
#   BCMR_BEFORE=path  another bcmr (e.g. one published from an earlier commit) run in the same hyperfine runs as
#                     each bcmr command; its ratio is printed beside, so a change is judged before/after in one run
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
DIR=${BENCH_DIR:-/tmp/bcmr-bench}
BCMR=${BCMR:-$PWD/out/bcmr-linux-x64/bcmr}
BCMR_BEFORE=${BCMR_BEFORE:-}
[ -x "$BCMR" ] || dotnet publish src/Bcmr.Cli -c Release -p:PublishProfile=aot-linux-x64 >/dev/null
mkdir -p "$DIR"

median() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(str(r["median"]) for r in d["results"]))' "$1"; }
ratio()  { python3 -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2]):.2f}")' "$1" "$2"; }

echo "== setup"
if [ ! -f "$DIR/big.bin" ]; then head -c 1073741824 /dev/urandom > "$DIR/big.bin"; fi
if [ ! -d "$DIR/small-tree" ]; then
  python3 - "$DIR/small-tree" <<'PY'
import os, random, sys
root = sys.argv[1]; rnd = random.Random(7)
for d in range(420):
    path = os.path.join(root, f"pkg{d % 20}", f"mod{d}")
    os.makedirs(path, exist_ok=True)
    for f in range(5):
        with open(os.path.join(path, f"file{f}.txt"), "wb") as fh:
            fh.write(rnd.randbytes(rnd.randint(1000, 8000)))
PY
fi
if [ ! -d "$DIR/64k-tree" ]; then
  python3 - "$DIR/64k-tree" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(100):
    path = os.path.join(root, f"d{d}")
    os.makedirs(path, exist_ok=True)
    for f in range(100):
        with open(os.path.join(path, f"f{f}.bin"), "wb") as fh:
            fh.write(os.urandom(65536))
PY
fi
cat "$DIR/big.bin" > /dev/null; tar cf - -C "$DIR" small-tree 64k-tree > /dev/null   # warm the page cache
echo "files: $(find "$DIR/small-tree" -type f | wc -l) small in $(find "$DIR/small-tree" -mindepth 2 -type d | wc -l) dirs; $(find "$DIR/64k-tree" -type f | wc -l) x 64 KiB"

# hyperfine -N runs commands without a shell, so the preparation step is a script of its own. It sets the last
# output aside instead of deleting it: ext4 skips inodes deleted in the last ~30 s when allocating, and an
# rm -rf of thousands of files between runs made cp -R itself swing from 0.26 s to 1.9 s (perf: recently_deleted,
# find_inode_bit). The pile is removed at the end.
mkdir -p "$DIR/trash"
printf '#!/bin/sh\n[ -e "%s/out" ] && mv "%s/out" "%s/trash/$(date +%%s%%N)"\nsync\nexit 0\n' "$DIR" "$DIR" "$DIR" > "$DIR/prep.sh"; chmod +x "$DIR/prep.sh"
prep="$DIR/prep.sh"

# bench JSON CMD...: hyperfine over the commands, each "$BCMR ..." one also run by BCMR_BEFORE (appended last).
bench() {
  local json=$1; shift
  local cmds=("$@") c
  if [ -n "$BCMR_BEFORE" ]; then for c in "$@"; do [[ $c == "$BCMR "* ]] && cmds+=("$BCMR_BEFORE ${c#"$BCMR "}"); done; fi
  hyperfine -N -r "$RUNS" -w 1 --prepare "$prep" --export-json "$json" "${cmds[@]}"
}
# before NAME CP_MEDIAN BEFORE_MEDIAN: the before binary's ratio, when one was measured.
before() { [ -z "$3" ] || echo "RATIO $1 before: bcmr/cp = $(ratio "$3" "$2")"; }

echo "== 1 GiB random file, no reflink"
bench "$DIR/big.json" \
  "cp --reflink=never $DIR/big.bin $DIR/out" \
  "$BCMR copy -q --reflink disable $DIR/big.bin $DIR/out"
read -r cp_big bcmr_big before_big <<<"$(median "$DIR/big.json")"
echo "RATIO 1GiB: bcmr/cp = $(ratio "$bcmr_big" "$cp_big")  (goal <= 1.15)"; before 1GiB "$cp_big" "${before_big:-}"

echo "== 1 GiB random file, -V (bcmr reads the copy back and compares its BLAKE3 with the source's; cp verifies nothing)"
bench "$DIR/bigv.json" \
  "cp --reflink=never $DIR/big.bin $DIR/out" \
  "$BCMR copy -q -V --reflink disable $DIR/big.bin $DIR/out"
read -r cp_bigv bcmr_bigv before_bigv <<<"$(median "$DIR/bigv.json")"
echo "RATIO 1GiB -V: bcmr/cp = $(ratio "$bcmr_bigv" "$cp_bigv")  (goal <= 1.6, issue 17)"; before "1GiB -V" "$cp_bigv" "${before_bigv:-}"

echo "== 2100 files of 1-8 KB in 420 directories"
bench "$DIR/small.json" \
  "cp -R $DIR/small-tree $DIR/out" \
  "rsync -a $DIR/small-tree/ $DIR/out/" \
  "$BCMR copy -q -r $DIR/small-tree $DIR/out"
read -r cp_small rsync_small bcmr_small before_small <<<"$(median "$DIR/small.json")"
echo "RATIO small: bcmr/cp = $(ratio "$bcmr_small" "$cp_small") (goal <= 1.5); bcmr/rsync = $(ratio "$bcmr_small" "$rsync_small") (goal <= 0.5)"; before small "$cp_small" "${before_small:-}"

echo "== 10 000 x 64 KiB"
bench "$DIR/64k.json" \
  "cp -r $DIR/64k-tree $DIR/out" \
  "$BCMR copy -q -r $DIR/64k-tree $DIR/out"
read -r cp_64k bcmr_64k before_64k <<<"$(median "$DIR/64k.json")"
echo "RATIO 64KiB: bcmr/cp = $(ratio "$bcmr_64k" "$cp_64k") (goal <= 1.0)"; before 64KiB "$cp_64k" "${before_64k:-}"

echo "== start-up: bcmr --version, AOT vs JIT"
JIT=src/Bcmr.Cli/bin/Release/net10.0/bcmr
[ -x "$JIT" ] || dotnet build src/Bcmr.Cli -c Release >/dev/null
hyperfine -N -r 30 -w 5 --export-json "$DIR/version.json" "$BCMR --version" "$JIT --version"
read -r aot_v jit_v <<<"$(median "$DIR/version.json")"
echo "RESULT version: AOT $(python3 -c "print(f'{$aot_v*1000:.1f}')") ms, JIT $(python3 -c "print(f'{$jit_v*1000:.1f}')") ms (goal AOT <= 30 ms)"
rm -rf "$DIR/out" "$DIR/trash"
