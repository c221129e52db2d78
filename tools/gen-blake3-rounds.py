#!/usr/bin/env python3
"""Prints the seven unrolled BLAKE3 rounds used in src/Bcmr.Engine/Hashing.

The rounds are unrolled into straight-line code on plain locals because the JIT keeps a local
that is passed by `ref` (even to an inlined helper) in memory, which tripled the instruction
count. The four G functions of each half-round are interleaved step by step so independent
operations sit next to each other.

usage: gen-blake3-rounds.py scalar|vector INDENT
"""
import sys

PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8]
COLUMNS = [(0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15)]
DIAGONALS = [(0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14)]


def emit(kind, indent):
    if kind == "scalar":
        add = lambda a, b: f"{a} + {b}"
        xor = lambda a, b: f"{a} ^ {b}"
        ror = lambda x, n: f"BitOperations.RotateRight({x}, {n})"
    else:
        add = lambda a, b: f"TOps.Add({a}, {b})"
        xor = lambda a, b: f"TOps.Xor({a}, {b})"
        ror = lambda x, n: f"TOps.Ror{n}({x})"
    out = []
    schedule = list(range(16))
    for r in range(7):
        out.append(f"// Round {r}")
        for step, groups in (("columns", COLUMNS), ("diagonals", DIAGONALS)):
            base = 0 if step == "columns" else 8
            for half, (rot_d, rot_b) in enumerate(((16, 12), (8, 7))):
                for i, (a, b, c, d) in enumerate(groups):
                    msg = f"m[{schedule[base + 2 * i + half]}]"
                    out.append(f"v{a} = {add(add(f'v{a}', f'v{b}'), msg)};")
                for i, (a, b, c, d) in enumerate(groups):
                    out.append(f"v{d} = {ror(xor(f'v{d}', f'v{a}'), rot_d)};")
                for i, (a, b, c, d) in enumerate(groups):
                    out.append(f"v{c} = {add(f'v{c}', f'v{d}')};")
                for i, (a, b, c, d) in enumerate(groups):
                    out.append(f"v{b} = {ror(xor(f'v{b}', f'v{c}'), rot_b)};")
        schedule = [schedule[p] for p in PERMUTATION]
    print("\n".join(" " * indent + line for line in out))


if __name__ == "__main__":
    emit(sys.argv[1], int(sys.argv[2]))
