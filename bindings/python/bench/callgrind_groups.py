"""Instructions per group call from Python, counted by callgrind
(deterministic, unlike wall time on a shared machine), each beside the call
on unique keys it is built on.

    python bindings/python/bench/callgrind_groups.py [--n 20000]

Each case runs twice under `valgrind --tool=callgrind`, with 0 and with N
repetitions (N/500 for the scans over 3,000 entries; the other calls run on
an empty registry); the difference divided
by the repetitions is what one costs, including the Python loop around it
(the `loop only` row is that part alone). Both runs use one str hash seed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Tuple

#: name -> (statement in a loop of n, divisor of n)
CASES: Dict[str, Tuple[str, int]] = {
    "loop only": ("for _ in rounds: pass", 1),
    "`join_self` + `leave`": ("for _ in rounds: js('n', 'g'); lv('n', 'g', me)", 1),
    "`register` + `unregister`": ("for _ in rounds: rg('n', 'g'); ur('n', 'g')", 1),
    "`leave` of a non-member": ("for _ in rounds: lv('n', 'absent', me)", 1),
    "`unregister` of an absent key": ("for _ in rounds: ur('n', 'absent')", 1),
    "`members` of a 1-member group (3,000 entries in its namespace)": ("for _ in rounds: mb('big', 'g')", 500),
    "`select('role=api')` over 3,000 entries (1,000 match)": ("for _ in rounds: sel('role=api')", 500),
    "`list_all()` + the same filter in Python": (
        "for _ in rounds: [e for e in la() if b'role=api' in e.metadata.split()]",
        500,
    ),
}

SETUP = """
import os, sys, procreg
n = int(sys.argv[1])
reg = procreg.Registry("mem:", capacity=4096)
me = os.getpid()
if sys.argv[2] == "big":
    # Only for the scans: a table 73% full probes further, by an amount
    # that changes with the registry's hash seed from run to run.
    for i in range(3000):
        reg.register("big", f"svc-{i:04d}", None, f"role={'api' if i % 3 == 0 else 'db'} port={8000 + i}")
    reg.join_self("big", "g", b"role=none")
js, lv, rg, ur = reg.join_self, reg.leave, reg.register, reg.unregister
mb, sel, la = reg.members, reg.select, reg.list_all
rounds = range(n)
"""


def instructions(code: str, n: int, big: bool) -> Optional[int]:
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-c",
            SETUP + code,
            str(n),
            "big" if big else "empty",
        ],
        capture_output=True,
        text=True,
        # A fixed str hash: the two runs must differ only by the n calls.
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    m = re.search(r"Collected : (\d+)", out.stderr)
    return int(m.group(1)) if m and out.returncode == 0 else None


def main(argv: Sequence[str] = ()) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    args = ap.parse_args(argv or None)
    if shutil.which("valgrind") is None:
        print("needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    rows: List[str] = []
    for name, (code, div) in CASES.items():
        n = max(1, args.n // div)
        a, b = instructions(code, 0, div > 1), instructions(code, n, div > 1)
        cell = "failed" if a is None or b is None else f"{(b - a) / n:,.0f}"
        rows.append(f"| {name} | {cell} |")
    print(f"Command: `python bindings/python/bench/callgrind_groups.py --n {args.n}` (`mem:` registry)")
    print()
    print("| Python call | instructions per call (with the loop) |")
    print("|---|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
