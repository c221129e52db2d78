#!/usr/bin/env bash
# --direct direct (issue 20): file data over a TCP connection of its own in AES-256-GCM records, set up through the ssh
# session, against --direct ssh (everything through ssh's cipher) and scp, over a loopback sshd (the server binds
# SSH_CONNECTION's address: 127.0.0.1 here). Competitors in the same hyperfine runs, ratios printed.
#   big:  a $BIG_MIB MiB (default 1 GiB) random file, upload and download: scp, bcmr --direct ssh, bcmr --direct direct,
#         and for downloads the same two bcmr modes with --fast as well (the server skips its BLAKE3; for uploads
#         --fast changes nothing, so uploads run with the default integrity only). Medians, MiB/s, and each one's
#         throughput against scp's. Goal: --direct direct >= 2.5x scp's throughput with BLAKE3 on (no --fast).
#   many: $NFILES (default 10 000) x 64 KiB files in directories of 100, upload and download: scp -r,
#         bcmr --direct ssh, bcmr --direct direct. Goal: direct <= 0.3x scp's time.
#   cpu:  CPU seconds (user+sys) per GiB on each end, for --direct ssh and --direct direct, $BIG_MIB MiB download and
#         upload, each run once (after the page cache is warm), BLAKE3 on:
#         client: `/usr/bin/time -f '%U %S' bcmr copy ...`; bcmr waits for its ssh child, so ssh's cipher work is in it.
#         server: `bcmr serve` and the sshd session that carries it, measured by the remote wrapper: it runs serve under
#           `/usr/bin/time -a -o $DEST/home/serve.cpu`, then, still inside the session, walks up its ancestors to the
#           private sshd's listener and adds the utime+stime+cutime+cstime of each sshd among them (/proc/PID/stat:
#           the user's `sshd: bcmrbench@notty`, which runs ssh's cipher, and the `[priv]` monitor, which has reaped
#           the pre-auth child) to sshd.cpu in clock ticks. (The listener's cutime, read after the session, would be
#           simpler, but was seen to stay near zero here: the session's CPU does not reach it.) What the
#           session does after serve has exited (closing the channel) is left out. The sshd share is ssh's cipher
#           (whatever ssh negotiates here, printed) for --direct ssh, next to nothing for --direct direct, whose
#           AES-256-GCM runs in bcmr serve.
# Before anything is timed, every mode is run once with --json outside the timing: its copy must have the source's
# bytes (b3sum for the big file, diff -r for the tree) and every bcmr run must report the transport it was asked for
# in its result line ("direct" for --direct direct); anything else stops the script, so a fallback to ssh can never
# be measured as "direct". The timed bcmr commands carry --no-fallback as well.
# Uploads empty the server's content store first (otherwise the upload after the warm-up measures dedup, not the wire).
# Usage: bench/direct.sh [runs]   (default 3)
#   WORKLOADS="big many cpu" (default: all). BIG_MIB=1024, NFILES=10000 (smaller only to try the script out).
#   BCMR=path  the binary on both ends (default: the shipped AOT bcmr; built when missing or without --direct).
#   PORT=2295  the private sshd's port.
# Needs root (a user of its own for the remote end), sshd, hyperfine, b3sum, python3, /usr/bin/time. Sources in
# $BENCH_DIR (default /tmp/bcmr-dbench, kept for the next run), copies in $BENCH_DEST (default /dev/shm/bcmr-dbench:
# tmpfs, see remote.sh for why; removed at the end, as is the sshd, also when the script fails).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
DIR=${BENCH_DIR:-/tmp/bcmr-dbench}
DEST=${BENCH_DEST:-/dev/shm/bcmr-dbench}
PORT=${PORT:-2295}
BIG_MIB=${BIG_MIB:-1024}
NFILES=${NFILES:-10000}
WORKLOADS=${WORKLOADS:-big many cpu} # any of: big many cpu
SHIPPED=$PWD/out/bcmr-linux-x64/bcmr
BCMR=${BCMR:-$SHIPPED}
has_direct() { [ -x "$BCMR" ] && [[ $("$BCMR" copy --help 2>&1) == *--direct* ]]; }
if ! has_direct; then
  [ "$BCMR" = "$SHIPPED" ] || { echo "direct.sh: $BCMR is missing or has no --direct" >&2; exit 1; }
  dotnet publish src/Bcmr.Cli -c Release -p:PublishProfile=aot-linux-x64 >/dev/null
  has_direct || { echo "direct.sh: the build at $BCMR has no --direct" >&2; exit 1; }
fi
. bench/common.sh # (the script runs from the repository root)
bench_account # its own account, no rc files (common.sh says why)
home=$DEST/home
# The remote command (the cpu workload's timed one is written below, once the sshd's pid is known).
remote_wrapper "$BCMR" "$DIR/remote-bcmr"
export XDG_DATA_HOME="$DIR/xdg" BCMR_REMOTE="$DIR/remote-bcmr"
unset BCMR_DIRECT # every bcmr command below names its data path

cleanup() {
  stop_sshd sshd
  rm -rf "$home/big.bin" "$home/big.up" "$home/many-src" "$home/up" "$home/.local" "$home/serve.cpu" "$home/sshd.cpu" "$DEST/big.down" "$DEST/down"
  rmdir "$home" "$DEST" 2>/dev/null || true
}
trap cleanup EXIT

echo "$(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) cores"
echo "AES-NI: $(grep -qw aes /proc/cpuinfo && echo yes || echo no), VAES: $(grep -qw vaes /proc/cpuinfo && echo yes || echo no)"
echo "bcmr: $BCMR ($("$BCMR" --version | head -1)); sizes: big $BIG_MIB MiB, many $NFILES x 64 KiB; $RUNS runs"

cfg=$(start_sshd sshd "$PORT" "")
sleep 0.3
SSHD_PID=$(cat "$DIR/sshd/sshd.pid")
# The cpu workload's remote command: bcmr serve under /usr/bin/time (seconds to serve.cpu), then the CPU so far of the
# sshd processes between this session and the listener (clock ticks to sshd.cpu; see the header).
cat > "$DIR/remote-bcmr-timed" <<EOF
#!/bin/sh
export HOME=$home
/usr/bin/time -a -o $home/serve.cpu -f '%U %S' $BCMR "\$@"
rc=\$?
p=\$PPID ticks=0
while [ "\$p" -gt 1 ] && [ "\$p" != $SSHD_PID ]; do
  set -- \$(sed 's/.*) //' /proc/\$p/stat)
  [ "\$(cat /proc/\$p/comm)" = sshd ] && ticks=\$((ticks + \${12} + \${13} + \${14} + \${15}))
  p=\$2
done
echo \$ticks >> $home/sshd.cpu
exit \$rc
EOF
chmod 755 "$DIR/remote-bcmr-timed"
echo "ssh client offers: $(ssh -G -F "$cfg" bench | grep -i '^ciphers ')"
cipher=$(ssh -F "$cfg" -o LogLevel=DEBUG1 bench true 2>&1 | sed -n 's/.*kex: server->client cipher: \([^ ]*\).*/\1/p' | head -1)
echo "ssh negotiates: ${cipher:-unknown} (loopback sshd on 127.0.0.1:$PORT)"

SCP="scp -q -F $cfg"
BC="BCMR_SSH='ssh -F $cfg' $BCMR copy --no-fallback"
SSHM="$BC -q --direct ssh"
DIRM="$BC -q --direct direct"
CLEAR_CAS="rm -rf $home/.local/share/bcmr/cas $home/.local/share/bcmr/cas-roots"

big=$DIR/big$BIG_MIB.bin
src=$DIR/many$NFILES
need_big() { [ -f "$big" ] || head -c $((BIG_MIB * 1048576)) /dev/urandom > "$big"; [ -f "$home/big.bin" ] || cp "$big" "$home/big.bin"; }
need_many() { # NFILES x 64 KiB in directories of 100
  if [ ! -d "$src" ]; then
    mkdir -p "$src.tmp"
    for ((i = 0; i < NFILES; i++)); do
      d=$src.tmp/d$((i / 100)); mkdir -p "$d"; head -c 65536 /dev/urandom > "$d/f$i"
    done
    mv "$src.tmp" "$src"
  fi
  [ -d "$home/many-src" ] || cp -r "$src" "$home/many-src"
}

# transport WANT LABEL CMD: run the bcmr command CMD once with --json; its last result line must say success and
# transport WANT, or the script stops.
transport() {
  local want=$1 label=$2 cmd=$3
  eval "$cmd --json" > "$DIR/check.json" || { echo "FAIL $label: exit status $? ($cmd --json)" >&2; tail -3 "$DIR/check.json" >&2; exit 1; }
  python3 - "$want" "$label" "$DIR/check.json" <<'EOF' || exit 1
import json, sys
want, label, path = sys.argv[1:]
res = [j for j in (json.loads(l) for l in open(path) if l.strip().startswith("{")) if j.get("type") == "result"]
if not res:
    sys.exit(f"FAIL {label}: no result line in --json output")
r = res[-1]
if r.get("status") != "success" or r.get("transport") != want:
    sys.exit(f"FAIL {label}: result status {r.get('status')}, transport {r.get('transport')!r} (wanted {want!r}): {json.dumps(r)}")
EOF
}
# same_file LABEL FILE: FILE has the big source's bytes.
same_file() {
  local h; h=$(b3sum --no-names "$2")
  [ "$h" = "$big_b3" ] || { echo "FAIL $1: b3sum $h, source $big_b3" >&2; exit 1; }
  echo "check $1: bytes identical${3:+, transport $3}"
}
# same_tree LABEL DIR: DIR has the many-files source's names and bytes.
same_tree() {
  diff -rq "$src" "$2" >/dev/null || { echo "FAIL $1: $2 differs from $src" >&2; diff -rq "$src" "$2" | head -5 >&2; exit 1; }
  echo "check $1: trees identical${3:+, transport $3}"
}
s3() { printf '%.3f' "$1"; }
mibs() { python3 -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2]):.0f}")' "$1" "$2"; }

if [[ " $WORKLOADS " == *" big "* ]]; then
  need_big
  big_b3=$(b3sum --no-names "$big")
  echo "== big: checks (once, not timed)"
  eval "$CLEAR_CAS"; rm -f "$home/big.up"; $SCP "$big" "bench:$home/big.up"; same_file "upload scp" "$home/big.up"
  for m in ssh direct; do
    eval "$CLEAR_CAS"; rm -f "$home/big.up"
    transport $m "upload --direct $m" "$BC --direct $m $big bench:$home/big.up"; same_file "upload --direct $m" "$home/big.up" $m
  done
  rm -f "$DEST/big.down"; $SCP "bench:$home/big.bin" "$DEST/big.down"; same_file "download scp" "$DEST/big.down"
  for m in ssh direct; do
    for f in "" " --fast"; do
      rm -f "$DEST/big.down"
      transport $m "download --direct $m$f" "$BC --direct $m$f bench:$home/big.bin $DEST/big.down"
      same_file "download --direct $m$f" "$DEST/big.down" $m
    done
  done
  rm -f "$home/big.up" "$DEST/big.down"

  echo "== big: $BIG_MIB MiB upload"
  hyperfine -r "$RUNS" -w 1 --prepare "rm -f $home/big.up; $CLEAR_CAS" --export-json "$DIR/big-up.json" \
    -n scp "$SCP $big bench:$home/big.up" \
    -n "bcmr --direct ssh" "$SSHM $big bench:$home/big.up" \
    -n "bcmr --direct direct" "$DIRM $big bench:$home/big.up"
  echo "== big: $BIG_MIB MiB download"
  hyperfine -r "$RUNS" -w 1 --prepare "rm -f $DEST/big.down" --export-json "$DIR/big-down.json" \
    -n scp "$SCP bench:$home/big.bin $DEST/big.down" \
    -n "bcmr --direct ssh" "$SSHM bench:$home/big.bin $DEST/big.down" \
    -n "bcmr --direct direct" "$DIRM bench:$home/big.bin $DEST/big.down" \
    -n "bcmr --direct ssh --fast" "$SSHM --fast bench:$home/big.bin $DEST/big.down" \
    -n "bcmr --direct direct --fast" "$DIRM --fast bench:$home/big.bin $DEST/big.down"
  rm -f "$home/big.up" "$DEST/big.down"
  read -r -a u <<<"$(median "$DIR/big-up.json")"
  read -r -a d <<<"$(median "$DIR/big-down.json")"
  echo "RESULT big upload $BIG_MIB MiB: scp $(s3 "${u[0]}")s ($(mibs "$BIG_MIB" "${u[0]}") MiB/s)" \
    "| --direct ssh $(s3 "${u[1]}")s ($(mibs "$BIG_MIB" "${u[1]}") MiB/s, $(ratio "${u[0]}" "${u[1]}")x scp)" \
    "| --direct direct $(s3 "${u[2]}")s ($(mibs "$BIG_MIB" "${u[2]}") MiB/s, $(ratio "${u[0]}" "${u[2]}")x scp; goal >= 2.5)" \
    "| direct/ssh speed-up $(ratio "${u[1]}" "${u[2]}")"
  echo "RESULT big download $BIG_MIB MiB: scp $(s3 "${d[0]}")s ($(mibs "$BIG_MIB" "${d[0]}") MiB/s)" \
    "| --direct ssh $(s3 "${d[1]}")s ($(mibs "$BIG_MIB" "${d[1]}") MiB/s, $(ratio "${d[0]}" "${d[1]}")x scp)" \
    "| --direct direct $(s3 "${d[2]}")s ($(mibs "$BIG_MIB" "${d[2]}") MiB/s, $(ratio "${d[0]}" "${d[2]}")x scp; goal >= 2.5)" \
    "| --fast: ssh $(s3 "${d[3]}")s ($(mibs "$BIG_MIB" "${d[3]}") MiB/s, $(ratio "${d[0]}" "${d[3]}")x scp)," \
    "direct $(s3 "${d[4]}")s ($(mibs "$BIG_MIB" "${d[4]}") MiB/s, $(ratio "${d[0]}" "${d[4]}")x scp)"
fi

if [[ " $WORKLOADS " == *" many "* ]]; then
  need_many
  echo "== many: checks (once, not timed)"
  eval "$CLEAR_CAS"; rm -rf "$home/up"; $SCP -r "$src" "bench:$home/up"; same_tree "upload scp -r" "$home/up"
  for m in ssh direct; do
    eval "$CLEAR_CAS"; rm -rf "$home/up"
    transport $m "upload -r --direct $m" "$BC -r --direct $m $src bench:$home/up"; same_tree "upload --direct $m" "$home/up" $m
  done
  rm -rf "$DEST/down"; $SCP -r "bench:$home/many-src" "$DEST/down"; same_tree "download scp -r" "$DEST/down"
  for m in ssh direct; do
    rm -rf "$DEST/down"
    transport $m "download -r --direct $m" "$BC -r --direct $m bench:$home/many-src $DEST/down"; same_tree "download --direct $m" "$DEST/down" $m
  done

  echo "== many: $NFILES x 64 KiB upload"
  hyperfine -r "$RUNS" -w 1 --prepare "rm -rf $home/up; $CLEAR_CAS" --export-json "$DIR/many-up.json" \
    -n "scp -r" "$SCP -r $src bench:$home/up" \
    -n "bcmr --direct ssh" "$SSHM -r $src bench:$home/up" \
    -n "bcmr --direct direct" "$DIRM -r $src bench:$home/up"
  echo "== many: $NFILES x 64 KiB download"
  hyperfine -r "$RUNS" -w 1 --prepare "rm -rf $DEST/down" --export-json "$DIR/many-down.json" \
    -n "scp -r" "$SCP -r bench:$home/many-src $DEST/down" \
    -n "bcmr --direct ssh" "$SSHM -r bench:$home/many-src $DEST/down" \
    -n "bcmr --direct direct" "$DIRM -r bench:$home/many-src $DEST/down"
  rm -rf "$home/up" "$DEST/down"
  for way in up down; do
    read -r -a t <<<"$(median "$DIR/many-$way.json")"
    echo "RESULT many $NFILES x 64 KiB ${way}load: scp -r $(s3 "${t[0]}")s | --direct ssh $(s3 "${t[1]}")s ($(ratio "${t[1]}" "${t[0]}")x scp's time)" \
      "| --direct direct $(s3 "${t[2]}")s ($(ratio "${t[2]}" "${t[0]}")x scp's time; goal <= 0.3) | direct/ssh time $(ratio "${t[2]}" "${t[1]}")"
  done
fi

# cpu MODE WAY: one copy under /usr/bin/time (client) with the timed remote command (serve and sshd), per GiB.
cpu() {
  local mode=$1 way=$2 cu cs su ss
  if [ "$way" = up ]; then rm -f "$home/big.up"; eval "$CLEAR_CAS"; set -- "$big" "bench:$home/big.up"
  else rm -f "$DEST/big.down"; set -- "bench:$home/big.bin" "$DEST/big.down"; fi
  rm -f "$home/serve.cpu" "$home/sshd.cpu"
  /usr/bin/time -f '%U %S' -o "$DIR/client.cpu" env BCMR_SSH="ssh -F $cfg" BCMR_REMOTE="$DIR/remote-bcmr-timed" \
    "$BCMR" copy -q --no-fallback --direct "$mode" "$@"
  [ -s "$home/serve.cpu" ] && [ -s "$home/sshd.cpu" ] || { echo "FAIL cpu $mode ${way}load: no serve.cpu or sshd.cpu from the remote wrapper" >&2; exit 1; }
  read -r cu cs < "$DIR/client.cpu"
  read -r su ss < <(awk '{u += $1; s += $2} END {print u, s}' "$home/serve.cpu")
  python3 - "$mode" "$way" "$BIG_MIB" "$cu" "$cs" "$su" "$ss" "$(awk '{t += $1} END {print t}' "$home/sshd.cpu")" "$(getconf CLK_TCK)" "${cipher:-unknown cipher}" <<'EOF'
import sys
mode, way, mib, cu, cs, su, ss, ticks, hz, cipher = sys.argv[1:]
g = float(mib) / 1024
cu, cs, su, ss = (float(x) / g for x in (cu, cs, su, ss))
sshd = int(ticks) / int(hz) / g
what = f"ssh ({cipher})" if mode == "ssh" else "direct (AES-256-GCM)"
print(f"RESULT cpu {way}load --direct {what}: client {cu + cs:.2f} s/GiB (user {cu:.2f} sys {cs:.2f}, its ssh included)"
      f" | server {su + ss + sshd:.2f} s/GiB (bcmr serve {su + ss:.2f}: user {su:.2f} sys {ss:.2f}; sshd {sshd:.2f})")
EOF
}

if [[ " $WORKLOADS " == *" cpu "* ]]; then
  need_big
  cat "$big" "$home/big.bin" > /dev/null # both sources in the page cache
  echo "== cpu: $BIG_MIB MiB each way, one run each, user+sys seconds per GiB (BLAKE3 on)"
  for way in down up; do for mode in ssh direct; do cpu "$mode" "$way"; done; done
  rm -f "$home/big.up" "$DEST/big.down" "$home/serve.cpu" "$home/sshd.cpu"
fi
