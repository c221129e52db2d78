#!/usr/bin/python3
# Runs a command (ssh) with every chunk of bytes between the caller and it held back DELAY_MS in each direction, as a
# link's one-way latency would: what bench/turns.sh puts under bcmr and scp to count their protocol's turns (a request
# that waits for its reply pays the round trip, requests sent together pay it once). ssh's own login is not delayed.
# Usage: DELAY_MS=25 delay-pipe.py ssh [args...]
import os, sys, threading, time, subprocess, heapq
d = float(os.environ.get("DELAY_MS", "20")) / 1000
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
def pump(src, dst, close):
    q = []; cv = threading.Condition(); done = [False]
    def writer():
        while True:
            with cv:
                while not q and not done[0]: cv.wait()
                if not q and done[0]: break
                t, data = q[0]
                now = time.monotonic()
                if t > now: cv.wait(t - now); continue
                q.pop(0)
            try: dst.write(data); dst.flush()
            except Exception: break
        close()
    w = threading.Thread(target=writer); w.start()
    while True:
        data = os.read(src.fileno(), 1 << 20)
        with cv:
            if not data: done[0] = True; cv.notify(); break
            q.append((time.monotonic() + d, data)); cv.notify()
    w.join()
out = sys.stdout.buffer
t1 = threading.Thread(target=pump, args=(sys.stdin.buffer, p.stdin, p.stdin.close))
t2 = threading.Thread(target=pump, args=(p.stdout, out, out.close))
t1.daemon = True; t1.start(); t2.start(); t2.join()
sys.exit(p.wait())
