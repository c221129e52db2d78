#!/usr/bin/env bash
# BLAKE3 hashing benchmark (issue 5): `bcmr hash` against b3sum on a 1 GiB cached file,
# single-threaded and with default threads, plus the in-memory throughput of each SIMD width.
#
#   bench/hash.sh            # Native AOT build (IlcInstructionSet=x86-64-v3, see RESULTS.md) + JIT build
#   SIZE_MIB=256 bench/hash.sh
#   ILC_ISA= bench/hash.sh   # AOT with the default (x86-64-v2 baseline) instruction set
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
size_mib="${SIZE_MIB:-1024}"
ilc_isa="${ILC_ISA-x86-64-v3}"
work="$(mktemp -d /tmp/bcmr-hash-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
file="$work/random-${size_mib}M.bin"

for tool in hyperfine b3sum dotnet; do
    command -v "$tool" >/dev/null || { echo "hash.sh: $tool is required" >&2; exit 1; }
done

echo "== building"
aot="$work/aot"
isa_arg=()
[[ -n "$ilc_isa" ]] && isa_arg=("-p:IlcInstructionSet=$ilc_isa")
dotnet publish "$repo/src/Bcmr.Cli" -c Release -r linux-x64 -p:PublishAot=true "${isa_arg[@]}" -o "$aot" >/dev/null
dotnet build "$repo/src/Bcmr.Cli" -c Release >/dev/null
jit="$repo/src/Bcmr.Cli/bin/Release/net10.0/bcmr"
dotnet build "$repo/bench/HashBench" -c Release >/dev/null

echo "== creating ${size_mib} MiB random file in $work"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$file"
cat "$file" > /dev/null   # warm the page cache; every run below reads from memory

# Same digest from all three, or the timings mean nothing.
want="$(b3sum --no-names "$file")"
for bin in "$aot/bcmr" "$jit"; do
    got="$("$bin" hash "$file" | cut -d' ' -f1)"
    [[ "$got" == "$want" ]] || { echo "hash.sh: $bin disagrees with b3sum: $got vs $want" >&2; exit 1; }
done

# hyperfine's JSON gives the mean in seconds; throughput ratio = b3sum time / bcmr time.
run() { # name, b3sum command, bcmr command(s)...
    local name="$1"; shift
    echo "== $name"
    local args=()
    while (($#)); do args+=(--command-name "$2" "$3"); shift 3; done
    hyperfine -N --warmup 2 --runs "${RUNS:-10}" --export-json "$work/$name.json" "${args[@]}" | grep -E 'Benchmark|Time' || true
    python3 - "$work/$name.json" "$size_mib" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
mib = int(sys.argv[2])
base = results[0]["mean"]
for r in results:
    print(f"  {r['command']:<30} {r['mean']*1000:8.1f} ms  {mib/1024/r['mean']:6.2f} GiB/s  throughput ratio vs b3sum {base/r['mean']:.2f}")
PY
}

run single-thread \
    -n "b3sum --num-threads 1" "b3sum --num-threads 1 $file" \
    -n "bcmr hash --threads 1 (AOT)" "$aot/bcmr hash --threads 1 $file" \
    -n "bcmr hash --threads 1 (JIT)" "$jit hash --threads 1 $file"
run default-threads \
    -n "b3sum" "b3sum $file" \
    -n "bcmr hash (AOT)" "$aot/bcmr hash $file" \
    -n "bcmr hash (JIT)" "$jit hash $file"

echo "== in-memory throughput per SIMD width (64 MiB buffer, JIT)"
dotnet "$repo/bench/HashBench/bin/Release/net10.0/HashBench.dll" 64 2
