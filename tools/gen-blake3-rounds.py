#!/usr/bin/env python3
"""Prints the BLAKE3 round code used in src/Bcmr.Engine/Hashing: the body of one round for the
scalar (Blake3Core.Compress) and generic vector (Blake3HashMany.Kernel) forms, all seven rounds
for the AVX2 and AVX-512 kernels (Blake3Avx2.HashMany8, Blake3Avx512.HashMany16), or the message schedule table.

The G functions are expanded into straight-line code on plain locals because the JIT keeps a
local that is passed by `ref` (even to an inlined helper) in memory, which tripled the
instruction count. The four G functions of each half-round are interleaved step by step so
independent operations sit next to each other.

The body reads message words as m[s[i]], s pointing at the round's row of the message
schedule, and is meant to run inside a loop over the seven rounds: with the rounds unrolled
the JIT hoisted all 16 message loads into long-lived temporaries and spilled them.

In the vector form, state word 15 lives in memory (*p15) rather than a local: the 16 state
vectors fill all 16 AVX2 registers and a shift-based rotate needs one more, so the JIT spilled
around every rotate. Choosing the spilled word ourselves costs far fewer loads and stores. The
byte-shuffle masks for the 16- and 8-bit rotates are read from memory (c) for the same reason.

The avx2 form (Blake3Avx2.cs) is the vector form written with Vector256 operators, which need no
inlining temporaries, so all seven rounds fit unrolled in the JIT's 1024 tracked locals; each round
then reads the message through its own pointer mr = m + (an opaque zero read with Volatile.Read),
which the JIT cannot prove equal across rounds, so the loads stay memory operands.

The avx512 form (Blake3Avx512.cs) is the same with all 16 state words in locals, since AVX-512 has 32
vector registers, and every rotate one vprord.

usage: gen-blake3-rounds.py scalar|vector|avx2|avx512 INDENT
       gen-blake3-rounds.py schedule
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
        ror = lambda x, n: f"TOps.Ror{n}({x}, c)" if n in (16, 8) else f"TOps.Ror{n}({x})"
    name = lambda i: "*p15" if kind == "vector" and i == 15 else f"v{i}"
    out = []
    schedule = list(range(16))
    for r in range(1):
        for step, groups in (("columns", COLUMNS), ("diagonals", DIAGONALS)):
            base = 0 if step == "columns" else 8
            for half, (rot_d, rot_b) in enumerate(((16, 12), (8, 7))):
                for i, (a, b, c, d) in enumerate(groups):
                    msg = f"m[s[{schedule[base + 2 * i + half]}]]"
                    out.append(f"{name(a)} = {add(add(name(a), name(b)), msg)};")
                for i, (a, b, c, d) in enumerate(groups):
                    out.append(f"{name(d)} = {ror(xor(name(d), name(a)), rot_d)};")
                for i, (a, b, c, d) in enumerate(groups):
                    out.append(f"{name(c)} = {add(name(c), name(d))};")
                for i, (a, b, c, d) in enumerate(groups):
                    out.append(f"{name(b)} = {ror(xor(name(b), name(c)), rot_b)};")
    print("\n".join(" " * indent + line for line in out))


def emit_x86(indent, form):
    """form "avx2": state word 15 in memory, 16/8-bit rotates as byte shuffles; form "avx512": 32 registers
    hold all 16 state words, and every rotate is one vprord."""
    name = lambda i: "*p15" if form == "avx2" and i == 15 else f"v{i}"
    out = []
    schedule = list(range(16))
    for r in range(7):
        out.append(f"// Round {r}")
        out.append("mr = m + Volatile.Read(ref s_opaqueZero);")
        for step, groups in (("columns", COLUMNS), ("diagonals", DIAGONALS)):
            base = 0 if step == "columns" else 8
            for half, (rot_d, rot_b) in enumerate(((16, 12), (8, 7))):
                mask = "rot16" if rot_d == 16 else "rot8"
                for i, (a, b, c, d) in enumerate(groups):
                    out.append(f"{name(a)} = {name(a)} + {name(b)} + mr[{schedule[base + 2 * i + half]}];")
                for i, (a, b, c, d) in enumerate(groups):
                    if form == "avx2":
                        out.append(f"{name(d)} = Avx2.Shuffle(({name(d)} ^ {name(a)}).AsByte(), {mask}[0]).AsUInt32();")
                    else:
                        out.append(f"{name(d)} = Avx512F.RotateRight({name(d)} ^ {name(a)}, {rot_d});")
                for i, (a, b, c, d) in enumerate(groups):
                    out.append(f"{name(c)} = {name(c)} + {name(d)};")
                for i, (a, b, c, d) in enumerate(groups):
                    if form == "avx2":
                        out.append(f"t = {name(b)} ^ {name(c)}; {name(b)} = (t >> {rot_b}) | (t << {32 - rot_b});")
                    else:
                        out.append(f"{name(b)} = Avx512F.RotateRight({name(b)} ^ {name(c)}, {rot_b});")
        schedule = [schedule[p] for p in PERMUTATION]
    print("\n".join(" " * indent + line for line in out))


def schedule_table():
    """The 7 x 16 message schedule: row r is the message permutation applied r times."""
    rows, row = [], list(range(16))
    for _ in range(7):
        rows.append(row)
        row = [row[p] for p in PERMUTATION]
    return rows


if __name__ == "__main__":
    if sys.argv[1] == "schedule":
        for row in schedule_table():
            print(", ".join(map(str, row)) + ",")
        sys.exit(0)
    if sys.argv[1] in ("avx2", "avx512"):
        emit_x86(int(sys.argv[2]), sys.argv[1])
    else:
        emit(sys.argv[1], int(sys.argv[2]))
