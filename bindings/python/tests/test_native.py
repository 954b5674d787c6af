"""What the extension module adds over the ctypes binding it replaced:
pickling and copying a Registry, $PROCREG_URL, messages in Python terms,
exceptions that are also builtin exceptions, unregister_if_owner, liveness
on an Entry, and the type stubs."""

from __future__ import annotations

import copy
import gc
import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap
from datetime import datetime, timezone

import pytest

import procreg

import _workers
from conftest import unique_url

ctx = multiprocessing.get_context("spawn")


# ---- pickling and copying ------------------------------------------------------------


def test_pickled_registry_reopens_the_same_registry_by_url(url, reg, ns):
    reg.register(ns, "k", metadata=b"v")
    other = pickle.loads(pickle.dumps(reg))
    try:
        assert type(other) is procreg.Registry and other is not reg
        assert other.url == reg.url and not other.closed
        assert other.lookup(ns, "k") == reg.lookup(ns, "k")
        other.close()  # a handle of its own: closing it leaves reg open
        assert not reg.closed and reg.lookup_pid(ns, "k") == os.getpid()
    finally:
        other.close()


def test_pickle_keeps_the_open_options():
    u = unique_url("opts")
    try:
        with procreg.Registry(u, capacity=32, max_metadata_len=40, create="create") as r:
            again = pickle.loads(pickle.dumps(r))
            s = again.stats()
            assert (s.capacity, s.max_metadata_len) == (32, 40)
            again.close()
    finally:
        procreg.destroy(u)


def test_pickle_of_a_destroyed_registry_does_not_recreate_it():
    u = unique_url("gone")
    r = procreg.Registry(u, create="create")
    data = pickle.dumps(r)
    r.close()
    procreg.destroy(u)
    with pytest.raises(procreg.NoSuchRegistry):
        pickle.loads(data)


def test_anonymous_mem_registry_refuses_to_pickle():
    with procreg.Registry("mem:") as r:
        with pytest.raises(TypeError, match="anonymous 'mem:'"):
            pickle.dumps(r)


def test_closed_registry_refuses_to_pickle(url):
    r = procreg.Registry(url)
    r.close()
    with pytest.raises(procreg.RegistryClosed):
        pickle.dumps(r)


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy])
def test_copies_share_the_handle_and_close_independently(how):
    r = procreg.Registry("mem:")  # anonymous: only a shared handle can copy it
    r.register("n", "k")
    c = how(r)
    assert type(c) is procreg.Registry and c is not r
    assert c.lookup_pid("n", "k") == os.getpid()
    r.close()
    assert r.closed and not c.closed
    c.register("n", "k2")  # the registry lives on through the copy
    assert c.lookup_pid("n", "k2") == os.getpid()
    c.close()
    del r, c
    gc.collect()


def test_copies_and_pickles_alive_until_exit_end_cleanly(url):
    """The ctypes binding pickled its handle as an integer: two owners of one
    pointer, a double free at exit. Every copy here is an owner of its own."""
    code = textwrap.dedent(
        f"""
        import copy, pickle, procreg
        r = procreg.Registry({url!r})
        keep = [r, copy.copy(r), copy.deepcopy(r), pickle.loads(pickle.dumps(r))]
        keep[3].register("exit-ns", "k")
        assert keep[1].lookup_pid("exit-ns", "k") is not None
        keep[2].clear_namespace("exit-ns")
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok" and "free" not in out.stderr


def test_registry_passed_to_a_spawned_process_works_there(url, reg, ns):
    done, release = ctx.Queue(), ctx.Event()
    p = ctx.Process(target=_workers.use_passed_registry, args=(reg, ns, done, release))
    p.start()
    try:
        child_pid, child_url, seen = done.get(timeout=60)
        assert child_pid == p.pid and child_url == reg.url and seen == p.pid
        assert reg.lookup_checked(ns, "from-spawned-child").pid == p.pid
    finally:
        release.set()
        p.join(30)
    assert p.exitcode == 0  # not -SIGSEGV
    assert not reg.closed


# ---- PROCREG_URL -------------------------------------------------------------------


def test_registry_without_url_opens_procreg_url():
    u = unique_url("env")
    code = "import procreg; r = procreg.Registry(); print(r.url); r.register('n', 'k'); r.close()"
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], env=dict(os.environ, PROCREG_URL=u), capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == u
        with procreg.Registry(u, create="open") as r:
            assert r.lookup_pid("n", "k") is not None  # it really used that registry
    finally:
        procreg.destroy(u)


# ---- messages and exception classes ----------------------------------------------------


def test_messages_speak_python(tmp_path):
    with procreg.Registry("mem:", capacity=16) as r:
        with pytest.raises(procreg.InvalidArgument) as ei:
            r.register_with_lease("n", "k", ttl=10**9)
        msg = str(ei.value)
        assert "..=" not in msg and "0.001 to 16777.215 seconds" in msg and "1 ms to 16777215 ms" in msg
        with pytest.raises(procreg.InvalidKey) as ki:
            r.register("", "k")
        assert "..=" not in str(ki.value) and "1 to 64 bytes" in str(ki.value)
        with pytest.raises(procreg.RegistryFull) as fi:
            for i in range(17):
                r.register("n", f"k{i}")
        assert "call reg.sweep()" in str(fi.value) and "sweep()" in str(fi.value)
    path = tmp_path / "ww.seg"
    procreg.Registry(f"file:{path}", mode=0o666).close()
    with pytest.raises(procreg.PermissionDenied) as pi:
        procreg.Registry(f"file:{path}")
    assert "allow_world_writable=True" in str(pi.value) and "Builder" not in str(pi.value)


def test_exceptions_are_also_builtin_exceptions(reg, ns):
    with pytest.raises(TimeoutError):
        reg.wait_for(ns, "never", timeout=0)
    with pytest.raises(ValueError):
        reg.register(ns, "k", metadata=b"x" * 10_000)  # MetadataTooLarge
    with pytest.raises(ValueError):
        reg.register(ns, "")  # InvalidKey
    with pytest.raises(LookupError):
        reg.update_metadata(ns, "absent", b"")  # NotFound
    with pytest.raises(FileNotFoundError):
        procreg.Registry(unique_url("none"), create="open")  # NoSuchRegistry
    with pytest.raises(FileExistsError):
        procreg.Registry(reg.url, create="create")  # RegistryExists
    closed = procreg.Registry(reg.url)
    closed.close()
    with pytest.raises(ValueError):  # RegistryClosed, as for a closed file
        closed.lookup_pid(ns, "k")
    for cls, base in [
        (procreg.Timeout, TimeoutError),
        (procreg.MetadataTooLarge, ValueError),
        (procreg.InvalidKey, ValueError),
        (procreg.InvalidArgument, ValueError),
        (procreg.NotFound, LookupError),
        (procreg.NoSuchRegistry, FileNotFoundError),
        (procreg.RegistryExists, FileExistsError),
        (procreg.PermissionDenied, PermissionError),
        (procreg.IoError, OSError),
        (procreg.Unavailable, ConnectionError),
    ]:
        assert issubclass(cls, base) and issubclass(cls, procreg.RegistryError)
        e = cls("detail")
        assert str(e) == "detail" and e.status == cls.STATUS


# ---- unregister_if_owner, liveness ---------------------------------------------------------


def test_unregister_if_owner_removes_only_the_owners_entry(reg, ns):
    reg.register(ns, "theirs", pid=1)
    assert reg.unregister_if_owner(ns, "theirs") is False  # this process does not own it
    assert reg.lookup_pid(ns, "theirs") == 1
    assert reg.unregister_if_owner(ns, "theirs", pid=1) is True
    assert reg.lookup(ns, "theirs") is None
    reg.register(ns, "mine")
    assert reg.unregister_if_owner(ns, "mine") is True
    assert reg.unregister_if_owner(ns, "mine") is False
    with pytest.raises(TypeError):
        reg.unregister_if_owner(ns, "mine", pid="1")


def test_entry_liveness_follows_its_owner(reg, ns):
    reg.register(ns, "me")
    e = reg.lookup(ns, "me")
    assert e.liveness is procreg.Liveness.ALIVE and e.alive is True
    assert reg.owner_liveness(ns, "me") is procreg.Liveness.ALIVE
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        reg.register(ns, "child", pid=child.pid)
        c = reg.lookup(ns, "child")
        assert c.alive
    finally:
        child.kill()
        child.wait()
    assert c.liveness is procreg.Liveness.DEAD and c.alive is False
    assert reg.owner_liveness(ns, "child") is procreg.Liveness.DEAD
    assert reg.owner_liveness(ns, "absent") is None
    reg.unregister(ns, "me")
    assert e.liveness is procreg.Liveness.DEAD  # the key is no longer held by that pid
    handmade = procreg.Entry("n", "k", 1, b"", datetime.now(timezone.utc), 1)
    with pytest.raises(ValueError, match="owner_liveness"):
        _ = handmade.alive


def test_an_entry_does_not_keep_its_registry_open():
    import weakref

    r = procreg.Registry("mem:")
    r.register("n", "k")
    e = r.lookup("n", "k")
    assert e.alive
    gone = weakref.ref(r)
    del r
    gc.collect()
    assert gone() is None  # the Entry held it weakly
    with pytest.raises(procreg.RegistryClosed, match="gone"):
        _ = e.liveness
    assert e.pid == os.getpid()  # the values stay


def test_entry_is_a_value(reg, ns):
    reg.register(ns, "v", metadata={"a": 1})
    e = reg.lookup(ns, "v")
    assert e == reg.lookup(ns, "v") and hash(e) == hash(reg.lookup(ns, "v"))
    assert pickle.loads(pickle.dumps(e)) == e
    assert "Entry(namespace=" in repr(e) and "metadata=b'{\"a\":1}'" in repr(e)
    assert e.registered_at_ns // 1000 == int(e.registered_at.timestamp() * 1e6) or abs(
        e.registered_at_ns / 1e9 - e.registered_at.timestamp()
    ) < 1e-5
    with pytest.raises(AttributeError):
        e.pid = 2  # type: ignore[misc]


def test_extension_is_stripped_abi3():
    assert procreg.LIBRARY_PATH.endswith(".abi3.so")
    out = subprocess.run(["file", procreg.LIBRARY_PATH], capture_output=True, text=True)
    if out.returncode == 0 and "ELF" in out.stdout:
        assert "not stripped" not in out.stdout


# ---- type stubs ------------------------------------------------------------------------------


def test_package_and_stubs_pass_mypy_strict(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (pip install mypy)")
    usage = tmp_path / "usage.py"
    usage.write_text(
        textwrap.dedent(
            """
            import os
            from typing import List, Optional
            import procreg

            def main() -> None:
                with procreg.Registry("mem:") as reg:
                    reg.register("ns", "k", metadata={"port": 1})
                    pid: Optional[int] = reg.lookup_pid("ns", "k")
                    e: Optional[procreg.Entry] = reg.lookup("ns", "k")
                    if e is not None:
                        alive: bool = e.alive
                        print(pid, e.metadata_json(), e.registered_at.isoformat(), alive)
                    entries: List[procreg.Entry] = reg.list("ns")
                    s: procreg.Stats = reg.stats()
                    print(entries, s.capacity, reg.unregister_if_owner("ns", "k"))
                    with reg.watch("ns") as w:
                        v: int = reg.join("ns", "g", os.getpid(), metadata={"role": "api"})
                        ev: procreg.Event = w.next(timeout=1.0)
                        print(v, ev.member)
                    members: List[procreg.Entry] = reg.members("ns", "g")
                    member: bool = members[0].member
                    one: Optional[procreg.Entry] = reg.member("ns", "g", os.getpid())
                    ml: Optional[procreg.Liveness] = reg.member_liveness("ns", "g", os.getpid())
                    print(one, ml)
                    live: List[procreg.Entry] = reg.wait_for_members("ns", "g", 1, None)
                    hits: List[procreg.Entry] = reg.select("role=api", ns=None)
                    everyone: List[procreg.Entry] = reg.list_members()
                    left: bool = reg.leave("ns", "g", os.getpid())
                    print(member, live, hits, everyone, left, reg.update_member_metadata("ns", "g", 1, b""))
            """
        )
    )
    for target in (["-p", "procreg"], [str(usage)]):
        out = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *target],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )
        assert out.returncode == 0, out.stdout + out.stderr


def test_prepared_keys_and_services_follow_every_change() -> None:
    reg = procreg.Registry("mem:")
    me = os.getpid()
    key = procreg.Key("svc", "db")
    assert (key.namespace, key.name) == ("svc", "db")
    assert key == procreg.Key("svc", "db") and hash(key) == hash(procreg.Key("svc", "db"))
    assert repr(key) == 'Key("svc", "db")'
    with pytest.raises(procreg.InvalidKey):
        procreg.Key("", "db")
    with pytest.raises(ValueError):
        procreg.Key("svc", "a\0b")
    with pytest.raises(TypeError):
        procreg.Key("svc", 3)  # type: ignore[arg-type]
    svc = reg.service("svc", "db")
    assert reg.lookup_pid_key(key) is None and svc.pid() is None
    reg.register("svc", "db")
    assert reg.lookup_pid_key(key) == me
    assert svc.pid() == me and svc.pid() == me
    assert svc.key == key
    reg.unregister("svc", "db")
    assert svc.pid() is None
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        reg.register("svc", "db", pid=sleeper.pid)
        assert svc.pid() == sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()
    assert reg.sweep() == 1
    assert svc.pid() is None
    # A key longer than the registry admits is refused where it is used.
    long = procreg.Key("svc", "n" * 1000)
    with pytest.raises(procreg.InvalidKey):
        reg.lookup_pid_key(long)
    with pytest.raises(procreg.InvalidKey):
        reg.service("svc", "n" * 1000)


def test_entries_show_their_lease_and_creates_have_a_size_bound() -> None:
    url = unique_url("lease-bound")
    with pytest.raises(procreg.InvalidArgument) as ei:
        procreg.Registry(url, create="create", max_segment_bytes=1 << 20)
    assert "max_segment_bytes=N to Registry()" in str(ei.value)
    assert "Builder" not in str(ei.value)
    reg = procreg.Registry(url, create="create", max_segment_bytes=1 << 30)
    try:
        reg.register("svc", "plain")
        reg.register_with_lease("svc", "leased", ttl=30)
        plain, leased = reg.lookup("svc", "plain"), reg.lookup("svc", "leased")
        assert plain is not None and leased is not None
        assert (plain.lease_ttl, plain.lease_remaining, plain.lease_id) == (None, None, None)
        assert leased.lease_ttl == pytest.approx(30.0)
        assert leased.lease_remaining is not None and 0 < leased.lease_remaining <= 30.0
    finally:
        reg.close()
        procreg.destroy(url)
