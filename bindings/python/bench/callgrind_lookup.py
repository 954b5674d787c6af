"""Instructions per lookup from Python, counted by callgrind (deterministic,
unlike wall time on a shared machine), for procreg and the peers of
bench_lookup.py that are installed.

    python bindings/python/bench/callgrind_lookup.py [--n 100000]

Each case runs twice under `valgrind --tool=callgrind`, with 0 and with N
lookups; the difference divided by N is what one lookup costs, including the
Python loop around it and the key strings' iteration (the same for every
case; the `loop only` row is that part alone).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from typing import List, Optional, Sequence

CASES = {
    "loop only": "for x in order: pass",
    "procreg `lookup_pid` (hit)": "for x in order: lp('bench', x)",
    "procreg `lookup_pid` (miss)": "for x in order: lp('nope', x)",
    "procreg `lookup` (hit, full `Entry`)": "for x in order: lk('bench', x)",
    "`dict[(ns, name)]` (hit)": "for x in order: plain[('bench', x)]",
    "`dict.get((ns, name))` (miss)": "for x in order: plain.get(('nope', x))",
    "py-lmdb `txn.get(key)` (hit, long txn, bytes keys)": "for k in border: get(k)",
    "UltraDict `ud[key]` (hit)": "for x in order: ud['bench/' + x]",
}

SETUP = """
import os, sys, tempfile, procreg
n = int(sys.argv[1])
reg = procreg.Registry("mem:", capacity=4096)
names = [f"svc-{i:06d}" for i in range(3072)]
for x in names: reg.register("bench", x)
lp, lk = reg.lookup_pid, reg.lookup
plain = {("bench", x): 1 for x in names}
order = (names * (n // len(names) + 1))[:n]
border = [f"bench/{x}".encode() for x in order]
if "lmdb" in sys.argv[2]:
    import lmdb
    env = lmdb.open(tempfile.mkdtemp(dir="/dev/shm"), map_size=64 << 20)
    with env.begin(write=True) as w:
        for x in names: w.put(f"bench/{x}".encode(), b"1")
    get = env.begin().get
if "UltraDict" in sys.argv[2]:
    from UltraDict import UltraDict
    ud = UltraDict({f"bench/{x}": 1 for x in names}, buffer_size=4 << 20, shared_lock=False)
"""


def instructions(code: str, n: int, name: str) -> Optional[int]:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", SETUP + code, str(n), name],
        capture_output=True,
        text=True,
    )
    m = re.search(r"Collected : (\d+)", out.stderr)
    return int(m.group(1)) if m and out.returncode == 0 else None


def main(argv: Sequence[str] = ()) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args(argv or None)
    if shutil.which("valgrind") is None:
        print("needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    rows: List[str] = []
    for name, code in CASES.items():
        a, b = instructions(code, 0, name), instructions(code, args.n, name)
        cell = "not installed" if a is None or b is None else f"{(b - a) / args.n:,.0f}"
        rows.append(f"| {name} | {cell} |")
    print(f"Command: `python bindings/python/bench/callgrind_lookup.py --n {args.n}` (3072 keys, `mem:` registry)")
    print()
    print("| Python lookup | instructions per op (with the loop) |")
    print("|---|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
