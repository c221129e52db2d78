#!/usr/bin/env python3
"""A misbehaving `bcmr serve` for the hostile-peer tests: speaks the frame format ([u32 LE length of type+payload]
[u8 type][payload]) on stdin/stdout and answers the way MODE says.

  welcome       Welcome, then Welcome again in reply to every request
  list-wrong    Stat says "a directory"; List is answered with Welcome
  resume-wrong  Stat says "no such file" (but "/" is a directory); Mkdir Ok; Resume is answered with Welcome
  stall         Welcome, then nothing at all (reads and ignores requests)
  v06           a well-behaved server the way bcmr 0.6 answers downloads: Stat, Hash (via b3sum), and Get, whose
                Ok after a Get at an offset carries the BLAKE3 of the bytes from the offset, not of the whole file
  stripe-liar   one of our own servers (Extended) that moves striped ranges faithfully but answers each with
                chaining values of zeros (bytes damaged where the hashes cannot see them); every Assemble it is
                asked for is recorded by touching the file named by the second argument
  get-liar HOW  Stat as the file is, and Get answered wrongly, HOW: wrong-hash (every byte, then an Ok whose BLAKE3 is
                not theirs), short (one byte less than Stat said, then the true file's BLAKE3), long (the file and 5
                bytes more), cut (the first half of the file, then the process exits)
  evil-list     one of our own servers (Extended, with the sync feature) whose every path is a directory and whose
                List names entries that escape (.., absolute, a/../..) beside an ordinary one; every Remove, Rename,
                Link or SetMeta it is asked for is recorded as a line in the file named by the second argument
  pipelined     Welcome, then no reply at all: records in the file named by the second argument the types of the
                requests the client sent before waiting for a reply (those that arrive within half a second of one
                another), one per line, and exits
"""
import os
import subprocess
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


WELCOME, OK, ERROR, DATA, STAT_RESPONSE, HASH_RESPONSE, RANGE_HASHES = 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x8e
STAT, HASH, GET, MKDIR, PUT_CHUNKED, GET_CHUNKED, ASSEMBLE = 0x03, 0x04, 0x05, 0x07, 0x0d, 0x0e, 0x12
LIST, LIST_RESPONSE = 0x02, 0x87
TREE_CHANGES = (0x14, 0x15, 0x16, 0x17)  # SetMeta, Remove, Rename, Link
BLOCK = 4 << 20


def field_str(payload, at):
    (n,) = struct.unpack_from("<I", payload, at)
    return payload[at + 4:at + 4 + n].decode(), at + 4 + n


def b3(data):
    return subprocess.run(["b3sum", "--no-names"], input=data, capture_output=True, check=True).stdout.split()[0]


def v06(kind, payload):
    path, at = field_str(payload, 0)
    if not os.path.exists(path):
        write(ERROR, text(f"{path}: No such file or directory"))
    elif kind == STAT:
        st = os.stat(path)
        write(STAT_RESPONSE, struct.pack("<Qq?", st.st_size, int(st.st_mtime), os.path.isdir(path)))
    elif kind == HASH:
        (offset,) = struct.unpack_from("<Q", payload, at)
        has_limit = payload[at + 8]
        data = open(path, "rb").read()[offset:]
        if has_limit:
            (limit,) = struct.unpack_from("<Q", payload, at + 9)
            data = data[:limit]
        write(HASH_RESPONSE, text(b3(data).decode()))
    elif kind == GET:
        (offset,) = struct.unpack_from("<Q", payload, at)
        data = open(path, "rb").read()[offset:]
        for i in range(0, len(data), 4 << 20):
            chunk = data[i:i + (4 << 20)]
            write(DATA, struct.pack("<I", len(chunk)) + chunk)
        write(OK, bytes([1]) + text(b3(data).decode()))
    else:
        write(ERROR, text("not supported by this fake"))

def zero_values(offset, length):
    n = (length + BLOCK - 1) // BLOCK
    return struct.pack("<QI", offset, 32 * n) + bytes(32 * n)


def stripe_liar(kind, payload):
    path, at = field_str(payload, 0)
    if kind == STAT:
        if os.path.exists(path):
            st = os.stat(path)
            write(STAT_RESPONSE, struct.pack("<Qq?", st.st_size, int(st.st_mtime), os.path.isdir(path)))
        else:
            write(ERROR, text(f"{path}: No such file or directory"))
    elif kind == PUT_CHUNKED:
        offset, length = struct.unpack_from("<QQ", payload, at)
        left = length
        while left > 0:
            k, p = read()
            left -= len(p) - 4  # Data{bytes}: no codec was offered
        write(RANGE_HASHES, zero_values(offset, length))
    elif kind == GET_CHUNKED:
        offset, length = struct.unpack_from("<QQ", payload, at)
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        for i in range(0, len(data), BLOCK):
            chunk = data[i:i + BLOCK]
            write(DATA, struct.pack("<I", len(chunk)) + chunk)
        write(RANGE_HASHES, zero_values(offset, length))
    elif kind == ASSEMBLE:
        open(sys.argv[2], "a").close()
        write(OK, bytes([0]))
    else:
        write(ERROR, text("not supported by this fake"))


def get_liar(kind, payload):
    path, at = field_str(payload, 0)
    how = sys.argv[2]
    if kind == STAT:
        st = os.stat(path)
        write(STAT_RESPONSE, struct.pack("<Qq?", st.st_size, int(st.st_mtime), False))
    elif kind == GET:
        data = open(path, "rb").read()
        sent = {"short": data[:-1], "long": data + b"extra", "cut": data[:len(data) // 2]}.get(how, data)
        write(DATA, struct.pack("<I", len(sent)) + sent)
        if how == "cut":
            sys.exit(0)
        write(OK, bytes([1]) + text(b3(data + b"!" if how == "wrong-hash" else data).decode()))
    else:
        write(ERROR, text("not supported by this fake"))


def evil_list(kind, payload):
    if kind == STAT:
        write(STAT_RESPONSE, struct.pack("<Qq?", 0, 0, True))
    elif kind == LIST:
        names = ["../escaped.txt", "/tmp/absolute.txt", "ok/../../up.txt", "ok.txt"]
        body = struct.pack("<I", len(names))
        for n in names:
            body += text(n) + struct.pack("<Qq?", 1, 0, False)
        write(LIST_RESPONSE, body)
    elif kind in TREE_CHANGES:
        with open(sys.argv[2], "a") as f:
            f.write(f"{kind:#x} {payload!r}\n")
        write(OK, bytes([0]))
    elif kind == MKDIR:
        write(OK, bytes([0]))
    else:
        write(ERROR, text("not supported by this fake"))


def pipelined(log):
    # Unbuffered, so that select sees every byte the client sent (a buffered reader may hold frames select cannot).
    import select
    fd, data, types = sys.stdin.fileno(), b"", []
    while True:
        while len(data) >= 4 and len(data) >= 4 + struct.unpack("<I", data[:4])[0]:
            n = struct.unpack("<I", data[:4])[0]
            types.append(data[4])
            data = data[4 + n:]
        if types and not select.select([fd], [], [], 0.5)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    with open(log, "w") as f:
        f.write("".join(f"{t:#04x}\n" for t in types))
    sys.exit(0)


if mode == "pipelined":
    read()  # Hello
    write(WELCOME, bytes([1, 0]))
    pipelined(sys.argv[2])
hello_kind, hello = read()  # Hello
if mode == "evil-list":
    write(WELCOME, bytes([1, 0x80]) + struct.pack("<I", 1))
else:
    write(WELCOME, bytes([1, 0x80 if mode == "stripe-liar" else 0]))
while True:
    kind, payload = read()
    if mode == "v06" and kind in (STAT, HASH, GET):
        v06(kind, payload)
    elif mode == "stripe-liar":
        stripe_liar(kind, payload)
    elif mode == "evil-list":
        evil_list(kind, payload)
    elif mode == "get-liar":
        get_liar(kind, payload)
    elif mode == "stall":
        time.sleep(3600)
    elif mode == "welcome":
        write(WELCOME, bytes([1, 0]))
    elif kind == STAT and mode == "list-wrong":
        write(STAT_RESPONSE, struct.pack("<Qq?", 0, 0, True))
    elif kind == STAT and mode == "resume-wrong":
        # The file is new; its directory, the root, is there (a client checks it before sending to a new name).
        if payload[4:] == b"/":
            write(STAT_RESPONSE, struct.pack("<Qq?", 0, 0, True))
        else:
            write(ERROR, text("path: No such file or directory"))
    elif kind == MKDIR:
        write(OK, bytes([0]))
    else:
        write(WELCOME, bytes([1, 0]))
