"""Revisions, wait_for, watchers, leases, the reaper and the per-process counters."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

import procreg
from procreg import _errors

import _workers
from conftest import unique_url

ctx = multiprocessing.get_context("spawn")


@pytest.fixture
def fresh():
    """A registry of its own, for tests that assert registry-wide counts."""
    u = unique_url("fresh")
    with procreg.Registry(u, capacity=256, create="create") as r:
        yield r
    procreg.destroy(u)


# ---- revision ----------------------------------------------------------------------


def test_revision_grows_by_one_per_committed_change(fresh):
    r0 = fresh.revision()
    assert isinstance(r0, int)
    fresh.register("n", "k")
    fresh.update_metadata("n", "k", b"m")
    fresh.unregister("n", "k")
    assert fresh.revision() == r0 + 3
    fresh.unregister("n", "k")  # not found: no change
    assert fresh.revision() == r0 + 3


# ---- wait_for -------------------------------------------------------------------------


def test_wait_for_returns_at_once_when_registered(reg, ns):
    reg.register(ns, "here", metadata={"a": 1})
    t = time.monotonic()
    e = reg.wait_for(ns, "here", timeout=5)
    assert time.monotonic() - t < 0.5
    assert (e.namespace, e.name, e.pid, e.metadata_json()) == (ns, "here", os.getpid(), {"a": 1})


def test_wait_for_times_out_with_timeout_error(reg, ns):
    t = time.monotonic()
    with pytest.raises(procreg.Timeout, match="not registered") as ei:
        reg.wait_for(ns, "never", timeout=0.3)
    waited = time.monotonic() - t
    assert 0.3 <= waited < 2.0
    assert ei.value.status == 14
    with pytest.raises(procreg.Timeout):
        reg.wait_for(ns, "never", timeout=0)


def test_wait_for_is_woken_by_a_registration_in_another_process(url, reg, ns):
    go, registered, release = ctx.Event(), ctx.Queue(), ctx.Event()
    p = ctx.Process(target=_workers.register_when_told, args=(url, ns, "late", go, registered, release))
    p.start()
    try:
        assert reg.lookup(ns, "late") is None
        go.set()
        e = reg.wait_for(ns, "late", timeout=30)
        woke = time.monotonic()
        child_pid, registered_at = registered.get(timeout=30)
        assert e.pid == child_pid == p.pid and e.metadata == b"from-child"
        latency = woke - registered_at
        print(f"wait_for woke {latency * 1e3:.2f} ms after the other process registered")
        assert latency < 0.5
    finally:
        release.set()
        p.join(30)
    assert p.exitcode == 0


def test_wait_for_releases_the_gil(reg, ns):
    ticks = []
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    try:
        with pytest.raises(procreg.Timeout):
            reg.wait_for(ns, "never", timeout=0.3)
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 20  # the other thread ran during the wait


def test_wait_for_rejects_bad_timeouts(reg, ns):
    with pytest.raises(procreg.InvalidArgument):
        reg.wait_for(ns, "k", timeout=-1)
    with pytest.raises(procreg.InvalidArgument):
        reg.wait_for(ns, "k", timeout=float("nan"))
    with pytest.raises(TypeError):
        reg.wait_for(ns, "k", timeout="1")


# ---- watch ---------------------------------------------------------------------------


def test_watcher_sees_registered_updated_unregistered_in_revision_order(reg, ns):
    with reg.watch(ns) as w:
        before = datetime.now(timezone.utc) - timedelta(seconds=1)
        reg.register(ns, "svc")
        reg.register(ns + "-other", "svc")  # another namespace: filtered out
        reg.update_metadata(ns, "svc", b"v2")
        reg.unregister(ns, "svc")
        reg.unregister(ns + "-other", "svc")
        events = [w.next(timeout=5) for _ in range(3)]
        with pytest.raises(procreg.Timeout):
            w.next(timeout=0.05)
    assert [e.kind for e in events] == [
        procreg.EventKind.REGISTERED,
        procreg.EventKind.UPDATED,
        procreg.EventKind.UNREGISTERED,
    ]
    revs = [e.revision for e in events]
    assert revs == sorted(revs) and len(set(revs)) == 3 and revs[0] > w.from_revision
    for e in events:
        assert isinstance(e, procreg.Event)
        assert (e.namespace, e.name, e.pid) == (ns, "svc", os.getpid())
        assert e.at.tzinfo is not None and before <= e.at <= datetime.now(timezone.utc)
    assert events[1].version > events[0].version
    assert w.closed
    with pytest.raises(procreg.RegistryClosed):
        w.next(0)


def test_watch_of_every_namespace_starts_now_and_iterates(reg, ns):
    reg.register(ns, "before")  # before the watcher: not seen
    w = reg.watch()
    assert w.from_revision == reg.revision()
    reg.register(ns, "a")
    reg.register(ns + "-x", "b")
    seen = []
    for e in w:
        if e.namespace in (ns, ns + "-x"):
            seen.append((e.namespace, e.name, e.kind))
        if len(seen) == 2:
            break
    w.close()
    assert seen == [(ns, "a", procreg.EventKind.REGISTERED), (ns + "-x", "b", procreg.EventKind.REGISTERED)]
    assert list(w) == []  # a closed watcher's iteration ends
    reg.clear_namespace(ns + "-x")


def test_watcher_close_from_another_thread_ends_iteration(reg, ns):
    w = reg.watch(ns)
    got = []
    t = threading.Thread(target=lambda: got.extend(w))
    t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    w.close()
    t.join(5)
    assert not t.is_alive() and got == []
    assert time.monotonic() - t0 < 1.0


def test_watcher_outlives_closing_its_registry(url, ns):
    r = procreg.Registry(url)
    w = r.watch(ns)
    r.close()  # the watcher keeps the C handle alive: no use-after-free
    with procreg.Registry(url) as other:
        other.register(ns, "after-close")
        e = w.next(timeout=5)
        assert (e.name, e.kind) == ("after-close", procreg.EventKind.REGISTERED)
    w.close()
    w.close()  # idempotent


def test_watcher_is_used_by_one_thread_at_a_time(reg, ns):
    with reg.watch(ns) as w:
        t = threading.Thread(target=lambda: pytest.raises(procreg.Timeout, w.next, 0.5))
        t.start()
        time.sleep(0.1)
        with pytest.raises(RuntimeError, match="one thread"):
            w.next(0)
        t.join()


def test_lagged_reports_missed_as_none():
    e = _errors.error_for(15, "lagged")
    assert isinstance(e, procreg.Lagged) and e.missed is None


def test_event_kind_numbers_match_the_header():
    root = __import__("conftest").repo_root()
    if root is None:
        pytest.skip("no procreg checkout")
    import re

    header = (root / "include" / "procreg.h").read_text()
    kinds = dict(re.findall(r"PROCREG_EVENT_(\w+) = (\d+)", header))
    assert {k: int(v) for k, v in kinds.items()} == {k.name: k.value for k in procreg.EventKind}


# ---- leases ---------------------------------------------------------------------------


def test_lease_without_keepalive_expires(fresh):
    fresh.register_with_lease("l", "k", ttl=0.1, metadata=b"x")
    e = fresh.lookup_checked("l", "k")
    assert e is not None and e.pid == os.getpid()
    time.sleep(0.3)
    assert fresh.health().expired_leases == 1
    assert fresh.lookup_checked("l", "k") is None  # hidden, and reclaimed on the way
    assert fresh.health().expired_leases == 0
    with pytest.raises(procreg.NotFound):
        fresh.keepalive("l", "k")


def test_keepalive_keeps_a_lease_alive(fresh):
    fresh.register_with_lease("l", "k", ttl=0.2)
    end = time.monotonic() + 0.6
    while time.monotonic() < end:
        fresh.keepalive("l", "k")
        time.sleep(0.04)
    assert fresh.lookup_checked("l", "k") is not None
    assert fresh.health().expired_leases == 0


def test_lease_for_another_pid_and_bad_arguments(fresh):
    fresh.register_with_lease("l", "other", ttl=5, pid=1)
    assert fresh.lookup_pid("l", "other") == 1
    fresh.register("l", "plain")
    with pytest.raises(procreg.InvalidArgument):
        fresh.keepalive("l", "plain")  # registered without a lease
    with pytest.raises(procreg.InvalidArgument):
        fresh.register_with_lease("l", "zero", ttl=0)
    with pytest.raises(procreg.InvalidArgument):
        fresh.register_with_lease("l", "huge", ttl=10**9)
    with pytest.raises(TypeError):
        fresh.register_with_lease("l", "t", ttl=None)


# ---- reaper ---------------------------------------------------------------------------


def test_reaper_reclaims_a_sigkilled_childs_entry_quickly(url, reg, ns):
    ready = ctx.Queue()
    p = ctx.Process(target=_workers.register_and_hang, args=(url, ns, 3, ready))
    p.start()
    try:
        pid = ready.get(timeout=60)
        assert reg.lookup_pid(ns, "victim-0") == pid
        # A long interval: what is measured is the pidfd path, not the periodic sweep.
        with reg.spawn_reaper(interval=30) as reaper:
            time.sleep(0.1)
            t0 = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            while any(reg.lookup_pid(ns, f"victim-{i}") is not None for i in range(3)):
                assert time.monotonic() - t0 < 5, "reaper did not reclaim within 5 s"
                time.sleep(0.001)
            took = time.monotonic() - t0
            print(f"reaper reclaimed the SIGKILLed child's entries {took * 1e3:.1f} ms after the kill")
            assert took < 1.0
            while reaper.reclaimed < 3 and time.monotonic() - t0 < 5:
                time.sleep(0.005)
            assert reaper.reclaimed >= 3 and reaper.running
        assert not reaper.running and reaper.reclaimed >= 3
        reaper.stop()  # idempotent
    finally:
        p.join(30)
    assert p.exitcode == -signal.SIGKILL


def test_reaper_of_anonymous_mem_works_and_bad_interval_is_refused(reg):
    # The reaper holds the registry itself (it no longer reopens the url), so
    # an anonymous "mem:" registry can be reaped too.
    with procreg.Registry("mem:") as m:
        with m.spawn_reaper(1.0) as reaper:
            assert reaper.running
    with pytest.raises(procreg.InvalidArgument):
        reg.spawn_reaper(0)


def test_reaper_keeps_running_after_its_registry_closes(url, ns):
    r = procreg.Registry(url)
    reaper = r.spawn_reaper(interval=30)
    r.close()
    assert reaper.running and reaper.reclaimed >= 0
    reaper.stop()
    assert not reaper.running


# ---- per-process counters ------------------------------------------------------------


def test_stats_process_counters_grow(fresh):
    a = fresh.stats().process
    assert isinstance(a, procreg.ProcessCounters)
    fresh.register("c", "k")
    assert fresh.lookup("c", "k") is not None
    assert fresh.lookup_pid("c", "k") == os.getpid()
    assert fresh.lookup("c", "missing") is None
    fresh.update_metadata("c", "k", b"m")
    fresh.unregister("c", "k")
    fresh.register_with_lease("c", "lease", ttl=0.05)
    time.sleep(0.15)
    assert fresh.lookup_checked("c", "lease") is None  # reclaims the expired lease
    b = fresh.stats().process
    assert b.registers >= a.registers + 2
    assert b.lookup_hits >= a.lookup_hits + 2
    assert b.lookup_misses >= a.lookup_misses + 2
    assert b.updates >= a.updates + 1
    assert b.unregisters >= a.unregisters + 1
    assert b.reclaimed >= a.reclaimed + 1
    assert b.busy >= a.busy
