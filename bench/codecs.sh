#!/usr/bin/env bash
# Codec benchmark (issue 9): per-4 MiB-block throughput of our LZ4 and zstd-3 codecs (K4os, ZstdSharp) on source-like
# text and on random data, beside the zstd and lz4 command-line tools' own in-memory benchmarks on the same files
# (zstd -b3 -B4194304, lz4 -b1 -B7: 4 MiB blocks), the server's Get path per codec, unlimited and with the
# client reading the wire at 20 MB/s, and the Get and upload paths with compression off the I/O thread off and on.
#
#   bench/codecs.sh               # 64 MiB of each kind of data
#   SIZE_MIB=256 bench/codecs.sh
#
# Prints markdown tables (paste into bench/RESULTS.md). Needs dotnet, zstd and lz4 (apt-get install -y zstd lz4).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
size_mib="${SIZE_MIB:-64}"
work="$(mktemp -d /tmp/bcmr-codec-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT

for tool in dotnet zstd lz4; do
    command -v "$tool" >/dev/null || { echo "codecs.sh: $tool is required (apt-get install -y zstd lz4)" >&2; exit 1; }
done

echo "== building"
dotnet build "$repo/bench/CodecBench" -c Release >/dev/null
bench="$repo/bench/CodecBench/bin/Release/net10.0/CodecBench"

echo "== ${size_mib} MiB of source-like text and of random data in $work"
"$bench" gen "$work" "$size_mib"
echo "zstd -3 of the text file: $(zstd -3 -c "$work/text.txt" | wc -c) bytes of $(stat -c %s "$work/text.txt")"

echo
echo "== ours, per 4 MiB block (best of 5 runs of >= 0.5 s)"
"$bench" blocks "$work"

echo
echo "== command-line tools, in-memory benchmark, 4 MiB blocks (compress MB/s, decompress MB/s)"
echo "| data | tool | ratio | compress MB/s | decompress MB/s |"
echo "|---|---|---|---|---|"
for f in text.txt random.bin; do
    # Both tools redraw a progress line with \r; the last one holds the final figures.
    z=$(zstd -b3 -B4194304 "$work/$f" 2>&1 | tr '\r' '\n' | grep -E 'MB/s.*MB/s' | tail -1)
    l=$(lz4 -b1 -B7 "$work/$f" 2>&1 | tr '\r' '\n' | grep -E 'MB/s.*MB/s' | tail -1)
    parse() { # "... -> N (xR), C MB/s, D MB/s" or "(R)"
        sed -E 's/.*\(x?([0-9.]+)\), *([0-9.]+) MB\/s *, *([0-9.]+) MB\/s.*/\1 \2 \3/' <<<"$1"
    }
    read -r zr zc zd <<<"$(parse "$z")"
    read -r lr lc ld <<<"$(parse "$l")"
    awk -v f="$f" -v r="$zr" -v c="$zc" -v d="$zd" 'BEGIN { printf "| %s | zstd -3 | %.3f | %s | %s |\n", f, 1/r, c, d }'
    awk -v f="$f" -v r="$lr" -v c="$lc" -v d="$ld" 'BEGIN { printf "| %s | lz4 -1 | %.3f | %s | %s |\n", f, 1/r, c, d }'
done

echo
echo "== serve Get of each file (in process, OS pipes, client reads frames without decoding), median of 3"
"$bench" serve-get "$work"
echo
"$bench" serve-get "$work" 20
echo
echo "== compression off the I/O thread (BlockEncoder) off and on: server Get and client upload, in process, median of 5"
"$bench" encoder "$work" 5
echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
