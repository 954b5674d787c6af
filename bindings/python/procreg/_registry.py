"""The Pythonic API: :class:`Registry` (over the native ``procreg._native``
extension), :class:`Entry`, the value types :class:`Stats`, :class:`Health`,
:class:`Event`, and the change stream (:class:`Watcher`) and :class:`Reaper`.

Everything on a hot path is native; this module adds the Python defaults of
``register``, ``register_with_lease``, ``join`` and ``join_self``, :meth:`Registry.test_namespace`,
and the frozen dataclasses the extension fills in."""

from __future__ import annotations

import contextlib
import enum
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterator, List, Optional, Tuple, Type, Union

from . import _native
from ._native import Entry, Reaper, Watcher, destroy

__all__ = [
    "Registry",
    "Entry",
    "Stats",
    "ProcessCounters",
    "Health",
    "Liveness",
    "LivenessMode",
    "Metadata",
    "Event",
    "EventKind",
    "Watcher",
    "Reaper",
    "destroy",
]

#: What ``metadata`` arguments accept: bytes-like, ``str`` (stored UTF-8) or a
#: ``dict`` (stored as compact JSON).
Metadata = Union[bytes, bytearray, memoryview, str, Dict[str, Any]]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _time(ns: int) -> datetime:
    """UTC datetime from nanoseconds since the Unix epoch (exact to the microsecond)."""
    return _EPOCH + timedelta(0, ns // 1_000_000_000, (ns // 1000) % 1_000_000)


def _ns(t: Union[datetime, int]) -> int:
    """Nanoseconds since the Unix epoch of a datetime (naive: UTC), or an int as is."""
    if isinstance(t, int) and not isinstance(t, bool):
        return t
    if not isinstance(t, datetime):
        raise TypeError(f"registered_at must be a datetime, not {type(t).__name__}")
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return ((t - _EPOCH) // timedelta(microseconds=1)) * 1000


def _meta(m: object) -> bytes:
    """Metadata other than bytes and str (which the extension takes directly)."""
    if isinstance(m, (bytes, bytearray, memoryview)):
        return bytes(m)
    if isinstance(m, str):
        return str(m).encode("utf-8")
    if isinstance(m, dict):
        return json.dumps(m, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raise TypeError(f"metadata must be bytes, str or dict, not {type(m).__name__}")


# ---- value types ---------------------------------------------------------------


@dataclass(frozen=True)
class ProcessCounters:
    """Operations of this process (all handles, all threads) since it started."""

    #: Successful registrations.
    registers: int
    #: Lookups that found their key.
    lookup_hits: int
    #: Lookups that did not.
    lookup_misses: int
    #: Successful unregistrations.
    unregisters: int
    #: Successful metadata updates.
    updates: int
    #: Entries this process reclaimed (dead owner or expired lease).
    reclaimed: int
    #: Operations that gave up with :class:`Busy`.
    busy: int


@dataclass(frozen=True)
class Stats:
    """Sizes and counters of a registry at one moment. The counters above
    ``process`` are the registry's (every process); ``process`` holds this
    process's own.

    The hash-table figures (``capacity`` .. ``created_at`` and the registry's
    counters ``registers`` .. ``locks_stolen``) exist only for ``shm:``,
    ``file:`` and ``mem:`` registries (``has_table``); on ``etcd://`` they
    are ``None`` rather than made up, and the lease fields below are set."""

    backend: str
    capacity: Optional[int]
    live: int
    tombstones: Optional[int]
    claimed: Optional[int]
    max_probe_distance: Optional[int]
    mean_miss_groups: Optional[float]
    segment_bytes: Optional[int]
    created_at: Optional[datetime]
    max_namespace_len: int
    max_name_len: int
    max_metadata_len: int
    registers: Optional[int]
    unregisters: Optional[int]
    updates: Optional[int]
    reclaimed: Optional[int]
    stuck_recovered: Optional[int]
    locks_stolen: Optional[int]
    changes: int
    process: ProcessCounters
    #: True when the figures of a hash table above are present.
    has_table: bool = True
    #: etcd: this handle's session lease id (None on shm:/mem:).
    lease: Optional[int] = None
    #: etcd: the session lease's ttl, in seconds.
    lease_ttl: Optional[float] = None
    #: etcd: the members, as "host:port".
    endpoints: Optional[List[str]] = None
    #: etcd: the key prefix of this registry.
    prefix: Optional[str] = None
    #: etcd: entries registered through this handle's session.
    own_entries: Optional[int] = None


class LivenessMode(enum.IntEnum):
    """How owner liveness is judged."""

    PROC_START_TIME = 0
    FOREIGN_PID_NAMESPACE = 1
    IN_PROCESS = 2
    #: A networked registry (etcd): an entry lives while its owner's lease is
    #: kept alive; owners on this host are also checked through ``/proc``.
    LEASE = 3


class Liveness(enum.Enum):
    """Whether a process is running, as procreg can tell
    (:attr:`Entry.liveness`, :meth:`Registry.owner_liveness`)."""

    #: The process runs and is the one that was registered (same start time).
    ALIVE = "alive"
    #: The process is gone, a zombie, or its pid now belongs to another process.
    DEAD = "dead"
    #: It cannot be told from here (e.g. another PID namespace); never reclaimed.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Health:
    """Result of :meth:`Registry.health`. ``header_valid``, ``load_factor``
    and ``stuck_slots`` belong to a hash table: ``None`` on ``etcd://``,
    where the lease fields are set instead."""

    healthy: bool
    header_valid: Optional[bool]
    load_factor: Optional[float]
    live: int
    alive_owners: int
    dead_owners: int
    unknown_owners: int
    expired_leases: int
    stuck_slots: Optional[int]
    liveness_mode: Union[LivenessMode, int]
    problem_count: int
    #: One string per problem.
    problems: List[str]
    #: etcd: this handle's session lease id.
    lease: Optional[int] = None
    #: etcd: seconds left before the handle's local lease deadline (0 once lost).
    lease_left: Optional[float] = None
    #: etcd: why the session (and every entry under it) is lost, if it is.
    session_lost: Optional[str] = None
    #: etcd: each member and whether it answered.
    endpoints: Optional[List[Tuple[str, bool]]] = None


class EventKind(enum.Enum):
    """What a change did."""

    #: The key was registered.
    REGISTERED = 1
    #: The key was unregistered by a process.
    UNREGISTERED = 2
    #: The entry's metadata was replaced.
    UPDATED = 3
    #: The owner died and the entry was reclaimed.
    RECLAIMED = 4
    #: The entry's lease ran out and it was reclaimed.
    EXPIRED = 5
    #: A change whose writer died before recording it: re-read with
    #: :meth:`Registry.list` (namespace and name are "", pid 0).
    LOST = 6


@dataclass(frozen=True)
class Event:
    """One change of the registry, from :meth:`Watcher.next`."""

    #: Position of the change in the registry's history (see :meth:`Registry.revision`).
    revision: int
    kind: EventKind
    namespace: str
    name: str
    #: Owner of the entry (0 for LOST).
    pid: int
    #: Version of the entry after the change (of the removed entry for removals).
    version: int
    #: When the change was committed (UTC).
    at: datetime
    #: Host of the entry's owner ("" for LOST).
    host: str = ""
    #: True for a change of a group member: ``name`` is the group, ``pid``
    #: the member (REGISTERED is a join, UNREGISTERED a leave).
    member: bool = False


# ---- the registry ----------------------------------------------------------------


class Registry(_native.Registry):
    """A handle on a procreg registry.

    ``url`` is ``"shm:NAME"`` (or a bare name), ``"file:/path"``,
    ``"mem:[NAME]"`` (this process only), or
    ``"etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?ttl=10s&timeout=5s]"`` when the
    extension was built with etcd support (the table options below do not
    apply to it). ``None`` (the default) is ``$PROCREG_URL`` when set, else
    ``"shm:default"``, as for the ``procreg`` command. Limits left at
    ``None`` take the defaults when creating and the segment's own when
    opening; ``create`` is ``"open_or_create"`` (default), ``"create"`` or
    ``"open"``.

    One handle may be used from many threads. ``close()`` (or leaving the
    ``with`` block) releases it; later calls raise :class:`RegistryClosed`.
    Entries stay registered after close: they belong to processes, not
    handles. ``copy.copy`` and ``copy.deepcopy`` give another object on the
    same handle; a pickle (e.g. an argument of a ``multiprocessing`` spawn
    child) reopens the registry by url in the receiver (an anonymous
    ``"mem:"`` registry cannot be pickled: ``TypeError``).
    """

    __slots__ = ()

    def register(self, ns: str, name: str, pid: Optional[int] = None, metadata: Metadata = b"") -> None:
        """Registers (ns, name) for ``pid`` (``None``: this process).

        Raises :class:`AlreadyExists` (with ``.pid``) if a live process holds
        the key; an entry of a dead owner is replaced."""
        self._register(ns, name, pid, metadata)

    def register_with_lease(
        self, ns: str, name: str, ttl: float, pid: Optional[int] = None, metadata: Metadata = b""
    ) -> None:
        """Registers (ns, name) for ``pid`` (``None``: this process) with a
        lease of ``ttl`` seconds (on ``shm:``/``mem:`` 1 ms to about 4.6
        hours, kept to whole milliseconds): the entry expires unless
        :meth:`keepalive` renews it in time, even if its owner is alive but
        hung. An expired entry is hidden from :meth:`lookup_checked`, counted
        in ``health().expired_leases`` and reclaimed by :meth:`sweep` (or a
        :class:`Reaper`)."""
        self._register_with_lease(ns, name, ttl, pid, metadata)

    def join(self, ns: str, group: str, pid: int, metadata: Metadata = b"") -> int:
        """Adds process ``pid`` to ``group`` of namespace ``ns`` with its own
        ``metadata``; returns the member's version.

        A member is one (group, pid): joining twice raises
        :class:`AlreadyExists` (``.pid`` is the member). A group may share
        its name with a unique key. A member whose process dies is reclaimed
        like a dead entry (:meth:`sweep`, a :class:`Reaper`). Raises
        :class:`InvalidArgument` for pid 0, :class:`ProcessNotAlive`,
        :class:`InvalidKey` (a group name may be at most ``max_name_len -
        11`` bytes), :class:`MetadataTooLarge`, :class:`RegistryFull`."""
        return self._join(ns, group, pid, metadata)

    def join_self(self, ns: str, group: str, metadata: Metadata = b"") -> int:
        """Adds this process to ``group`` of namespace ``ns``; returns the
        member's version. Raises as :meth:`join`."""
        return self._join_self(ns, group, metadata)

    @contextlib.contextmanager
    def test_namespace(self, prefix: str = "test") -> Iterator[str]:
        """A unique namespace for one test, cleared on exit::

            with reg.test_namespace() as ns:
                reg.register(ns, "svc")
        """
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be str, not {type(prefix).__name__}")
        ns = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            yield ns
        finally:
            if not self.closed:
                self.clear_namespace(ns)


def _reopen(cls: Type[Registry], url: str, kwargs: Dict[str, Any]) -> Registry:
    """Unpickling: opens the registry a pickled :class:`Registry` named."""
    return cls(url, **kwargs)
