"""Worker functions for the multiprocessing tests (a module of its own so that
the spawn start method can import them in the child)."""

from __future__ import annotations

import os
import time
from typing import Any, List


def register_many(url: str, ns: str, worker: int, count: int, done: Any, release: Any) -> None:
    """Registers ``count`` services owned by this process, reports, and stays
    alive until ``release`` is set (entries of exited owners would be dead)."""
    import procreg

    with procreg.Registry(url) as reg:
        for i in range(count):
            reg.register(ns, f"w{worker}-svc{i:03d}", metadata={"worker": worker, "i": i})
    done.put((worker, os.getpid()))
    release.wait(60)


def register_and_hang(url: str, ns: str, count: int, ready: Any) -> None:
    """Registers ``count`` services and sleeps until killed."""
    import procreg

    reg = procreg.Registry(url)
    for i in range(count):
        reg.register(ns, f"victim-{i}")
    ready.put(os.getpid())
    time.sleep(120)


def race(url: str, ns: str, keys: int, barrier: Any, results: Any, release: Any) -> None:
    """Tries to register every one of ``keys`` keys; reports which it won and
    the owner pids reported by AlreadyExists for the others."""
    import procreg

    won: List[int] = []
    lost: List[int] = []
    with procreg.Registry(url) as reg:
        barrier.wait(60)
        for k in range(keys):
            while True:
                try:
                    reg.register(ns, f"key-{k}")
                    won.append(k)
                except procreg.AlreadyExists as e:
                    lost.append(e.pid)
                except procreg.Busy:
                    continue  # a concurrent writer held the neighbourhood; retry
                break
    results.put((os.getpid(), won, lost))
    release.wait(60)


def register_when_told(url: str, ns: str, name: str, go: Any, registered: Any, release: Any) -> None:
    """Waits for ``go``, sleeps 0.2 s (so that the parent is inside its wait),
    registers (ns, name), reports ``(pid, time.monotonic())`` of the
    registration, and stays alive until ``release`` is set."""
    import procreg

    with procreg.Registry(url) as reg:
        go.wait(60)
        time.sleep(0.2)
        reg.register(ns, name, metadata=b"from-child")
        registered.put((os.getpid(), time.monotonic()))
        release.wait(60)


def use_passed_registry(reg: Any, ns: str, done: Any, release: Any) -> None:
    """Receives a pickled Registry (the spawn start method pickles the
    arguments), registers through it, reports, and stays alive until told."""
    reg.register(ns, "from-spawned-child", metadata=b"child")
    done.put((os.getpid(), reg.url, reg.lookup_pid(ns, "from-spawned-child")))
    release.wait(60)
    reg.close()


def join_when_told(reg: Any, ns: str, group: str, go: Any, joined: Any, release: Any) -> None:
    """Receives a pickled Registry (the spawn start method pickles the
    arguments), waits for ``go``, sleeps 0.2 s (so that the parent is inside
    its wait), joins ``group`` with metadata, reports ``(pid,
    time.monotonic())`` of the join, and stays alive until ``release``."""
    go.wait(60)
    time.sleep(0.2)
    version = reg.join_self(ns, group, metadata={"role": "worker", "pid": os.getpid()})
    joined.put((os.getpid(), time.monotonic(), version))
    release.wait(60)
    reg.close()


def join_and_hang(url: str, ns: str, group: str, ready: Any) -> None:
    """Joins ``group`` and sleeps until killed."""
    import procreg

    reg = procreg.Registry(url)
    reg.join_self(ns, group, metadata=b"role=victim")
    ready.put(os.getpid())
    time.sleep(120)
