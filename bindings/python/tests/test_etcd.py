"""The binding on an ``etcd://`` registry: runs when ``PROCREG_ETCD_ENDPOINTS``
names a cluster (``bash scripts/etcd-cluster start`` prints it) and the
extension was built with etcd support (``MATURIN_PEP517_ARGS="--features etcd"
pip install ./bindings/python``); otherwise it is skipped, saying which is
missing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Iterator

import pytest

import procreg

ENDPOINTS = os.environ.get("PROCREG_ETCD_ENDPOINTS", "")
#: Nothing listens on port 1 of loopback.
DEAD_URL = "etcd://127.0.0.1:1/pytest-dead?timeout=1s"


def _etcd_support() -> str:
    """Why the etcd tests cannot run here, or "" when they can."""
    if not ENDPOINTS:
        return "PROCREG_ETCD_ENDPOINTS is not set (bash scripts/etcd-cluster start prints it)"
    try:
        procreg.Registry(DEAD_URL).close()
    except procreg.InvalidArgument as e:
        if "no etcd backend" in str(e):
            return (
                "the extension was built without etcd support; reinstall with "
                "MATURIN_PEP517_ARGS=\"--features etcd\" pip install ./bindings/python"
            )
        raise
    except procreg.Unavailable:
        pass
    return ""


_WHY_NOT = _etcd_support()
if _WHY_NOT and os.environ.get("PROCREG_REQUIRE_ETCD") == "1":
    # scripts/test-all: a skip there would hide that the binding never met etcd.
    raise RuntimeError(f"PROCREG_REQUIRE_ETCD=1 but the etcd tests cannot run: {_WHY_NOT}")
pytestmark = pytest.mark.skipif(bool(_WHY_NOT), reason=_WHY_NOT or "etcd available")


@pytest.fixture
def etcd_url() -> Iterator[str]:
    u = f"etcd://{ENDPOINTS}/pytest-{os.getpid()}-{uuid.uuid4().hex[:8]}?ttl=3s&timeout=5s"
    yield u
    procreg.destroy(u)


def test_etcd_register_lookup_list_and_stats_without_a_table_part(etcd_url: str) -> None:
    with procreg.Registry(etcd_url) as reg:
        reg.register("svc", "api", metadata={"port": 8080})
        e = reg.lookup("svc", "api")
        assert e is not None
        assert e.pid == os.getpid() and e.version == 1
        assert e.metadata_json() == {"port": 8080}
        with pytest.raises(procreg.AlreadyExists):
            reg.register("svc", "api")
        # Another process (its own handle, its own session) sees it.
        out = subprocess.run(
            [sys.executable, "-c", "import procreg,sys; r=procreg.Registry(sys.argv[1]); print(r.lookup_pid('svc','api'))", etcd_url],
            capture_output=True, text=True, timeout=30, check=True,
        )
        assert out.stdout.strip() == str(os.getpid())
        reg.register("svc", "worker", metadata="w")
        assert [x.name for x in reg.list("svc")] == ["api", "worker"]
        s = reg.stats()
        assert (s.backend, s.has_table, s.live) == ("etcd", False, 2)
        assert s.capacity is None and s.tombstones is None and s.created_at is None
        h = reg.health()
        assert h.healthy and h.live == 2 and h.alive_owners == 2
        assert h.liveness_mode == procreg.LivenessMode.LEASE
        assert h.header_valid is None and h.stuck_slots is None
        # The handle's session lease, which the Rust API reports.
        assert s.lease is not None and s.lease == h.lease and s.lease_ttl == 3.0
        assert s.own_entries == 2 and s.prefix and s.endpoints
        assert h.lease_left is not None and 0 < h.lease_left <= 3.0 and h.session_lost is None
        assert h.endpoints and all(ok for _, ok in h.endpoints)
        assert reg.unregister("svc", "api")
        assert reg.lookup("svc", "api") is None


def test_etcd_dead_endpoint_raises_unavailable_within_its_timeout() -> None:
    t = time.monotonic()
    with pytest.raises(procreg.Unavailable) as e:
        procreg.Registry(DEAD_URL)
    took = time.monotonic() - t
    assert "127.0.0.1:1" in str(e.value)
    assert isinstance(e.value, ConnectionError)
    assert took < 3.0, f"took {took:.1f}s with timeout=1s"


def test_etcd_registry_pickles_by_url_and_hides_a_password(etcd_url: str) -> None:
    import pickle

    with procreg.Registry(etcd_url) as reg:
        reg.register("svc", "pickled")
        other = pickle.loads(pickle.dumps(reg))
        try:
            assert other.lookup_pid("svc", "pickled") == os.getpid()
            assert other.stats().lease != reg.stats().lease  # a session of its own
        finally:
            other.close()
        assert reg.lookup_pid("svc", "pickled") == os.getpid()
    # A password in the url never shows in an error message.
    with pytest.raises(procreg.RegistryError) as e:
        procreg.Registry(DEAD_URL + "&user=u&password=s3cret-pw")
    assert "s3cret-pw" not in str(e.value)


def test_etcd_groups_select_and_wait_for_members_across_processes(etcd_url: str) -> None:
    me = os.getpid()
    child_code = (
        "import procreg,sys; r=procreg.Registry(sys.argv[1]); "
        "r.join_self('svc', 'pool', metadata={'role': 'worker'}); "
        "print('joined', flush=True); sys.stdin.readline(); r.close()"
    )
    with procreg.Registry(etcd_url) as reg:
        reg.register("svc", "pool", metadata="role=front")
        assert isinstance(reg.join_self("svc", "pool", metadata=b"role=worker"), int)
        with pytest.raises(procreg.AlreadyExists, match="already a member"):
            reg.join_self("svc", "pool")
        with reg.watch("svc") as w:
            child = subprocess.Popen(
                [sys.executable, "-c", child_code, etcd_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            try:
                got = reg.wait_for_members("svc", "pool", 2, timeout=30)
                assert [e.pid for e in got] == sorted([me, child.pid]) and all(e.member for e in got)
                ev = w.next(timeout=10)
                assert (ev.kind, ev.name, ev.pid, ev.member) == (procreg.EventKind.REGISTERED, "pool", child.pid, True)
                assert [(e.name, e.member) for e in reg.list("svc")] == [("pool", False)]
                hits = reg.select("role=worker", ns="svc")
                assert sorted(e.pid for e in hits) == sorted([me, child.pid]) and all(e.member for e in hits)
                assert [e.member for e in reg.select("role=front", ns="svc")] == [False]
                assert child.stdin is not None
                child.stdin.write("\n")
                child.stdin.flush()
                assert child.wait(30) == 0
            finally:
                child.kill()
                child.wait()
            # The child's session ended with its handle: its member goes with it.
            deadline = time.monotonic() + 10
            while [e.pid for e in reg.members("svc", "pool")] != [me] and time.monotonic() < deadline:
                time.sleep(0.1)
            assert [e.pid for e in reg.members("svc", "pool")] == [me]
        v = reg.update_member_metadata("svc", "pool", me, {"role": "api"})
        assert reg.members("svc", "pool")[0].version == v
        assert reg.leave("svc", "pool", me) is True
        assert reg.list_members("svc") == []
        with pytest.raises(procreg.Timeout, match="it has 0"):
            reg.wait_for_members("svc", "pool", 1, timeout=0.3)
