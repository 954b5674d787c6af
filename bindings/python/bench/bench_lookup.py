"""Benchmark: `Registry.lookup_pid` from Python against
`multiprocessing.Manager().dict()` lookups of the same keys, in the same run.

    python bindings/python/bench/bench_lookup.py [--keys N] [--batches B]

Prints a markdown table (medians over batches) for BENCHMARKS.md. Each figure
is the wall time of a Python `for` loop over the keys divided by the number of
lookups, so it includes the loop and the call from Python: what a Python
caller pays.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import statistics
import sys
import time
import uuid
from typing import Callable, List, Sequence

import procreg

NS = "bench"


def per_op_ns(batch: Callable[[], int], batches: int) -> List[float]:
    out = []
    for _ in range(batches):
        t0 = time.perf_counter_ns()
        n = batch()
        out.append((time.perf_counter_ns() - t0) / n)
    return out


def main(argv: Sequence[str] = ()) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=3072, help="registered keys (capacity 4096)")
    ap.add_argument("--batches", type=int, default=15)
    ap.add_argument("--passes", type=int, default=20, help="passes over all keys per procreg batch")
    ap.add_argument("--manager-keys", type=int, default=300, help="keys looked up per Manager batch")
    args = ap.parse_args(argv or None)

    url = f"shm:bench-py-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    reg = procreg.Registry(url, capacity=4096, create="create")
    try:
        names = [f"svc-{i:06d}" for i in range(args.keys)]
        for n in names:
            reg.register(NS, n, metadata=b"port=5432")
        order = names[:]
        random.Random(7).shuffle(order)
        me = os.getpid()
        lookup_pid = reg.lookup_pid
        lookup = reg.lookup

        def procreg_pid_batch() -> int:
            for _ in range(args.passes):
                for n in order:
                    if lookup_pid(NS, n) != me:
                        raise AssertionError(n)
            return args.passes * len(order)

        def procreg_entry_batch() -> int:
            for n in order:
                lookup(NS, n)
            return len(order)

        def procreg_miss_batch() -> int:
            for n in order:
                lookup_pid("bench-miss", n)
            return len(order)

        plain = {(NS, n): me for n in names}

        def dict_batch() -> int:
            for _ in range(args.passes):
                for n in order:
                    if plain[(NS, n)] != me:
                        raise AssertionError(n)
            return args.passes * len(order)

        with multiprocessing.Manager() as mgr:
            shared = mgr.dict(plain)
            sub = order[: args.manager_keys]

            def manager_batch() -> int:
                for n in sub:
                    if shared[(NS, n)] != me:
                        raise AssertionError(n)
                return len(sub)

            procreg_pid_batch()  # warm up caches and the key cache
            manager_batch()
            # Interleave the two so that machine noise hits both alike.
            pid_runs: List[float] = []
            mgr_runs: List[float] = []
            for _ in range(args.batches):
                pid_runs += per_op_ns(procreg_pid_batch, 1)
                mgr_runs += per_op_ns(manager_batch, 1)
        entry_runs = per_op_ns(procreg_entry_batch, args.batches)
        miss_runs = per_op_ns(procreg_miss_batch, args.batches)
        dict_runs = per_op_ns(dict_batch, args.batches)
    finally:
        reg.close()
        procreg.destroy(url)

    pid_med = statistics.median(pid_runs)
    mgr_med = statistics.median(mgr_runs)
    rows = [
        ("procreg `lookup_pid` (hit)", pid_med, min(pid_runs), max(pid_runs)),
        ("procreg `lookup_pid` (miss)", statistics.median(miss_runs), min(miss_runs), max(miss_runs)),
        ("procreg `lookup` (hit, full `Entry`)", statistics.median(entry_runs), min(entry_runs), max(entry_runs)),
        ("`multiprocessing.Manager().dict()[key]`", mgr_med, min(mgr_runs), max(mgr_runs)),
        ("plain `dict[key]` (in-process, for scale)", statistics.median(dict_runs), min(dict_runs), max(dict_runs)),
    ]
    print(f"Command: `python bindings/python/bench/bench_lookup.py` ({args.keys} keys in 4096 slots, "
          f"{args.batches} batches; procreg {procreg.library_version()}, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end)")
    print()
    print("| Python lookup | median ns/op | min | max |")
    print("|---|---:|---:|---:|")
    for name, med, lo, hi in rows:
        print(f"| {name} | {med:,.0f} | {lo:,.0f} | {hi:,.0f} |")
    print()
    ratio = mgr_med / pid_med
    print(f"`lookup_pid` is **{ratio:,.1f}x** faster than `Manager().dict()` lookups of the same keys "
          f"(target >= 50x); median {pid_med:,.0f} ns (target <= 1,000 ns).")
    ok = pid_med <= 1000 and ratio >= 50
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
