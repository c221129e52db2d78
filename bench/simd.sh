#!/usr/bin/env bash
# The shipped bcmr (a C launcher that starts bcmr.x86-64-v2/-v3/-v4 beside it, chosen by cpuid) against b3sum, in the
# same hyperfine runs: `hash` with one thread and with default threads on a cached file, every image forced with
# BCMR_SIMD=portable, and start-up (`bcmr --version`) beside a Native AOT hello-world. Issue 17.
#
#   bash bench/simd.sh            # SIZE_MIB=1024 RUNS=10
#   SKIP_PUBLISH=1 bash bench/simd.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
size_mib="${SIZE_MIB:-1024}"
runs="${RUNS:-10}"
work="$(mktemp -d /tmp/bcmr-simd-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
out="$repo/out/bcmr-linux-x64"
[[ -n "${SKIP_PUBLISH:-}" ]] || dotnet publish "$repo/src/Bcmr.Cli" -c Release -p:PublishProfile=aot-linux-x64 >/dev/null
jit="$repo/src/Bcmr.Cli/bin/Release/net10.0/bcmr"
[[ -x "$jit" ]] || dotnet build "$repo/src/Bcmr.Cli" -c Release >/dev/null

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); flags: $(grep -m1 -o 'avx512f\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
"$out/bcmr" --version
file="$work/random-${size_mib}M.bin"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$file"
cat "$file" > /dev/null
want="$(b3sum --no-names "$file")"
for img in bcmr.x86-64-v2 bcmr.x86-64-v3 bcmr.x86-64-v4; do
    [[ "$img" == bcmr.x86-64-v4 ]] && ! grep -q avx512f /proc/cpuinfo && continue
    got="$(BCMR_SIMD=portable "$out/$img" hash "$file" | cut -d' ' -f1)"
    [[ "$got" == "$want" ]] || { echo "simd.sh: $img disagrees with b3sum" >&2; exit 1; }
done

ratios() { python3 - "$1" "$size_mib" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]; mib = int(sys.argv[2]); base = res[0]["mean"]
for r in res:
    extra = f"  {mib/1024/r['mean']:6.2f} GiB/s  throughput vs first {base/r['mean']:.2f}" if mib else f"  time vs first {r['mean']/base:.2f}"
    print(f"  {r['command']:<44} {r['mean']*1000:8.1f} ms ±{r['stddev']*1000:5.1f}{extra}")
PY
}
for threads in 1 default; do
    b3="b3sum --no-names $file"; t=""
    [[ "$threads" == 1 ]] && { b3="b3sum --num-threads 1 --no-names $file"; t="--threads 1"; }
    cmds=(-n "b3sum ($threads)" "$b3"
          -n "bcmr shipped (chooses its image)" "$out/bcmr hash $t $file"
          -n "portable image only" "env BCMR_SIMD=portable $out/bcmr.x86-64-v2 hash $t $file"
          -n "x86-64-v3 image" "env BCMR_SIMD=portable $out/bcmr.x86-64-v3 hash $t $file")
    grep -q avx512f /proc/cpuinfo && cmds+=(-n "x86-64-v4 image" "env BCMR_SIMD=portable $out/bcmr.x86-64-v4 hash $t $file")
    cmds+=(-n "JIT" "$jit hash $t $file")
    echo "== hash, threads: $threads (${size_mib} MiB, cached)"
    hyperfine -N --warmup 2 --runs "$runs" --export-json "$work/h$threads.json" "${cmds[@]}" >/dev/null
    ratios "$work/h$threads.json"
done
# The floor to compare with: a Native AOT hello-world built with the SDK's defaults, and /bin/true (one exec).
mkdir -p "$work/hello"
cat > "$work/hello/hello.csproj" <<'XML'
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><PublishAot>true</PublishAot>
    <InvariantGlobalization>true</InvariantGlobalization></PropertyGroup>
</Project>
XML
echo 'System.Console.WriteLine("hello");' > "$work/hello/Program.cs"
dotnet publish "$work/hello" -c Release -r linux-x64 -o "$work/hello/out" >/dev/null
echo "== start-up: bcmr --version"
hyperfine -N --warmup 20 --runs 300 --export-json "$work/v.json" \
    -n "Native AOT hello-world (SDK defaults)" "$work/hello/out/hello" \
    -n "/bin/true" "/bin/true" \
    -n "portable image, no hand-over" "env BCMR_SIMD=portable $out/bcmr.x86-64-v2 --version" \
    -n "shipped bcmr (launcher, one execv)" "$out/bcmr --version" \
    -n "best image started directly" "$out/bcmr.x86-64-v$(grep -q avx512f /proc/cpuinfo && echo 4 || echo 3) --version" >/dev/null
size_mib=0 ratios "$work/v.json"
