"""Unit tests of every Registry method, the value types and every exception class."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest

import procreg
from procreg import _errors

from conftest import unique_url


# ---- opening and closing ---------------------------------------------------------


def test_open_with_limits_creates_registry_with_those_limits():
    u = unique_url("limits")
    try:
        with procreg.Registry(
            u, capacity=64, max_name_len=40, max_metadata_len=100, mode=0o640, create="create"
        ) as r:
            s = r.stats()
            assert (s.backend, s.capacity, s.max_name_len, s.max_metadata_len) == ("shm", 64, 40, 100)
            assert os.stat(f"/dev/shm/procreg.{u[4:]}").st_mode & 0o777 == 0o640
        with procreg.Registry(u, create="open") as r2:
            assert r2.stats().capacity == 64
    finally:
        procreg.destroy(u)


def test_context_manager_closes_and_close_is_idempotent(url):
    with procreg.Registry(url) as r:
        assert not r.closed
    assert r.closed
    r.close()
    r.close()
    assert "closed" in repr(r)


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.register("a", "b"),
        lambda r: r.lookup("a", "b"),
        lambda r: r.lookup_pid("a", "b"),
        lambda r: r.lookup_checked("a", "b"),
        lambda r: r.lookup_metadata("a", "b"),
        lambda r: r.unregister("a", "b"),
        lambda r: r.update_metadata("a", "b", b""),
        lambda r: r.list("a"),
        lambda r: r.list_all(),
        lambda r: r.namespaces(),
        lambda r: r.clear_namespace("a"),
        lambda r: r.sweep(),
        lambda r: r.stats(),
        lambda r: r.health(),
        lambda r: r.revision(),
        lambda r: r.wait_for("a", "b", 0),
        lambda r: r.register_with_lease("a", "b", 1.0),
        lambda r: r.keepalive("a", "b"),
        lambda r: r.watch(),
        lambda r: r.spawn_reaper(1.0),
        lambda r: r.__enter__(),
    ],
)
def test_use_after_close_raises_registry_closed(url, call):
    r = procreg.Registry(url)
    r.close()
    with pytest.raises(procreg.RegistryClosed, match="closed"):
        call(r)


def test_close_while_other_threads_look_up_never_crashes(url):
    with procreg.Registry(url) as setup:
        setup.register("close-race", "k")
    for _ in range(20):
        r = procreg.Registry(url)
        stop = threading.Event()
        errors: list = []

        def reader() -> None:
            while not stop.is_set():
                try:
                    assert r.lookup_pid("close-race", "k") == os.getpid()
                except procreg.RegistryClosed:
                    return
                except BaseException as e:  # pragma: no cover - reported below
                    errors.append(e)
                    return

        ts = [threading.Thread(target=reader) for _ in range(3)]
        for t in ts:
            t.start()
        r.close()
        stop.set()
        for t in ts:
            t.join()
        assert not errors
    with procreg.Registry(url) as r:
        r.clear_namespace("close-race")


def test_mem_registry_is_private_to_the_process():
    with procreg.Registry("mem:") as r:
        r.register("n", "x")
        assert r.stats().backend == "mem"
        assert r.health().liveness_mode == procreg.LivenessMode.IN_PROCESS


# ---- register / lookup -------------------------------------------------------------


def test_register_self_then_lookup_returns_entry(reg, ns):
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    assert reg.register(ns, "api", metadata=b"\x00\x01bin") is None
    e = reg.lookup(ns, "api")
    assert isinstance(e, procreg.Entry)
    assert (e.namespace, e.name, e.pid, e.metadata) == (ns, "api", os.getpid(), b"\x00\x01bin")
    assert e.registered_at.tzinfo is not None and e.registered_at.utcoffset() == timedelta(0)
    assert before <= e.registered_at <= datetime.now(timezone.utc) + timedelta(seconds=1)
    assert isinstance(e.version, int)
    with pytest.raises(Exception):
        e.pid = 1  # type: ignore[misc]  # frozen


def test_register_for_other_pid(reg, ns):
    reg.register(ns, "init", pid=1)
    assert reg.lookup_pid(ns, "init") == 1


def test_metadata_accepts_str_dict_and_bytes_like(reg, ns):
    reg.register(ns, "s", metadata="héllo")
    reg.register(ns, "d", metadata={"port": 8080, "tags": ["a", "b"]})
    reg.register(ns, "ba", metadata=bytearray(b"xy"))
    reg.register(ns, "mv", metadata=memoryview(b"zz"))
    assert reg.lookup(ns, "s").metadata == "héllo".encode()
    assert reg.lookup(ns, "s").metadata_text() == "héllo"
    d = reg.lookup(ns, "d")
    assert d.metadata == b'{"port":8080,"tags":["a","b"]}'
    assert d.metadata_json() == {"port": 8080, "tags": ["a", "b"]}
    assert reg.lookup(ns, "ba").metadata == b"xy"
    assert reg.lookup(ns, "mv").metadata == b"zz"


def test_lookup_of_missing_key_is_none(reg, ns):
    assert reg.lookup(ns, "missing") is None
    assert reg.lookup_pid(ns, "missing") is None
    assert reg.lookup_checked(ns, "missing") is None
    assert reg.lookup_metadata(ns, "missing") is None


def test_lookup_pid_and_checked(reg, ns):
    reg.register(ns, "k", metadata=b"m")
    assert reg.lookup_pid(ns, "k") == os.getpid()
    assert reg.lookup_checked(ns, "k") == reg.lookup(ns, "k")
    assert reg.lookup_metadata(ns, "k") == b"m"


def test_lookup_checked_hides_and_reclaims_dead_owner(reg, ns):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        reg.register(ns, "dead", pid=child.pid)
    finally:
        child.kill()
        child.wait()
    assert reg.lookup_pid(ns, "dead") == child.pid  # unchecked: still there
    assert reg.lookup_checked(ns, "dead") is None
    assert reg.lookup(ns, "dead") is None  # reclaimed on the way


def test_register_of_live_key_is_refused_with_owner_pid(reg, ns):
    reg.register(ns, "k", pid=1)
    with pytest.raises(procreg.AlreadyExists) as ei:
        reg.register(ns, "k")
    assert ei.value.pid == 1
    assert ei.value.status == 1
    assert "already registered by pid 1" in str(ei.value)


def test_unregister_returns_whether_it_removed(reg, ns):
    reg.register(ns, "k")
    assert reg.unregister(ns, "k") is True
    assert reg.unregister(ns, "k") is False
    assert reg.lookup(ns, "k") is None


def test_update_metadata_changes_metadata_and_version(reg, ns):
    reg.register(ns, "k", metadata=b"v1")
    v1 = reg.lookup(ns, "k").version
    assert reg.update_metadata(ns, "k", {"v": 2}) is None
    e = reg.lookup(ns, "k")
    assert e.metadata_json() == {"v": 2}
    assert e.version != v1
    with pytest.raises(procreg.NotFound, match="not registered"):
        reg.update_metadata(ns, "nope", b"")


def test_list_is_sorted_by_name_and_scoped_to_namespace(reg, ns):
    for n in ["c", "a", "b"]:
        reg.register(ns, n, metadata=n)
    with reg.test_namespace() as other:
        reg.register(other, "z")
        got = reg.list(ns)
        assert [e.name for e in got] == ["a", "b", "c"]
        assert [e.metadata for e in got] == [b"a", b"b", b"c"]
        assert all(e.namespace == ns and e.pid == os.getpid() for e in got)
        assert got[0] == reg.lookup(ns, "a")
        assert {ns, other} <= set(reg.namespaces())
        assert reg.namespaces() == sorted(reg.namespaces())
        all_keys = {(e.namespace, e.name) for e in reg.list_all()}
        assert {(ns, "a"), (other, "z")} <= all_keys
    assert reg.list("empty-ns-xyz") == []


def test_clear_namespace_returns_count(reg, ns):
    for i in range(5):
        reg.register(ns, f"k{i}")
    assert reg.clear_namespace(ns) == 5
    assert reg.list(ns) == []
    assert reg.clear_namespace(ns) == 0


def test_test_namespace_is_unique_and_cleared_on_exit(reg):
    with reg.test_namespace() as a, reg.test_namespace() as b:
        assert a != b
        reg.register(a, "k")
        reg.register(b, "k")
    assert reg.list(a) == [] and reg.list(b) == []


def test_sweep_reclaims_dead_owner(reg, ns):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        reg.register(ns, "a", pid=child.pid)
        reg.register(ns, "b", pid=child.pid)
    finally:
        child.kill()
        child.wait()
    assert reg.health().dead_owners >= 2
    assert reg.sweep() >= 2
    assert reg.list(ns) == []
    assert reg.sweep() == 0


def test_stats_and_health(reg, ns):
    reg.register(ns, "k")
    s = reg.stats()
    assert isinstance(s, procreg.Stats)
    assert s.backend == "shm" and s.capacity == 8192 and s.live >= 1
    assert s.registers >= 1 and s.changes >= 1
    assert s.created_at.tzinfo is not None
    assert (s.max_namespace_len, s.max_name_len, s.max_metadata_len) == (64, 128, 256)
    h = reg.health()
    assert isinstance(h, procreg.Health)
    assert h.header_valid and h.live >= 1 and h.alive_owners >= 1
    assert h.liveness_mode == procreg.LivenessMode.PROC_START_TIME
    assert h.healthy == (h.problem_count == 0)
    assert isinstance(h.problems, list) and len(h.problems) == h.problem_count
    assert h.expired_leases >= 0


def test_health_reports_problems_of_a_full_registry():
    with procreg.Registry("mem:", capacity=16) as r:
        for i in range(16):
            r.register("n", f"k{i}")
        h = r.health()
        assert not h.healthy and h.problem_count >= 1
        assert isinstance(h.problems, list) and len(h.problems) == h.problem_count
        assert all(p and "\n" not in p for p in h.problems)
        assert any("load factor" in p for p in h.problems)


def test_big_metadata_is_never_lost():
    size = procreg.PROCREG_METADATA_CAPACITY * 2 + 5
    blob = bytes(range(256)) * (size // 256) + b"tail!"
    with procreg.Registry("mem:", max_metadata_len=size) as r:
        r.register("n", "big", metadata=blob)
        r.register("n", "small", metadata=b"s")
        assert r.lookup_metadata("n", "big") == blob
        e = r.lookup("n", "big")
        assert e is not None and e.metadata == blob and e.pid == os.getpid()
        assert r.lookup_checked("n", "big") == e
        assert [x.metadata for x in r.list("n")] == [blob, b"s"]
        assert r.lookup("n", "small").metadata == b"s"


def test_long_metadata_is_read_whole_and_follows_updates():
    blob = os.urandom(100_000)
    with procreg.Registry("mem:", max_metadata_len=len(blob) + 10) as r:
        r.register("n", "big", metadata=blob)
        assert r.lookup("n", "big").metadata == blob
        assert r.lookup_checked("n", "big").metadata == blob
        assert r.wait_for("n", "big", timeout=1).metadata == blob
        assert r.lookup_metadata("n", "big") == blob
        # metadata that grows between lookups on one thread
        r.update_metadata("n", "big", blob + blob[:10])
        assert r.lookup("n", "big").metadata == blob + blob[:10]


def test_entries_and_events_name_the_owners_host(reg, ns):
    import socket

    host = socket.gethostname()
    w = reg.watch(ns)
    try:
        reg.register(ns, "h", metadata=b"m")
        assert reg.lookup(ns, "h").host == host
        assert reg.lookup_checked(ns, "h").host == host
        assert reg.wait_for(ns, "h", timeout=1).host == host
        assert [e.host for e in reg.list(ns)] == [host]
        ev = w.next(timeout=2)
        assert ev.kind == procreg.EventKind.REGISTERED and ev.host == host
    finally:
        w.close()


def test_non_ascii_keys_round_trip(reg, ns):
    reg.register(ns, "δοκιμή-名前")
    assert reg.lookup(ns, "δοκιμή-名前").name == "δοκιμή-名前"
    assert [e.name for e in reg.list(ns)] == ["δοκιμή-名前"]


def test_lookups_from_many_threads_agree(reg, ns):
    for i in range(50):
        reg.register(ns, f"k{i}", pid=1, metadata=str(i))
    bad: list = []

    def work() -> None:
        for _ in range(20):
            for i in range(50):
                if reg.lookup_pid(ns, f"k{i}") != 1 or reg.lookup(ns, f"k{i}").metadata != str(i).encode():
                    bad.append(i)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert bad == []


# ---- bad Python types: TypeError before anything is written ----------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.register(1, "x"),
        lambda r: r.register("x", None),
        lambda r: r.register(b"x", "y"),
        lambda r: r.register("x", "y", metadata=5),
        lambda r: r.register("x", "y", metadata=None),
        lambda r: r.register("x", "y", metadata=["a"]),
        lambda r: r.register("x", "y", pid="123"),
        lambda r: r.register("x", "y", pid=True),
        lambda r: r.register("x", "y", pid=1.5),
        lambda r: r.lookup(["x"], "y"),
        lambda r: r.lookup_pid("x", 3),
        lambda r: r.lookup_pid({}, "y"),
        lambda r: r.lookup_checked("x", b"y"),
        lambda r: r.unregister(None, "y"),
        lambda r: r.update_metadata("x", "y", 3.0),
        lambda r: r.list(7),
        lambda r: r.clear_namespace(b"ns"),
        lambda r: r.test_namespace(3).__enter__(),
    ],
)
def test_bad_python_types_raise_type_error(reg, call):
    before = reg.revision()
    with pytest.raises(TypeError):
        call(reg)
    # Nothing reached the registry: no change was committed.
    assert reg.revision() == before
    assert reg.list("x") == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": 5},
        {"capacity": "16"},
        {"capacity": True},
        {"max_name_len": 1.0},
        {"max_metadata_len": b"1"},
        {"mode": "0600"},
        {"create": 1},
    ],
)
def test_bad_option_types_raise_type_error(kwargs):
    with pytest.raises(TypeError):
        procreg.Registry(**kwargs)


def test_bad_option_values_raise_invalid_argument():
    with pytest.raises(procreg.InvalidArgument):
        procreg.Registry("mem:", create="sometimes")
    with pytest.raises(procreg.InvalidArgument):
        procreg.Registry("mem:", capacity=-1)
    with pytest.raises(procreg.InvalidArgument):
        procreg.Registry("mem:", capacity=3)  # the library's check
    with pytest.raises(ValueError):  # InvalidArgument is also a ValueError
        procreg.Registry("mem:", capacity=0)


# ---- every exception class ---------------------------------------------------------------


def _raises(cls, fn):
    with pytest.raises(cls) as ei:
        fn()
    e = ei.value
    assert isinstance(e, procreg.RegistryError)
    assert e.status == cls.STATUS
    assert str(e) and e.message == str(e)
    return e


def test_invalid_key(reg, ns):
    assert "empty" in str(_raises(procreg.InvalidKey, lambda: reg.register(ns, "")))
    assert "at most 128" in str(_raises(procreg.InvalidKey, lambda: reg.register(ns, "x" * 129)))
    assert "NUL" in str(_raises(procreg.InvalidKey, lambda: reg.lookup_pid(ns, "a\0b")))
    _raises(procreg.InvalidKey, lambda: reg.lookup("", "x"))


def test_invalid_utf8(reg, ns):
    _raises(procreg.InvalidUtf8, lambda: reg.register(ns, "bad\udc80"))


def test_metadata_too_large(reg, ns):
    e = _raises(procreg.MetadataTooLarge, lambda: reg.register(ns, "k", metadata=b"x" * 257))
    assert "256" in str(e)


def test_process_not_alive(reg, ns):
    child = subprocess.Popen(["true"])
    child.wait()
    _raises(procreg.ProcessNotAlive, lambda: reg.register(ns, "k", pid=child.pid))


def test_not_found(reg, ns):
    _raises(procreg.NotFound, lambda: reg.update_metadata(ns, "k", b""))


def test_registry_full():
    with procreg.Registry("mem:", capacity=16) as r:
        with pytest.raises(procreg.RegistryFull) as ei:
            for i in range(17):
                r.register("n", f"k{i}")
        assert "sweep" in str(ei.value) and ei.value.status == 6


def test_incompatible_segment(url):
    e = _raises(procreg.IncompatibleSegment, lambda: procreg.Registry(url, capacity=16))
    assert "capacity" in str(e)


def test_permission_denied(tmp_path):
    path = tmp_path / "ww.seg"
    procreg.Registry(f"file:{path}", mode=0o666).close()
    e = _raises(procreg.PermissionDenied, lambda: procreg.Registry(f"file:{path}"))
    assert "world-writable" in str(e)
    # The caller may opt in (procreg_options.allow_world_writable).
    procreg.Registry(f"file:{path}", allow_world_writable=True).close()
    with pytest.raises(TypeError):
        procreg.Registry(f"file:{path}", allow_world_writable=1)  # type: ignore[arg-type]


def test_invalid_argument(reg, ns):
    _raises(procreg.InvalidArgument, lambda: reg.register(ns, "k", pid=0))
    _raises(procreg.InvalidArgument, lambda: reg.register(ns, "k", pid=-5))
    _raises(procreg.InvalidArgument, lambda: reg.register(ns, "k", pid=2**32))
    assert "scheme" in str(_raises(procreg.InvalidArgument, lambda: procreg.Registry("bogus:x")))


def test_no_such_registry():
    _raises(procreg.NoSuchRegistry, lambda: procreg.Registry(unique_url("none"), create="open"))
    _raises(procreg.NoSuchRegistry, lambda: procreg.destroy(unique_url("none")))


def test_registry_exists(url):
    _raises(procreg.RegistryExists, lambda: procreg.Registry(url, create="create"))


def test_io_error(tmp_path):
    _raises(procreg.IoError, lambda: procreg.Registry(f"file:{tmp_path}/no/such/dir/seg"))


@pytest.mark.parametrize("status", sorted(_errors.STATUS_CLASSES))
def test_every_status_maps_to_its_own_class(status):
    cls = _errors.STATUS_CLASSES[status]
    assert issubclass(cls, procreg.RegistryError) and cls is not procreg.RegistryError
    assert getattr(procreg, cls.__name__) is cls
    e = _errors.error_for(status, "detail", pid=42)
    assert type(e) is cls and e.status == status and str(e) == "detail"
    if cls is procreg.AlreadyExists:
        assert e.pid == 42


def test_status_classes_match_the_header_enum():
    """The header's procreg_status (generated from the library's one status
    list) and the exception table agree on every number and name."""
    root = __import__("conftest").repo_root()
    if root is None:
        pytest.skip("no procreg checkout")
    import re

    header = (root / "include" / "procreg.h").read_text()
    enum = header[header.index("typedef enum procreg_status") :]
    enum = enum[: enum.index("} procreg_status;")]
    in_header = {name: int(v) for name, v in re.findall(r"(PROCREG_E_\w+) = (\d+)", enum)}
    in_binding = {cls.C_NAME: n for n, cls in _errors.STATUS_CLASSES.items()}
    assert in_binding == in_header
    assert set(in_header.values()) == set(_errors.STATUS_CLASSES)
    assert "PROCREG_OK = 0" in enum


def test_unknown_status_becomes_unknown_error():
    e = _errors.error_for(4242, "x")
    assert isinstance(e, procreg.UnknownError) and e.status == 4242


def test_busy_and_internal_errors_are_registry_errors():
    for cls in (procreg.Busy, procreg.BufferTooSmall, procreg.NullArgument, procreg.InternalPanic):
        assert issubclass(cls, procreg.RegistryError)
    assert issubclass(procreg.RegistryClosed, procreg.RegistryError)


def test_error_message_is_read_on_the_failing_thread(reg, ns):
    reg.register(ns, "t", pid=1)
    msgs: dict = {}

    def other() -> None:
        try:
            reg.update_metadata(ns, "absent-in-thread", b"")
        except procreg.NotFound as e:
            msgs["thread"] = str(e)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    with pytest.raises(procreg.AlreadyExists) as ei:
        reg.register(ns, "t")
    assert "absent-in-thread" in msgs["thread"]
    assert "already registered" in str(ei.value) and ei.value.pid == 1


def test_library_version_matches_binding():
    assert procreg.library_version().startswith("0.1.")
    assert os.path.exists(procreg.LIBRARY_PATH)


def test_entry_metadata_json_decodes():
    e = procreg.Entry("n", "k", 1, json.dumps({"a": 1}).encode(), datetime.now(timezone.utc), 1)
    assert e.metadata_json() == {"a": 1}
