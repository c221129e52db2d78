#!/usr/bin/env bash
# Remote copy benchmarks (issues 4 and 17; goals printed are issue 17's) over a private loopback sshd, competitors in the same run, ratios printed.
#   1. 10 000 x 64 KiB files, upload and download: bcmr vs scp -r vs rsync -a -e ssh.
#   2. 1 GiB random file download: bcmr, bcmr --fast, scp.
#   3. Start-up cost of one remote call: one small file, bcmr vs scp.
# Usage: bench/remote.sh [runs]   (default 3).
#   PARTS="many big small" (default: all three)   SMALL_RUNS=40: interleaved rounds of part 3 (a ~0.3 s command whose
#                 runs spread by +-15 ms here: ten runs could not tell 1.05 from 1.10)
#   BCMR=path     the binary on both ends (default: the shipped AOT bcmr, which runs its v3/v4 image where the CPU
#                 has one; built if missing)
#   BCMR_V3=path  a second binary measured in the same runs, e.g. BCMR_V3=$PWD/out/bcmr-linux-x64/bcmr with
#                 BCMR_SIMD=portable exported to compare the portable image (default: none)
#   BENCH_DEST    where copies land, on both ends (default /dev/shm/bcmr-rbench, tmpfs). On this VM's ext4 (no
#                 journal) the inode allocator re-reads recently deleted inodes after each run's `rm -rf`, and
#                 page-cache writes cost 3-6x more in some states; both land on whichever tool runs next, so the
#                 ext4 numbers measure the disk's mood more than the tools. BENCH_DEST=/tmp/x measures ext4 anyway.
# Needs sshd (openssh-server), hyperfine, rsync, python3. Sources live in $BENCH_DIR (default /tmp/bcmr-rbench);
# port $PORT (default 2298).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
DIR=${BENCH_DIR:-/tmp/bcmr-rbench}
DEST=${BENCH_DEST:-/dev/shm/bcmr-rbench}
PORT=${PORT:-2298}
BCMR=${BCMR:-$PWD/out/bcmr-linux-x64/bcmr}
[ -x "$BCMR" ] || dotnet publish src/Bcmr.Cli -c Release -p:PublishProfile=aot-linux-x64 >/dev/null
BCMR_V3=${BCMR_V3:-none}
[ "$BCMR_V3" != none ] && [ -x "$BCMR_V3" ] || BCMR_V3=
. bench/common.sh # (the script runs from the repository root)
bench_account # its own account, no rc files (common.sh says why)
SSHD=$DIR/sshd
start_sshd sshd "$PORT" "" >/dev/null
trap 'stop_sshd sshd' EXIT # the sshd it started outlived every run before
HOST=bench
# The remote bcmr serves $DEST/home (its HOME), so the benchmark never touches the real home.
remote_wrapper "$BCMR" "$DIR/remote-bcmr"
[ -n "$BCMR_V3" ] && remote_wrapper "$BCMR_V3" "$DIR/remote-bcmr-v3"
export BCMR_SSH="ssh -F $SSHD/ssh_config" XDG_DATA_HOME="$DIR/xdg"
SCP="scp -q -F $SSHD/ssh_config"
RSYNC="rsync -a -e 'ssh -F $SSHD/ssh_config'"
# One command per binary: "bcmr ARGS" with its own remote command.
bcmr_cmds() { echo "BCMR_REMOTE=$DIR/remote-bcmr $BCMR $*"; [ -z "$BCMR_V3" ] || echo "BCMR_REMOTE=$DIR/remote-bcmr-v3 $BCMR_V3 $*"; }

names=(shipped); [ -z "$BCMR_V3" ] || names+=(second)
PARTS=" ${PARTS:-many big small} "

many_files "$DIR/many"
[ -f "$DIR/big.bin" ] || head -c 1073741824 /dev/urandom > "$DIR/big.bin"
cp -n "$DIR/big.bin" "$DEST/home/big.bin"
echo "binaries: $BCMR ${BCMR_V3:-}; copies land in $DEST ($(stat -f -c %T "$DEST"))"

# many NAME SRC DST RSYNC_SRC: 10 000 files one way, scp vs rsync vs each bcmr, ratios printed.
many() {
  local name=$1 src=$2 dst=$3 rsrc=$4 cmds
  mapfile -t cmds < <(bcmr_cmds "copy -q -r $src $dst")
  echo "== 10 000 x 64 KiB $name"
  hyperfine -r "$RUNS" -w 1 --prepare "rm -rf ${dst#$HOST:}" --export-json "$DIR/$name.json" \
    "$SCP -r $src $dst" "$RSYNC $rsrc/ $dst/" "${cmds[@]}"
  read -r scp rsync b1 b2 <<<"$(median "$DIR/$name.json")"
  for i in "${!names[@]}"; do b=$([ "$i" = 0 ] && echo "$b1" || echo "$b2")
    echo "$name ${names[$i]}: bcmr/scp = $(ratio "$b" "$scp") (goal <= 0.35)   bcmr/rsync = $(ratio "$b" "$rsync") (goal <= 0.8)"; done
}
if [[ $PARTS == *" many "* ]]; then
many upload "$DIR/many" "$HOST:$DEST/home/up" "$DIR/many"
rm -rf "$DEST/home/many-src"; cp -r "$DIR/many" "$DEST/home/many-src"
many download "$HOST:$DEST/home/many-src" "$DEST/down" "$HOST:$DEST/home/many-src"
rm -rf "$DEST/home/many-src" "$DEST/down" "$DEST/home/up"
fi

if [[ $PARTS == *" big "* ]]; then
echo "== 1 GiB download"
mapfile -t big < <(bcmr_cmds "copy -q $HOST:$DEST/home/big.bin $DEST/big.out"; bcmr_cmds "copy -q --fast $HOST:$DEST/home/big.bin $DEST/big.out")
hyperfine -r "$RUNS" -w 1 --prepare "rm -f $DEST/big.out" --export-json "$DIR/big.json" \
  "$SCP $HOST:$DEST/home/big.bin $DEST/big.out" \
  "${big[@]}"
read -r -a t <<<"$(median "$DIR/big.json")"
n=${#names[@]}
for i in "${!names[@]}"; do
  echo "1 GiB ${names[$i]}:    bcmr/scp = $(ratio "${t[$((1 + i))]}" "${t[0]}") (goal <= 1.0)   bcmr --fast/scp = $(ratio "${t[$((1 + n + i))]}" "${t[0]}") (goal <= 0.85)"; done
rm -f "$DEST/big.out"
fi

[[ $PARTS == *" small "* ]] || exit 0
echo "== start-up: one small file"
echo hello > "$DEST/home/small.txt"
mapfile -t small < <(bcmr_cmds "copy -q $HOST:$DEST/home/small.txt $DEST/small.out")
# Interleaved rounds (scp, bare ssh, each bcmr in turn, each round starting one later; two warm-up rounds), medians: this host's speed drifts by a
# quarter within an hour, and hyperfine's one-command-after-another runs put that drift on whichever command runs later.
read -r -a t <<<"$(python3 - "${SMALL_RUNS:-40}" "$DEST/small.out" "$SCP $HOST:$DEST/home/small.txt $DEST/small.out" \
  "ssh -F $SSHD/ssh_config $HOST true" "${small[@]}" <<'PY'
import os, shlex, statistics, subprocess, sys, time
rounds, out, *commands = sys.argv[1:]
def argv_env(command):  # "VAR=value ... program args": no shell in between, for any of them
    words, env = shlex.split(command), dict(os.environ)
    while words and "=" in words[0] and not words[0].startswith("/"):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    return words, env
parsed = [argv_env(c) for c in commands]
times = [[] for _ in commands]
for r in range(int(rounds) + 2):
    # Each round starts with the next command, so none always follows the same one (a connection right after
    # another's teardown pays for it).
    for k in range(len(parsed)):
        i = (r + k) % len(parsed)
        argv, env = parsed[i]
        if os.path.exists(out): os.unlink(out)
        start = time.monotonic()
        code = subprocess.run(argv, env=env).returncode
        took = time.monotonic() - start
        if code != 0: sys.exit(f"remote.sh: '{commands[i]}' exited {code}")
        if r >= 2: times[i].append(took)
print(" ".join(str(statistics.median(x)) for x in times))
PY
)"
for i in "${!names[@]}"; do
  echo "small ${names[$i]}:    bcmr/scp = $(ratio "${t[$((2 + i))]}" "${t[0]}") (goal <= 1.05)   (bare ssh round trip: $(python3 -c "print(f'{${t[1]}*1000:.0f}')") ms, bcmr $(python3 -c "print(f'{${t[$((2 + i))]}*1000:.0f}')") ms, scp $(python3 -c "print(f'{${t[0]}*1000:.0f}')") ms)"; done
