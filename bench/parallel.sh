#!/usr/bin/env bash
# -P/--parallel N (issue 19): N ssh connections against one, competitors in the same hyperfine runs, ratios printed.
#   1. Plain loopback (one machine, ssh on both ends shares its cores; goal: no loss, -P 4 within 10 % of -P 1):
#      10 000 x 64 KiB upload and download with -P 1, 2, 4 beside scp -r and rsync -a -e ssh;
#      1 GiB upload and download with -P 1, 2, 4 beside scp (one file: -P cannot help it until striping lands);
#      connect time: one tiny file with -P 1 and -P 8, beside 1 and 8 bare `ssh host true` at once.
#   2. Each TCP flow capped (a per-flow WAN shaper, or a per-core cipher): the same client and server inside a network
#      namespace made here, its own lo where each TCP flow gets its own htb class of $RATE (default 200mbit); the
#      namespace is deleted at the end and the host's lo is never touched. 4 000 x 64 KiB and 256 MiB (smaller than
#      part 1 so that a one-stream run stays near 10-20 s). Goals: -P 4 >= 3.2x the throughput of -P 1, >= 3x scp.
# Usage: bench/parallel.sh [runs] [part]   (runs default 3 on loopback, 2 in the namespace; part: 1, 2 or both)
#   BCMR=path  the binary on both ends (default: the shipped AOT bcmr; built if missing). RATE=200mbit.
#   WORKLOADS="connect many big" (default: all) to run some of them.
#   AUTOGROUP=0|1  sets the kernel's sched_autogroup_enabled for the run (restored at the end; default: as it is).
#      It decides part 1 on two cores: with autogroups (Debian's default) every sshd session is a group of its own
#      with an equal share of the CPU, so with -P 4 the four server sessions get 4/5 of the cores and the client with
#      its four ssh gets 1/5, where -P 1 splits them 1:1. Two machines never share a scheduler, so on loopback that is
#      a cost of the bench's set-up, not of N connections; the header line says which setting ran.
# Needs root (ip netns, tc), sshd, hyperfine, rsync, python3. Sources in $BENCH_DIR (default /tmp/bcmr-pbench),
# copies in $BENCH_DEST (default /dev/shm/bcmr-pbench: tmpfs, see remote.sh for why).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
PART=${2:-both}
DIR=${BENCH_DIR:-/tmp/bcmr-pbench}
DEST=${BENCH_DEST:-/dev/shm/bcmr-pbench}
RATE=${RATE:-200mbit}
WORKLOADS=${WORKLOADS:-connect many big} # any of: connect many big
NS=bcmr-pbench-$$
AG_FILE=/proc/sys/kernel/sched_autogroup_enabled
AG_WAS=$(cat "$AG_FILE" 2>/dev/null || echo none)
restore_autogroup() { if [ -n "${AUTOGROUP:-}" ] && [ "$AG_WAS" != none ]; then echo "$AG_WAS" > "$AG_FILE"; fi; }
if [ -n "${AUTOGROUP:-}" ]; then
  trap restore_autogroup EXIT
  echo "$AUTOGROUP" > "$AG_FILE"
fi
BCMR=${BCMR:-$PWD/out/bcmr-linux-x64/bcmr}
[ -x "$BCMR" ] || dotnet publish src/Bcmr.Cli -c Release -p:PublishProfile=aot-linux-x64 >/dev/null
. bench/common.sh # (the script runs from the repository root)
bench_account # its own account, no rc files (common.sh says why)
remote_wrapper "$BCMR" "$DIR/remote-bcmr"
export XDG_DATA_HOME="$DIR/xdg" BCMR_REMOTE="$DIR/remote-bcmr"

files() { # files DIR COUNT: COUNT x 64 KiB in directories of 100
  [ -d "$1" ] && return
  mkdir -p "$1"
  for ((i = 0; i < $2; i++)); do
    d=$1/d$((i / 100)); mkdir -p "$d"; head -c 65536 /dev/urandom > "$d/f$i"
  done
}

# suite LABEL RUNS NFILES BIGMIB PREFIX SSHCFG: every workload once, with PREFIX (empty, or `ip netns exec NS`).
suite() {
  local label=$1 runs=$2 n=$3 mib=$4 pre=$5 cfg=$6
  local src=$DIR/many$n big=$DIR/big$mib.bin home=$DEST/home
  local ssh="ssh -F $cfg" scp="$pre scp -q -F $cfg" rsync="$pre rsync -a -e 'ssh -F $cfg'"
  local bcmr="BCMR_SSH='ssh -F $cfg' $pre $BCMR copy -q"
  files "$src" "$n"
  [ -f "$big" ] || head -c $((mib * 1048576)) /dev/urandom > "$big"
  rm -rf "$home/many-src"; cp -r "$src" "$home/many-src"; cp "$big" "$home/big.bin"

  if [[ " $WORKLOADS " == *" many "* ]]; then
  echo "== $label: $n x 64 KiB upload"
  hyperfine -r "$runs" -w 1 --prepare "rm -rf $home/up" --export-json "$DIR/$label-up.json" \
    "$scp -r $src bench:$home/up" "$rsync $src/ bench:$home/up/" \
    "$bcmr -r -P 1 $src bench:$home/up" "$bcmr -r -P 2 $src bench:$home/up" "$bcmr -r -P 4 $src bench:$home/up"
  report "$label upload $n files" "$DIR/$label-up.json" yes

  echo "== $label: $n x 64 KiB download"
  hyperfine -r "$runs" -w 1 --prepare "rm -rf $DEST/down" --export-json "$DIR/$label-down.json" \
    "$scp -r bench:$home/many-src $DEST/down" "$rsync bench:$home/many-src/ $DEST/down/" \
    "$bcmr -r -P 1 bench:$home/many-src $DEST/down" "$bcmr -r -P 2 bench:$home/many-src $DEST/down" "$bcmr -r -P 4 bench:$home/many-src $DEST/down"
  report "$label download $n files" "$DIR/$label-down.json" yes
  fi

  if [[ " $WORKLOADS " == *" big "* ]]; then
  echo "== $label: $mib MiB upload and download"
  # The server's content store is emptied before each upload: it would otherwise hold every block after the
  # warm-up, and the upload would measure dedup (nothing crosses), not the wire.
  hyperfine -r "$runs" -w 1 --prepare "rm -rf $home/big.up $home/.local/share/bcmr/cas" --export-json "$DIR/$label-bigup.json" \
    "$scp $big bench:$home/big.up" "$bcmr -P 1 $big bench:$home/big.up" "$bcmr -P 2 $big bench:$home/big.up" "$bcmr -P 4 $big bench:$home/big.up"
  report "$label upload $mib MiB" "$DIR/$label-bigup.json" no
  hyperfine -r "$runs" -w 1 --prepare "rm -f $DEST/big.down" --export-json "$DIR/$label-bigdown.json" \
    "$scp bench:$home/big.bin $DEST/big.down" "$bcmr -P 1 bench:$home/big.bin $DEST/big.down" "$bcmr -P 2 bench:$home/big.bin $DEST/big.down" "$bcmr -P 4 bench:$home/big.bin $DEST/big.down"
  report "$label download $mib MiB" "$DIR/$label-bigdown.json" no
  fi
  rm -rf "$home/up" "$DEST/down" "$home/big.up" "$DEST/big.down"
}

# report WHAT JSON HAS_RSYNC: medians of scp [rsync] P1 P2 P4, and the ratios the issue asks for.
report() {
  local t; read -r -a t <<<"$(median "$2")"
  local scp=${t[0]} rs= off=1
  [ "$3" = yes ] && { rs=${t[1]}; off=2; }
  local p1=${t[$off]} p2=${t[$((off + 1))]} p4=${t[$((off + 2))]}
  echo "RESULT $1: scp ${scp}s${rs:+ rsync ${rs}s} | -P1 ${p1}s -P2 ${p2}s -P4 ${p4}s | P4/P1 time $(ratio "$p4" "$p1")," \
    "P1/P4 speed-up $(ratio "$p1" "$p4"), scp/P4 $(ratio "$scp" "$p4")${rs:+, P4/rsync $(ratio "$p4" "$rs")}"
}

connect() { # connect PREFIX SSHCFG: one tiny file with -P 1 and -P 8, and bare ssh logins, 1 and 8 at once
  local pre=$1 cfg=$2
  echo tiny > "$DIR/tiny"
  mkdir -p "$DIR/run" && chmod 700 "$DIR/run" # --ssh-persist's socket directory (short enough for a socket path)
  echo "== connect time"
  hyperfine -r "$RUNS" -w 1 --export-json "$DIR/connect.json" \
    "$pre ssh -F $cfg bench true" \
    "$pre sh -c 'for i in 1 2 3 4 5 6 7 8; do ssh -F $cfg -o ControlMaster=no -o ControlPath=none bench true & done; wait'" \
    "BCMR_SSH='ssh -F $cfg' $pre $BCMR copy -q -f -P 1 $DIR/tiny bench:$DEST/home/tiny" \
    "BCMR_SSH='ssh -F $cfg' $pre $BCMR copy -q -f -P 8 $DIR/tiny bench:$DEST/home/tiny" \
    "BCMR_SSH='ssh -F $cfg' XDG_RUNTIME_DIR=$DIR/run $pre $BCMR copy -q -f --ssh-persist 60 $DIR/tiny bench:$DEST/home/tiny"
  local t; read -r -a t <<<"$(median "$DIR/connect.json")"
  echo "RESULT connect: ssh x1 ${t[0]}s, ssh x8 at once ${t[1]}s ($(ratio "${t[1]}" "${t[0]}")x) | bcmr -P1 ${t[2]}s, -P8 ${t[3]}s ($(ratio "${t[3]}" "${t[2]}")x, goal <= 1.3)" \
    "| --ssh-persist, master and resident server warm: ${t[4]}s ($(ratio "${t[4]}" "${t[2]}")x of -P1)"
  $pre ssh -F "$cfg" -o "ControlPath=$DIR/run/bcmr-ssh/%C" -O exit bench 2>/dev/null || true
  pkill -u bcmrbench -f -- "serve --resident" || true # the resident server --ssh-persist reached
}

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; bcmr: $BCMR ($("$BCMR" --version | head -1));" \
  "sched_autogroup_enabled: $(cat "$AG_FILE" 2>/dev/null || echo none)"

if [ "$PART" != 2 ]; then
  cfg=$(start_sshd sshd 2297 "")
  trap 'stop_sshd sshd; restore_autogroup' EXIT
  [[ " $WORKLOADS " == *" connect "* ]] && connect "" "$cfg"
  suite loopback "$RUNS" 10000 1024 "" "$cfg"
  stop_sshd sshd
fi

if [ "$PART" != 1 ]; then
  # The namespace: its own lo, on which every TCP flow gets its own $RATE. This kernel has neither fq nor sfq, so the
  # flows are told apart by port: the namespace's ephemeral ports are limited to 64, each with an htb class of its
  # own (matched by source or destination port, so both directions of a connection share it).
  cleanup() { stop_sshd ns-sshd; ip netns del "$NS" 2>/dev/null || true; restore_autogroup; }
  trap cleanup EXIT
  ip netns add "$NS"
  nsx() { ip netns exec "$NS" "$@"; }
  nsx ip link set lo up
  nsx sysctl -q -w net.ipv4.ip_local_port_range="40000 40063" net.ipv4.tcp_tw_reuse=1
  nsx tc qdisc add dev lo root handle 1: htb default 9999 r2q 1000
  nsx tc class add dev lo parent 1: classid 1:9999 htb rate 20gbit
  for port in $(seq 40000 40063); do
    c=$((port - 40000 + 10))
    nsx tc class add dev lo parent 1: classid 1:$c htb rate "$RATE" ceil "$RATE"
    nsx tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport "$port" 0xffff flowid 1:$c
    nsx tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport "$port" 0xffff flowid 1:$c
  done
  cfg=$(start_sshd ns-sshd 2296 "ip netns exec $NS")
  sleep 0.5
  echo "namespace $NS: each TCP flow paced at $RATE (htb class per ephemeral port)"
  suite "netns-$RATE" "${NS_RUNS:-2}" 4000 256 "ip netns exec $NS" "$cfg"
fi
