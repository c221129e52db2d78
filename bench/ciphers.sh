#!/usr/bin/env bash
# What ssh's cipher costs a remote copy: bcmr as shipped (it asks ssh for AES-GCM first once the server has said it has
# AES hardware, Client/SshCiphers.cs) against bcmr left to ssh's own order (ChaCha20-Poly1305 first; ssh started
# through `env`, which bcmr does not take for OpenSSH's ssh), rsync and scp with ssh's order, and rsync and scp with
# `-c aes128-gcm@openssh.com`, so the gain that is the cipher's shows apart from bcmr's own. Over a loopback sshd,
# copies on tmpfs, rounds interleaved (every command once per round, in turn), medians printed.
#   1. 10 000 x 64 KiB files, upload and download (no scp: bench/remote.sh has it, at ~10 s a run)
#   2. a 1 GiB random file, download
# Usage: bench/ciphers.sh [rounds] (default 5)   BCMR=path (default: the shipped AOT bcmr), PORT=2298, PARTS="many big".
# Needs root (a user of its own for the remote end), sshd, rsync, python3, b3sum.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
DIR=${BENCH_DIR:-/tmp/bcmr-cbench}
DEST=${BENCH_DEST:-/dev/shm/bcmr-cbench}
PORT=${PORT:-2298}
PARTS=" ${PARTS:-many big} "
. bench/common.sh
bench_bcmr
home=$DEST/home

cleanup() {
  stop_sshd sshd
  rm -rf "$home" "$DEST"
}
trap cleanup EXIT

cfg=$(start_sshd sshd "$PORT" "")
sleep 0.3
echo "$(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) cores, AES: $(grep -qw aes /proc/cpuinfo && echo yes || echo no); bcmr: $("$BCMR" --version | head -1); $ROUNDS rounds"
GCM="-c aes128-gcm@openssh.com"
SSH="ssh -F $cfg"

# The cipher each bcmr arm negotiates, from ssh's own log: the second of two connections with the same ssh command
# (the first teaches bcmr the server's hardware).
echo x > "$home/probe" && chown bcmrbench "$home/probe"
for arm in shipped ssh-order; do
  ssh_words="$SSH"; [ $arm = ssh-order ] && ssh_words="env $SSH"
  for _ in 1 2; do
    rm -f "$DIR/ssh.log"
    BCMR_SSH="$ssh_words -E $DIR/ssh.log -v" "$BCMR" copy -q -f "bench:$home/probe" "$DIR/probe"
  done
  echo "bcmr $arm: $(grep -m1 -o 'server->client cipher: [^ ]*' "$DIR/ssh.log")"
done

many_files "$DIR/many"
[ -f "$DIR/big.bin" ] || head -c 1073741824 /dev/urandom > "$DIR/big.bin"

# rounds NAME PREPARE CMD...: every command once per round, after PREPARE; prints each command's median.
rounds() {
  local name=$1 prepare=$2; shift 2
  python3 - "$ROUNDS" "$name" "$prepare" "$@" <<'PY'
import statistics, subprocess, sys, time
rounds, name, prepare, *cmds = sys.argv[1:]
times = {c: [] for c in cmds}
for r in range(int(rounds) + 1):
    for c in cmds:
        subprocess.run(prepare, shell=True, check=True)
        s = time.monotonic()
        subprocess.run(c, shell=True, check=True)
        if r > 0: times[c].append(time.monotonic() - s)  # round 0 warms up
for c in cmds:
    print(f"{name}: {statistics.median(times[c]):7.3f} s  {c}")
PY
}

if [[ $PARTS == *" many "* ]]; then
  rm -rf "$home/many-src" && cp -r "$DIR/many" "$home/many-src" && chown -R bcmrbench "$home/many-src"
  echo "== 10 000 x 64 KiB upload"
  rounds up "rm -rf $home/up" \
    "rsync -a -e '$SSH' $DIR/many/ bench:$home/up/" "rsync -a -e '$SSH $GCM' $DIR/many/ bench:$home/up/" \
    "BCMR_SSH='env $SSH' $BCMR copy -q -r $DIR/many bench:$home/up" "BCMR_SSH='$SSH' $BCMR copy -q -r $DIR/many bench:$home/up"
  echo "== 10 000 x 64 KiB download"
  rounds down "rm -rf $DEST/down" \
    "rsync -a -e '$SSH' bench:$home/many-src/ $DEST/down/" "rsync -a -e '$SSH $GCM' bench:$home/many-src/ $DEST/down/" \
    "BCMR_SSH='env $SSH' $BCMR copy -q -r bench:$home/many-src $DEST/down" "BCMR_SSH='$SSH' $BCMR copy -q -r bench:$home/many-src $DEST/down"
  [ "$(find "$DEST/down" -type f | wc -l)" = 10000 ]
  rm -rf "$home/up" "$DEST/down" "$home/many-src"
fi
if [[ $PARTS == *" big "* ]]; then
  cp "$DIR/big.bin" "$home/big.bin" && chown bcmrbench "$home/big.bin"
  echo "== 1 GiB download"
  rounds big "rm -f $DEST/big.out" \
    "scp -q -F $cfg bench:$home/big.bin $DEST/big.out" "scp -q -F $cfg $GCM bench:$home/big.bin $DEST/big.out" \
    "BCMR_SSH='env $SSH' $BCMR copy -q bench:$home/big.bin $DEST/big.out" "BCMR_SSH='$SSH' $BCMR copy -q bench:$home/big.bin $DEST/big.out"
  [ "$(b3sum --no-names "$DEST/big.out")" = "$(b3sum --no-names "$DIR/big.bin")" ]
fi
