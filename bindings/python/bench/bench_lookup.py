"""Benchmark: `Registry.lookup_pid` from Python against its peers, side by
side in one run: a plain `dict`, UltraDict (a dict in shared memory),
py-lmdb (`Transaction.get` inside one long read transaction) and
`multiprocessing.Manager().dict()`.

    python bindings/python/bench/bench_lookup.py [--keys N] [--batches B]

The peers are optional: a peer that is not installed is reported as such
(`pip install UltraDict lmdb` into the bench's venv, not the test venv; see
BENCHMARKS.md). Prints a markdown table (medians over batches) for
BENCHMARKS.md. Each figure is the wall time of a Python `for` loop over the
keys divided by the number of lookups, so it includes the loop and the call
from Python: what a Python caller pays. The batches of all peers are
interleaved, so that machine noise hits them alike.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import procreg

NS = "bench"
Batch = Callable[[], int]


def timed(batch: Batch) -> float:
    t0 = time.perf_counter_ns()
    n = batch()
    return (time.perf_counter_ns() - t0) / n


def main(argv: Sequence[str] = ()) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--keys", type=int, default=3072, help="registered keys (capacity 4096)")
    ap.add_argument("--batches", type=int, default=15)
    ap.add_argument("--passes", type=int, default=20, help="passes over all keys per in-process batch")
    ap.add_argument("--manager-keys", type=int, default=300, help="keys looked up per Manager batch")
    args = ap.parse_args(argv or None)

    url = f"shm:bench-py-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    reg = procreg.Registry(url, capacity=4096, create="create")
    names = [f"svc-{i:06d}" for i in range(args.keys)]
    for n in names:
        reg.register(NS, n, metadata=b"port=5432")
    order = names[:]
    random.Random(7).shuffle(order)
    me = os.getpid()
    passes = args.passes
    total = passes * len(order)
    lookup_pid = reg.lookup_pid
    lookup = reg.lookup

    def procreg_hit() -> int:
        for _ in range(passes):
            for n in order:
                if lookup_pid(NS, n) != me:
                    raise AssertionError(n)
        return total

    def procreg_miss() -> int:
        for _ in range(passes):
            for n in order:
                if lookup_pid("bench-miss", n) is not None:
                    raise AssertionError(n)
        return total

    def procreg_entry() -> int:
        for n in order:
            lookup(NS, n)
        return len(order)

    plain = {(NS, n): me for n in names}

    def dict_hit() -> int:
        for _ in range(passes):
            for n in order:
                if plain[(NS, n)] != me:
                    raise AssertionError(n)
        return total

    def dict_miss() -> int:
        get = plain.get
        for _ in range(passes):
            for n in order:
                if get(("bench-miss", n)) is not None:
                    raise AssertionError(n)
        return total

    rows: Dict[str, Tuple[Optional[Batch], str]] = {
        "procreg `lookup_pid` (hit)": (procreg_hit, ""),
        "procreg `lookup_pid` (miss)": (procreg_miss, ""),
        "procreg `lookup` (hit, full `Entry`)": (procreg_entry, ""),
        "plain `dict[(ns, name)]` (hit; in-process, for scale)": (dict_hit, ""),
        "plain `dict.get((ns, name))` (miss)": (dict_miss, ""),
    }
    cleanups: List[Callable[[], Any]] = []

    # UltraDict: a dict in shared memory, readable by other processes.
    try:
        from UltraDict import UltraDict  # type: ignore[import-not-found]
    except ImportError:
        rows["UltraDict `ud[key]` (hit)"] = (None, "not installed (`pip install UltraDict`)")
    else:
        ud = UltraDict({f"{NS}/{n}": me for n in names}, buffer_size=4 << 20, shared_lock=False)
        cleanups.append(lambda: ud.unlink())

        def ultradict_hit() -> int:
            for n in order:
                if ud[f"{NS}/{n}"] != me:
                    raise AssertionError(n)
            return len(order)

        def ultradict_miss() -> int:
            get = ud.get
            for n in order:
                if get(f"bench-miss/{n}") is not None:
                    raise AssertionError(n)
            return len(order)

        rows["UltraDict `ud[key]` (hit)"] = (ultradict_hit, "")
        rows["UltraDict `ud.get(key)` (miss)"] = (ultradict_miss, "")

    # py-lmdb: get inside one long read transaction (keys pre-encoded to bytes,
    # which favours lmdb: procreg's calls take str).
    try:
        import lmdb  # type: ignore[import-not-found]
    except ImportError:
        rows["py-lmdb `txn.get(key)` (hit)"] = (None, "not installed (`pip install lmdb`)")
    else:
        tmp = tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        cleanups.append(tmp.cleanup)
        env = lmdb.open(tmp.name, map_size=64 << 20)
        cleanups.insert(0, env.close)
        bkeys = {n: f"{NS}/{n}".encode() for n in names}
        miss_keys = {n: f"bench-miss/{n}".encode() for n in names}
        mebytes = str(me).encode()
        with env.begin(write=True) as w:
            for k in bkeys.values():
                w.put(k, mebytes)
        txn = env.begin()
        cleanups.insert(0, txn.abort)
        bkey_order = [bkeys[n] for n in order]
        miss_order = [miss_keys[n] for n in order]

        def lmdb_hit() -> int:
            get = txn.get
            for _ in range(passes):
                for k in bkey_order:
                    if get(k) != mebytes:
                        raise AssertionError(k)
            return total

        def lmdb_miss() -> int:
            get = txn.get
            for _ in range(passes):
                for k in miss_order:
                    if get(k) is not None:
                        raise AssertionError(k)
            return total

        rows["py-lmdb `txn.get(key)` (hit, one long read txn)"] = (lmdb_hit, "")
        rows["py-lmdb `txn.get(key)` (miss)"] = (lmdb_miss, "")

    runs: Dict[str, List[float]] = {name: [] for name in rows}
    try:
        with multiprocessing.Manager() as mgr:
            shared = mgr.dict(plain)
            sub = order[: args.manager_keys]

            def manager_hit() -> int:
                for n in sub:
                    if shared[(NS, n)] != me:
                        raise AssertionError(n)
                return len(sub)

            rows["`multiprocessing.Manager().dict()[key]` (hit)"] = (manager_hit, "")
            runs["`multiprocessing.Manager().dict()[key]` (hit)"] = []
            for batch, _ in rows.values():  # warm up
                if batch is not None:
                    batch()
            for _ in range(args.batches):
                for name, (batch, _) in rows.items():
                    if batch is not None:
                        runs[name].append(timed(batch))
    finally:
        for c in cleanups:
            c()
        reg.close()
        procreg.destroy(url)

    print(
        f"Command: `python bindings/python/bench/bench_lookup.py` ({args.keys} keys in 4096 slots, "
        f"{args.batches} interleaved batches; procreg {procreg.library_version()}, "
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end)"
    )
    print()
    print("| Python lookup | median ns/op | min | max |")
    print("|---|---:|---:|---:|")
    for name, (batch, why) in rows.items():
        r = runs.get(name) or []
        if batch is None or not r:
            print(f"| {name} | {why or 'not run'} | | |")
        else:
            print(f"| {name} | {statistics.median(r):,.0f} | {min(r):,.0f} | {max(r):,.0f} |")
    print()
    hit = statistics.median(runs["procreg `lookup_pid` (hit)"])
    miss = statistics.median(runs["procreg `lookup_pid` (miss)"])
    mgr_med = statistics.median(runs["`multiprocessing.Manager().dict()[key]` (hit)"])
    print(
        f"`lookup_pid`: hit {hit:,.0f} ns (target <= 150 ns), miss {miss:,.0f} ns "
        f"(target: no slower than a hit); **{mgr_med / hit:,.0f}x** faster than `Manager().dict()`."
    )
    return 0 if hit <= 150 and miss <= hit * 1.1 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
