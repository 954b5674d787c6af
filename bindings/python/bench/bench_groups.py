"""Groups and select from Python, the measures of BENCHMARKS.md "Groups and
queries" (benches/groups.rs) taken through the binding: per-call time of
``members``, ``join_self`` + ``leave`` beside ``register`` + ``unregister``,
``select`` beside ``list_all`` + the same filter in Python (timeit, best of
7 repeats), and the wake-up of ``wait_for_members`` when another process
joins (median and max of 30 rounds).

    python bindings/python/bench/bench_groups.py

Each measure runs on a fresh ``shm:`` registry of the default size (4,096
slots), destroyed afterwards. Members of other pids are sleeping child
processes (a member's process must run).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import timeit
import uuid
from typing import Any, Callable, Iterator, List

import procreg


def _fresh() -> Iterator[procreg.Registry]:
    url = f"shm:bench-groups-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    reg = procreg.Registry(url, create="create")
    try:
        yield reg
    finally:
        reg.close()
        procreg.destroy(url)


def _best_ns(stmt: Callable[[], Any], number: int) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=7)) / number * 1e9


def _show(label: str, ns: float) -> None:
    print(f"{label:58} {ns / 1000:9.2f} us" if ns >= 10_000 else f"{label:58} {ns:9.0f} ns")


def members(sleepers: List[int]) -> None:
    for size in (10, 100):
        for reg in _fresh():
            for pid in sleepers[:size]:
                reg.join("bench", "pool", pid, b"role=worker")
            assert len(reg.members("bench", "pool")) == size
            _show(f"members of a {size}-member group", _best_ns(lambda: reg.members("bench", "pool"), 200))


def join_leave() -> None:
    for reg in _fresh():
        me = os.getpid()

        def pair() -> None:
            reg.join_self("bench", "pool", b"role=api")
            reg.leave("bench", "pool", me)

        def plain() -> None:
            reg.register("bench", "pool", None, b"role=api")
            reg.unregister("bench", "pool")

        _show("join_self + leave", _best_ns(pair, 20_000))
        _show("register + unregister, same metadata", _best_ns(plain, 20_000))


def select() -> None:
    for reg in _fresh():
        for i in range(3000):
            role = "api" if i % 3 == 0 else "db"
            reg.register("bench", f"svc-{i:04d}", None, f"role={role} port={8000 + i}")
        hits = reg.select("role=api")
        by_hand = [e for e in reg.list_all() if b"role=api" in e.metadata.split()]
        assert len(hits) == len(by_hand) == 1000
        _show('select("role=api") over 3,000 entries (1,000 match)', _best_ns(lambda: reg.select("role=api"), 20))
        _show(
            "list_all + the same filter in Python",
            _best_ns(lambda: [e for e in reg.list_all() if b"role=api" in e.metadata.split()], 20),
        )


def _joiner(url: str, go: Any, joined: Any, left: Any) -> None:
    """Joins when told (after 50 ms, so that the parent waits), reports the
    time just before the join, leaves when told again; until told None."""
    reg = procreg.Registry(url)
    while go.get() is not None:
        time.sleep(0.05)
        t = time.monotonic()
        reg.join_self("bench", "pool")
        joined.put(t)
        go.get()
        reg.leave("bench", "pool", os.getpid())
        left.put(True)
    reg.close()


def wake_up(rounds: int = 30) -> None:
    ctx = multiprocessing.get_context("spawn")
    for reg in _fresh():
        reg.join_self("bench", "pool")
        go, joined, left = ctx.Queue(), ctx.Queue(), ctx.Queue()
        p = ctx.Process(target=_joiner, args=(reg.url, go, joined, left))
        p.start()
        lat: List[float] = []
        try:
            for _ in range(rounds):
                go.put(True)
                got = reg.wait_for_members("bench", "pool", 2, timeout=30)
                woke = time.monotonic()
                lat.append(woke - joined.get(timeout=30))
                assert len(got) == 2
                go.put(True)
                left.get(timeout=30)
        finally:
            go.put(None)
            p.join(30)
        med, worst = statistics.median(lat) * 1e6, max(lat) * 1e6
        print(f"{'wait_for_members wake-up after a join in another process':58} median {med:.0f} us, max {worst:.0f} us ({rounds} rounds)")


def main() -> None:
    sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(100)]
    try:
        members([p.pid for p in sleepers])
    finally:
        for p in sleepers:
            p.kill()
            p.wait()
    join_leave()
    select()
    wake_up()


if __name__ == "__main__":
    sys.exit(main())
