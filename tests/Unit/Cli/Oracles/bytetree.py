#!/usr/bin/env python3
"""Trees whose names .NET cannot spell: names that are not UTF-8, and paths longer than PATH_MAX (4096 bytes).
Python works on bytes and walks with relative paths, so it is an oracle independent of the program under test.

  bytetree.py make ROOT        writes the tree under ROOT
  bytetree.py digest ROOT      prints one line per entry: hex(relative path bytes) kind sha256
"""
import hashlib
import os
import sys

LONG = b"d" * 240  # 20 levels of it: over 4800 bytes


def make(root):
    os.makedirs(root, exist_ok=True)
    os.chdir(root)
    with open(b"bad\xff\xfename.txt", "wb") as f:
        f.write(b"not utf-8\n")
    os.mkdir(b"dir\xe9")  # Latin-1 e-acute: invalid UTF-8
    with open(b"dir\xe9/inner\x80.bin", "wb") as f:
        f.write(os.urandom(70000))
    with open("ok-ü.txt", "w") as f:
        f.write("valid\n")
    for _ in range(20):
        os.mkdir(LONG)
        os.chdir(LONG)
    with open(b"deep.txt", "wb") as f:
        f.write(b"deep\n")


def open_dir(rel):
    """A descriptor of ROOT-relative directory rel, reached one name at a time (no path over PATH_MAX)."""
    fd = os.open(b".", os.O_RDONLY | os.O_DIRECTORY)
    for part in rel.split(b"/") if rel else []:
        nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    return fd


def digest(root):
    os.chdir(root)
    out = []

    def walk(rel):
        fd = open_dir(rel)
        try:
            names = sorted(os.fsencode(n) for n in os.listdir(fd))
            entries = []
            for name in names:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if os.path.stat.S_ISDIR(st.st_mode):
                    entries.append((name, "dir", ""))
                    continue
                h = os.open(name, os.O_RDONLY, dir_fd=fd)
                sha = hashlib.sha256()
                try:
                    while chunk := os.read(h, 1 << 20):
                        sha.update(chunk)
                finally:
                    os.close(h)
                entries.append((name, "file", sha.hexdigest()))
        finally:
            os.close(fd)
        for name, kind, sha in entries:
            path = rel + b"/" + name if rel else name
            out.append((path, kind, sha))
            if kind == "dir":
                walk(path)

    walk(b"")
    for path, kind, sha in out:
        print(path.hex(), kind, sha)


if __name__ == "__main__":
    {"make": make, "digest": digest}[sys.argv[1]](os.fsencode(sys.argv[2]))
