#!/usr/bin/env bash
# Wire compression and dedup benchmarks (issue 9) over a private loopback sshd, ratios printed.
#   1. --bwlimit 10M: 64 MiB of source text uploaded with zstd vs none (goal: zstd >= 4x faster).
#   2. --bwlimit 10M: a 64 MiB random file uploaded into an empty store, then again (goal: second >= 10x faster).
#   3. No limit: 1 GiB random upload, --compress auto vs none (goal: auto within 5 %).
# Usage: bench/wire.sh [runs] (default 3). BCMR=path picks the binary (default: the portable AOT build).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
DIR=${BENCH_DIR:-/tmp/bcmr-wbench}
PORT=${PORT:-2297}
BCMR=${BCMR:-$PWD/out/bcmr-linux-x64/bcmr}
[ -x "$BCMR" ] || dotnet publish src/Bcmr.Cli -c Release -p:PublishProfile=aot-linux-x64 >/dev/null
SHARED=$(cd .. && pwd)/shared
mkdir -p "$DIR/home"
SSHD=$DIR/sshd
PORT=$PORT DIR=$SSHD bash "$SHARED/tools/sshd-loopback.sh" >/dev/null
printf '#!/bin/sh\nexport HOME=%s/home BCMR_CAS_DIR=%s/cas\nexec %s "$@"\n' "$DIR" "$DIR" "$BCMR" > "$DIR/remote-bcmr"
chmod +x "$DIR/remote-bcmr"
export BCMR_SSH="ssh -F $SSHD/ssh_config" BCMR_REMOTE="$DIR/remote-bcmr" XDG_DATA_HOME="$DIR/xdg"
H=bench
median() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(str(r["median"]) for r in d["results"]))' "$1"; }
ratio()  { python3 -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2]):.2f}")' "$1" "$2"; }

if [ ! -f "$DIR/text" ]; then   # real source text, no repeats: the system's Python sources and C headers
  find /usr/lib/python3* /usr/include \( -name '*.py' -o -name '*.h' \) -type f 2>/dev/null | sort | xargs cat 2>/dev/null \
    | head -c 67108864 > "$DIR/text" || true
fi
[ -f "$DIR/random64" ] || head -c 67108864 /dev/urandom > "$DIR/random64"
[ -f "$DIR/random1g" ] || head -c 1073741824 /dev/urandom > "$DIR/random1g"
echo "binary: $BCMR   text compresses to $(zstd -3 -c "$DIR/text" | wc -c) bytes with zstd -3 (of 67108864)"
[ "${ONLY:-}" = text ] && SKIP_REST=1

echo "== 64 MiB text, --bwlimit 10M"
# The store is emptied before each run: this measures compression, not dedup.
hyperfine -N -r "$RUNS" --prepare "rm -rf $DIR/home/t.out $DIR/cas" --export-json "$DIR/text.json" \
  "$BCMR copy -q -f --bwlimit 10M --compress none $DIR/text $H:$DIR/home/t.out" \
  "$BCMR copy -q -f --bwlimit 10M --compress zstd $DIR/text $H:$DIR/home/t.out"
read -r none zstd <<<"$(median "$DIR/text.json")"
echo "text at 10M: none/zstd = $(ratio "$none" "$zstd") (goal >= 4)"

[ -n "${SKIP_REST:-}" ] && exit 0
echo "== 64 MiB random, --bwlimit 10M: empty store, then a repeat"
hyperfine -N -r "$RUNS" --prepare "rm -rf $DIR/cas $DIR/home/r.out" --export-json "$DIR/first.json" \
  "$BCMR copy -q -f --bwlimit 10M $DIR/random64 $H:$DIR/home/r.out"
hyperfine -N -r "$RUNS" -w 1 --prepare "rm -f $DIR/home/r.out" --export-json "$DIR/repeat.json" \
  "$BCMR copy -q -f --bwlimit 10M $DIR/random64 $H:$DIR/home/r.out"
read -r first <<<"$(median "$DIR/first.json")"
read -r repeat <<<"$(median "$DIR/repeat.json")"
echo "repeat at 10M: first/second = $(ratio "$first" "$repeat") (goal >= 10)"

echo "== 1 GiB random, no limit: auto vs none"
rm -rf "$DIR/cas"
hyperfine -N -r "$RUNS" -w 1 --prepare "rm -rf $DIR/home/g.out $DIR/cas" --export-json "$DIR/big.json" \
  "$BCMR copy -q -f --compress none $DIR/random1g $H:$DIR/home/g.out" \
  "$BCMR copy -q -f --compress auto $DIR/random1g $H:$DIR/home/g.out"
read -r none auto <<<"$(median "$DIR/big.json")"
echo "1 GiB random: auto/none = $(ratio "$auto" "$none") (goal <= 1.05)"
