#!/usr/bin/env python3
"""A misbehaving `bcmr serve` for the hostile-peer tests: speaks the frame format ([u32 LE length of type+payload]
[u8 type][payload]) on stdin/stdout and answers the way MODE says.

  welcome       Welcome, then Welcome again in reply to every request
  list-wrong    Stat says "a directory"; List is answered with Welcome
  resume-wrong  Stat says "no such file"; Mkdir Ok; Resume is answered with Welcome
  stall         Welcome, then nothing at all (reads and ignores requests)
"""
import struct
import sys
import time

mode = sys.argv[1]
src, out = sys.stdin.buffer, sys.stdout.buffer


def read():
    head = src.read(4)
    if len(head) < 4:
        sys.exit(0)
    (n,) = struct.unpack("<I", head)
    body = src.read(n)
    return body[0], body[1:]


def write(kind, payload=b""):
    out.write(struct.pack("<I", len(payload) + 1) + bytes([kind]) + payload)
    out.flush()


def text(s):
    b = s.encode()
    return struct.pack("<I", len(b)) + b


WELCOME, OK, ERROR, STAT_RESPONSE = 0x81, 0x82, 0x83, 0x85
STAT, MKDIR = 0x03, 0x07

read()  # Hello
write(WELCOME, bytes([1, 0]))
while True:
    kind, payload = read()
    if mode == "stall":
        time.sleep(3600)
    elif mode == "welcome":
        write(WELCOME, bytes([1, 0]))
    elif kind == STAT and mode == "list-wrong":
        write(STAT_RESPONSE, struct.pack("<Qq?", 0, 0, True))
    elif kind == STAT and mode == "resume-wrong":
        write(ERROR, text("path: No such file or directory"))
    elif kind == MKDIR:
        write(OK, bytes([0]))
    else:
        write(WELCOME, bytes([1, 0]))
