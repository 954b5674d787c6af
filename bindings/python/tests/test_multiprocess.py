"""Real processes (multiprocessing, spawn start method) sharing one segment."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest

import procreg

import _workers

ctx = multiprocessing.get_context("spawn")


def _join_all(procs) -> None:
    for p in procs:
        p.join(30)
        if p.is_alive():  # pragma: no cover - only on failure
            p.kill()
            p.join()


def test_eight_workers_register_200_each_and_parent_sees_all_1600(url):
    with procreg.Registry(url) as reg, reg.test_namespace("mp") as ns:
        done, release = ctx.Queue(), ctx.Event()
        procs = [ctx.Process(target=_workers.register_many, args=(url, ns, w, 200, done, release)) for w in range(8)]
        for p in procs:
            p.start()
        try:
            pids = dict(done.get(timeout=60) for _ in procs)
            entries = reg.list(ns)
            assert len(entries) == 1600
            assert {e.name for e in entries} == {f"w{w}-svc{i:03d}" for w in range(8) for i in range(200)}
            for e in entries:
                w = int(e.name[1 : e.name.index("-")])
                assert e.pid == pids[w]
                assert e.metadata_json() == {"worker": w, "i": int(e.name[-3:])}
            # The owners are alive: checked lookups see them.
            assert reg.lookup_checked(ns, "w7-svc199").pid == pids[7]
            assert reg.lookup_pid(ns, "w0-svc000") == pids[0]
        finally:
            release.set()
            _join_all(procs)
        assert all(p.exitcode == 0 for p in procs)


def test_sigkilled_worker_entries_are_reclaimed_by_sweep(url):
    with procreg.Registry(url) as reg, reg.test_namespace("kill") as ns:
        reg.register(ns, "survivor")  # owned by this (live) process
        ready = ctx.Queue()
        p = ctx.Process(target=_workers.register_and_hang, args=(url, ns, 50, ready))
        p.start()
        try:
            pid = ready.get(timeout=60)
            assert reg.lookup_checked(ns, "victim-0").pid == pid
            assert len(reg.list(ns)) == 51
        finally:
            os.kill(p.pid, signal.SIGKILL)
            p.join(30)
        assert p.exitcode == -signal.SIGKILL
        assert reg.lookup_pid(ns, "victim-0") == pid  # still there until reclaimed
        assert reg.health().dead_owners >= 50
        assert reg.sweep() >= 50
        assert [e.name for e in reg.list(ns)] == ["survivor"]
        assert reg.lookup(ns, "victim-7") is None


def test_two_processes_racing_for_500_keys_get_one_winner_each(url):
    with procreg.Registry(url) as reg, reg.test_namespace("race") as ns:
        barrier, results, release = ctx.Barrier(2), ctx.Queue(), ctx.Event()
        procs = [ctx.Process(target=_workers.race, args=(url, ns, 500, barrier, results, release)) for _ in range(2)]
        for p in procs:
            p.start()
        try:
            (pid_a, won_a, lost_a), (pid_b, won_b, lost_b) = (results.get(timeout=60) for _ in procs)
            assert not set(won_a) & set(won_b)
            assert set(won_a) | set(won_b) == set(range(500))
            assert len(won_a) + len(won_b) == 500
            # Every refusal named the other process as the owner.
            assert set(lost_a) <= {pid_b} and set(lost_b) <= {pid_a}
            assert len(lost_a) == len(won_b) and len(lost_b) == len(won_a)
            for k in range(500):
                assert reg.lookup_pid(ns, f"key-{k}") == (pid_a if k in set(won_a) else pid_b)
        finally:
            release.set()
            _join_all(procs)
        assert all(p.exitcode == 0 for p in procs)
