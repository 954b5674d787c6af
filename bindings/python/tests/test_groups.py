"""Process groups and metadata queries: join, leave, update_member_metadata,
members, list_members, wait_for_members and select, with real processes for
the waits, deaths and pickled handles."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Iterator, List

import pytest

import procreg

import _workers

ctx = multiprocessing.get_context("spawn")


@pytest.fixture
def sleepers() -> Iterator[List[int]]:
    """Three live processes other than this one, killed afterwards."""
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(3)]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()


# ---- join, leave, update ------------------------------------------------------------------


def test_join_members_leave_round_trip(reg, ns):
    me = os.getpid()
    v = reg.join_self(ns, "api", metadata={"role": "api", "port": 8080})
    assert isinstance(v, int) and v > 0
    [m] = reg.members(ns, "api")
    assert (m.namespace, m.name, m.pid, m.member) == (ns, "api", me, True)
    assert m.metadata_json() == {"role": "api", "port": 8080} and m.version == v
    assert m.alive and m.liveness is procreg.Liveness.ALIVE
    assert reg.member(ns, "api", me) == m
    assert reg.member_liveness(ns, "api", me) is procreg.Liveness.ALIVE
    assert reg.leave(ns, "api", me) is True
    assert reg.members(ns, "api") == []
    assert reg.member(ns, "api", me) is None and reg.member_liveness(ns, "api", me) is None
    assert reg.leave(ns, "api", me) is False  # not a member any more
    assert m.liveness is procreg.Liveness.DEAD  # the pid is no longer a member


def test_join_of_another_pid_and_metadata_as_register_takes_it(reg, ns, sleepers):
    a, b, c = sleepers
    assert isinstance(reg.join(ns, "g", a), int)  # metadata defaults to b""
    reg.join(ns, "g", b, "role=text")
    reg.join(ns, "g", c, bytearray(b"raw"))
    got = {e.pid: e.metadata for e in reg.members(ns, "g")}
    assert got == {a: b"", b: b"role=text", c: b"raw"}


def test_joining_twice_is_refused_naming_the_member(reg, ns):
    me = os.getpid()
    reg.join_self(ns, "api")
    before = reg.revision()
    with pytest.raises(procreg.AlreadyExists) as ei:
        reg.join_self(ns, "api", metadata=b"again")
    e = ei.value
    assert e.pid == me and e.status == 1
    msg = str(e)
    assert f"pid {me} is already a member of group 'api'" in msg and "reg.leave(" in msg
    with pytest.raises(procreg.AlreadyExists):
        reg.join(ns, "api", me)
    assert reg.revision() == before  # nothing changed
    assert reg.members(ns, "api")[0].metadata == b""


def test_a_group_and_a_unique_key_share_a_name(reg, ns):
    reg.register(ns, "api", metadata=b"unique")
    reg.join_self(ns, "api", metadata=b"member")
    e = reg.lookup(ns, "api")
    assert e is not None and e.metadata == b"unique" and e.member is False
    assert [m.metadata for m in reg.members(ns, "api")] == [b"member"]
    assert reg.unregister(ns, "api") is True
    assert len(reg.members(ns, "api")) == 1  # the member stays


def test_update_member_metadata_changes_metadata_and_version(reg, ns):
    me = os.getpid()
    v1 = reg.join_self(ns, "api", metadata=b"role=api")
    v2 = reg.update_member_metadata(ns, "api", me, {"role": "api", "ready": True})
    assert isinstance(v2, int) and v2 != v1
    [m] = reg.members(ns, "api")
    assert m.metadata_json() == {"role": "api", "ready": True} and m.version == v2
    with pytest.raises(procreg.NotFound) as ei:
        reg.update_member_metadata(ns, "api", me + 1, b"x")
    assert isinstance(ei.value, LookupError)
    assert f"pid {me + 1} is not a member of group 'api'" in str(ei.value) and "reg.join(" in str(ei.value)
    with pytest.raises(procreg.NotFound):
        reg.update_member_metadata(ns, "other", me, b"x")


def test_members_are_sorted_by_pid_and_scoped_to_their_group(reg, ns, sleepers):
    for pid in sorted(sleepers, reverse=True):
        reg.join(ns, "workers", pid)
    reg.join_self(ns, "workers2")  # a group whose name extends this one
    reg.join_self(ns, "other")
    got = reg.members(ns, "workers")
    assert [e.pid for e in got] == sorted(sleepers)
    assert all(e.member and e.name == "workers" and e.namespace == ns for e in got)
    assert [e.pid for e in reg.members(ns, "workers2")] == [os.getpid()]
    assert reg.members(ns, "absent") == []


def test_list_shows_unique_entries_only_and_list_members_shows_members(reg, ns):
    reg.register(ns, "db")
    reg.join_self(ns, "api")
    reg.join_self(ns, "cache")
    assert [(e.name, e.member) for e in reg.list(ns)] == [("db", False)]
    assert all(not e.member for e in reg.list_all())
    assert [(e.name, e.member) for e in reg.list_members(ns)] == [("api", True), ("cache", True)]
    with reg.test_namespace() as ns2:
        reg.join_self(ns2, "api")
        everywhere = [(e.namespace, e.name) for e in reg.list_members() if e.namespace in (ns, ns2)]
        assert everywhere == sorted([(ns, "api"), (ns, "cache"), (ns2, "api")])
        assert [e.namespace for e in reg.list_members(ns=ns2)] == [ns2]
    reg.clear_namespace(ns)
    assert reg.list_members(ns) == []  # clear_namespace removes members too


def test_member_entries_are_values_that_pickle_with_member(reg, ns):
    reg.join_self(ns, "api", metadata=b"m")
    reg.register(ns, "api", metadata=b"m")
    [m] = reg.members(ns, "api")
    u = reg.lookup(ns, "api")
    assert u is not None
    copy = pickle.loads(pickle.dumps(m))
    assert copy == m and copy.member is True and hash(copy) == hash(m)
    assert "member=True" in repr(m) and "member=False" in repr(u)
    # Same namespace, name, pid and metadata: only `member` tells them apart.
    handmade = procreg.Entry(ns, "api", m.pid, m.metadata, m.registered_at_ns, m.version, m.host, member=False)
    assert handmade != m
    assert procreg.Entry(ns, "api", m.pid, m.metadata, m.registered_at_ns, m.version, m.host, member=True) == m
    assert procreg.Entry("n", "k", 1, b"", datetime.now(timezone.utc), 1).member is False


# ---- select -----------------------------------------------------------------------------------


def test_select_matches_kv_and_json_metadata_of_entries_and_members(reg, ns, sleepers):
    a, b, _ = sleepers
    reg.register(ns, "api", metadata=b"role=api port=8080")
    reg.join(ns, "api", a, {"role": "api", "port": 8081, "tls": True})
    reg.join(ns, "api", b, "role=db;port=5432")
    reg.register(ns, "blob", metadata=b"\xff\xfe not text")
    hits = reg.select("role=api", ns=ns)
    assert [(e.name, e.member, e.pid) for e in hits] == [("api", False, os.getpid()), ("api", True, a)]
    assert [e.pid for e in reg.select("port=8081 tls=true", ns=ns)] == [a]  # JSON values as JSON text
    assert [e.member for e in reg.select("role=api port=8080", ns=ns)] == [False]
    assert [e.pid for e in reg.select("port=5432", ns=ns)] == [b]
    assert reg.select("role=api port=9999", ns=ns) == []
    with reg.test_namespace() as ns2:
        reg.join_self(ns2, "api", metadata=b"role=api")
        both = [(e.namespace, e.member) for e in reg.select("role=api") if e.namespace in (ns, ns2)]
        assert sorted(both) == sorted([(ns, False), (ns, True), (ns2, True)])


@pytest.mark.parametrize("query", ["", "   ", "role", "role=api port", "=api"])
def test_select_refuses_a_query_that_is_not_field_value_terms(reg, ns, query):
    with pytest.raises(procreg.InvalidArgument) as ei:
        reg.select(query, ns=ns)
    assert "field=value" in str(ei.value) and isinstance(ei.value, ValueError)


def test_select_takes_the_namespace_by_keyword_only(reg, ns):
    with pytest.raises(TypeError):
        reg.select(ns, "role=api")  # the namespace first, as elsewhere: refused


# ---- wait_for_members --------------------------------------------------------------------------


def test_wait_for_members_returns_at_once_when_enough_are_live(reg, ns, sleepers):
    reg.join_self(ns, "g")
    reg.join(ns, "g", sleepers[0])
    t = time.monotonic()
    got = reg.wait_for_members(ns, "g", 2, timeout=5)
    assert time.monotonic() - t < 1.0
    assert [e.pid for e in got] == sorted([os.getpid(), sleepers[0]])
    assert all(e.member for e in got)
    assert reg.wait_for_members(ns, "empty", 0, timeout=0) == []  # n = 0: at once


def test_wait_for_members_times_out_with_timeout_error(reg, ns):
    reg.join_self(ns, "g")
    t = time.monotonic()
    with pytest.raises(procreg.Timeout) as ei:
        reg.wait_for_members(ns, "g", 2, timeout=0.3)
    waited = time.monotonic() - t
    assert 0.3 <= waited < 2.0
    e = ei.value
    assert isinstance(e, TimeoutError) and e.status == 14
    assert "group 'g'" in str(e) and "2 live members" in str(e) and "it has 1" in str(e)
    with pytest.raises(procreg.Timeout):
        reg.wait_for_members(ns, "g", 2, timeout=0)


def test_wait_for_members_releases_the_gil(reg, ns):
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
            reg.wait_for_members(ns, "g", 1, timeout=0.3)
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 20  # the other thread ran during the wait


def test_wait_for_members_is_woken_by_a_join_in_another_process_through_a_pickled_registry(reg, ns):
    """The child gets this Registry pickled (spawn) and joins through it."""
    reg.join_self(ns, "pool")
    go, joined, release = ctx.Event(), ctx.Queue(), ctx.Event()
    p = ctx.Process(target=_workers.join_when_told, args=(reg, ns, "pool", go, joined, release))
    p.start()
    try:
        assert len(reg.members(ns, "pool")) == 1
        go.set()
        got = reg.wait_for_members(ns, "pool", 2, timeout=30)
        woke = time.monotonic()
        child_pid, joined_at, version = joined.get(timeout=30)
        assert child_pid == p.pid
        assert [e.pid for e in got] == sorted([os.getpid(), child_pid])
        child = next(e for e in got if e.pid == child_pid)
        assert child.metadata_json() == {"role": "worker", "pid": child_pid} and child.version == version
        assert child.alive
        print(f"wait_for_members woke {(woke - joined_at) * 1e3:.2f} ms after the other process joined")
    finally:
        release.set()
        p.join(30)
    assert p.exitcode == 0
    # The child exited without leaving: its member is dead until reclaimed.
    assert child.liveness is procreg.Liveness.DEAD
    assert [e.pid for e in reg.wait_for_members(ns, "pool", 1, timeout=5)] == [os.getpid()]


def test_a_sigkilled_member_is_gone_after_sweep(url, reg, ns):
    ready = ctx.Queue()
    p = ctx.Process(target=_workers.join_and_hang, args=(url, ns, "victims", ready))
    p.start()
    victim = ready.get(timeout=30)
    [m] = reg.members(ns, "victims")
    assert m.pid == victim and m.alive
    os.kill(victim, signal.SIGKILL)
    p.join(30)
    # Listed until reclaimed (as list() shows a dead entry), but not counted
    # by wait_for_members, and judged dead.
    assert [e.pid for e in reg.members(ns, "victims")] == [victim]
    assert m.liveness is procreg.Liveness.DEAD
    assert reg.member_liveness(ns, "victims", victim) is procreg.Liveness.DEAD
    assert reg.member(ns, "victims", victim) == m  # reading changes nothing
    with pytest.raises(procreg.Timeout, match="it has 0"):
        reg.wait_for_members(ns, "victims", 1, timeout=0.2)
    assert reg.sweep() >= 1
    assert reg.members(ns, "victims") == []
    assert reg.list_members(ns) == []
    assert reg.member_liveness(ns, "victims", victim) is None


# ---- watching ------------------------------------------------------------------------------------


def test_a_watcher_sees_joins_updates_and_leaves_as_member_events(reg, ns):
    me = os.getpid()
    with reg.watch(ns) as w:
        reg.register(ns, "api")
        reg.join_self(ns, "api")
        reg.update_member_metadata(ns, "api", me, b"x")
        reg.leave(ns, "api", me)
        events = [w.next(timeout=5) for _ in range(4)]
    got = [(ev.kind, ev.name, ev.pid, ev.member) for ev in events]
    assert got == [
        (procreg.EventKind.REGISTERED, "api", me, False),
        (procreg.EventKind.REGISTERED, "api", me, True),
        (procreg.EventKind.UPDATED, "api", me, True),
        (procreg.EventKind.UNREGISTERED, "api", me, True),
    ]
    assert all(ev.namespace == ns for ev in events)


# ---- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda r, ns: r.join(ns, "g", None),
        lambda r, ns: r.join(ns, "g", "123"),
        lambda r, ns: r.join(ns, "g", True),
        lambda r, ns: r.join(ns, "g", 1.5),
        lambda r, ns: r.join(ns, 5, os.getpid()),
        lambda r, ns: r.join(b"ns", "g", os.getpid()),
        lambda r, ns: r.join(ns, "g", os.getpid(), metadata=5),
        lambda r, ns: r.join(ns, "g", os.getpid(), metadata=None),
        lambda r, ns: r.join_self(ns, None),
        lambda r, ns: r.join_self(ns, "g", metadata=["a"]),
        lambda r, ns: r.leave(ns, "g", None),
        lambda r, ns: r.leave(ns, "g", "1"),
        lambda r, ns: r.update_member_metadata(ns, "g", os.getpid(), 3.0),
        lambda r, ns: r.update_member_metadata(ns, "g", None, b""),
        lambda r, ns: r.members(ns, 1),
        lambda r, ns: r.member(ns, "g", None),
        lambda r, ns: r.member_liveness(ns, 1, os.getpid()),
        lambda r, ns: r.list_members(7),
        lambda r, ns: r.select(b"role=api"),
        lambda r, ns: r.select("role=api", ns=1),
        lambda r, ns: r.wait_for_members(ns, "g", "1", 0),
        lambda r, ns: r.wait_for_members(ns, "g", True, 0),
        lambda r, ns: r.wait_for_members(ns, "g", 1, "0"),
    ],
)
def test_bad_python_types_raise_type_error(reg, ns, call):
    before = reg.revision()
    with pytest.raises(TypeError):
        call(reg, ns)
    assert reg.revision() == before  # nothing reached the registry
    assert reg.list_members(ns) == []


def test_bad_values_raise_the_registry_errors(reg, ns):
    with pytest.raises(procreg.InvalidArgument, match="pid 0"):
        reg.join(ns, "g", 0)
    with pytest.raises(procreg.InvalidArgument):
        reg.join(ns, "g", -1)
    with pytest.raises(procreg.InvalidArgument):
        reg.join(ns, "g", 2**32)
    with pytest.raises(procreg.InvalidKey, match="1 to 117 bytes"):
        reg.join_self(ns, "")
    with pytest.raises(procreg.InvalidKey, match="use a shorter group name"):
        reg.join_self(ns, "g" * 118)  # max_name_len 128 less 11
    reg.join_self(ns, "g" * 117)
    with pytest.raises(procreg.InvalidKey):
        reg.join_self(ns, "a\0b")
    with pytest.raises(procreg.InvalidUtf8):
        reg.join_self(ns, "\ud800")
    with pytest.raises(procreg.InvalidUtf8):
        reg.select("role=\ud800", ns=ns)
    with pytest.raises(procreg.MetadataTooLarge):
        reg.join_self(ns, "big", metadata=b"x" * 10_000)
    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(procreg.ProcessNotAlive):
        reg.join(ns, "g", gone.pid)
    with pytest.raises(procreg.InvalidArgument, match="n=-1"):
        reg.wait_for_members(ns, "g", -1, timeout=0)
    with pytest.raises(procreg.InvalidArgument):
        reg.wait_for_members(ns, "g", 1, timeout=-1)
    with pytest.raises(procreg.InvalidArgument):
        reg.wait_for_members(ns, "g", 1, timeout=float("nan"))
    assert reg.leave(ns, "g", 0) is False
    assert [e.name for e in reg.list_members(ns)] == ["g" * 117]


def test_group_calls_after_close_raise_registry_closed(url, ns):
    r = procreg.Registry(url)
    r.close()
    for call in (
        lambda: r.join_self(ns, "g"),
        lambda: r.join(ns, "g", os.getpid()),
        lambda: r.leave(ns, "g", os.getpid()),
        lambda: r.update_member_metadata(ns, "g", os.getpid(), b""),
        lambda: r.members(ns, "g"),
        lambda: r.member(ns, "g", os.getpid()),
        lambda: r.member_liveness(ns, "g", os.getpid()),
        lambda: r.list_members(),
        lambda: r.select("a=b"),
        lambda: r.wait_for_members(ns, "g", 1, timeout=1),
    ):
        with pytest.raises(procreg.RegistryClosed):
            call()
