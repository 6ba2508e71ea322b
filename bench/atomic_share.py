#!/usr/bin/env python3
"""Share of a profile's samples that fall on atomic instructions (issue 7).

Callgrind counts instructions, not cache traffic, so it cannot see a reference count or a
lock word that both workers write (each write moves the cache line between the cores). A
`perf` sample taken while such an instruction waits is attributed to the instruction after
it. This script matches the sampled addresses of a `perf record` of the server against the
binary's disassembly and reports how many samples land right after a `lock`-prefixed or
`xchg` instruction, in all and per function. It is a figure that stays comparable between
two builds when the host's noise makes their throughput impossible to tell apart.

    perf record -F 1999 -g -o /tmp/perf-a.data target/release/flowgate serve --config ...
    # ... drive it, e.g. with examples/loadgen.rs, then stop perf with SIGINT ...
    python3 bench/atomic_share.py /tmp/perf-a.data target/release/flowgate [--top 12]

Needs `perf`, `objdump` and `readelf` (Debian: linux-perf, binutils).
"""

import argparse
import collections
import os
import re
import subprocess
import sys


def run(*cmd):
    """Runs a command and returns its standard output."""
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def after_atomic_addresses(binary):
    """Addresses (as the ELF file places them) of instructions that follow an atomic one."""
    out = set()
    follows = False
    for line in run("objdump", "-d", "--no-show-raw-insn", binary).splitlines():
        m = re.match(r"\s+([0-9a-f]+):\s*(.*)", line)
        if not m:
            continue
        if follows:
            out.add(int(m.group(1), 16))
            follows = False
        insn = m.group(2)
        follows = insn.startswith("lock ") or insn.startswith("xchg ")
    return out


def text_segment_delta(binary):
    """Virtual address minus file offset of the executable segment."""
    for line in run("readelf", "-lW", binary).splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0] == "LOAD" and "E" in parts[6:-1]:
            return int(parts[2], 16) - int(parts[1], 16)
    sys.exit(f"{binary}: no executable LOAD segment")


def text_mapping(data, binary):
    """Where the profiled process mapped the binary's code: (start, file offset)."""
    name = os.path.basename(binary)
    for line in run("perf", "script", "-i", data, "--show-mmap-events").splitlines():
        if "MMAP" in line and "r-xp" in line and line.rstrip().endswith(name):
            m = re.search(r"\[(0x[0-9a-f]+)\((0x[0-9a-f]+)\) @ (0x[0-9a-f]+)", line)
            if m:
                return int(m.group(1), 16), int(m.group(3), 16)
    sys.exit(f"{data}: no executable mapping of {name}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", help="perf.data of the server")
    ap.add_argument("binary", help="the profiled binary (with its symbols)")
    ap.add_argument("--top", type=int, default=12, help="functions to list")
    a = ap.parse_args()

    atomic = after_atomic_addresses(a.binary)
    start, offset = text_mapping(a.data, a.binary)
    delta = text_segment_delta(a.binary)
    name = os.path.basename(a.binary)
    samples = run("perf", "script", "-i", a.data, "-F", "ip,sym,dso", "-G")
    total = in_binary = on_atomic = 0
    by_function = collections.Counter()
    for line in samples.splitlines():
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        total += 1
        if f"({a.binary})" not in parts[1] and not parts[1].rstrip().endswith(f"{name})"):
            continue
        in_binary += 1
        address = int(parts[0], 16) - start + offset + delta
        if address in atomic:
            on_atomic += 1
            by_function[parts[1].rsplit("(", 1)[0].strip()] += 1
    if total == 0:
        sys.exit(f"{a.data}: no samples")
    print(
        f"{total} samples, {100 * in_binary / total:.1f}% in {name}; "
        f"right after an atomic instruction: {100 * on_atomic / total:.2f}% of all samples"
    )
    for function, count in by_function.most_common(a.top):
        print(f"  {100 * count / total:5.2f}%  {function[:110]}")


if __name__ == "__main__":
    main()
