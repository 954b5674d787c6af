"""The Pythonic API over the C ABI: :class:`Registry`, :class:`Entry`,
:class:`Stats`, :class:`Health`, and the change stream (:class:`Watcher`,
:class:`Event`) and :class:`Reaper`."""

from __future__ import annotations

import contextlib
import enum
import json
import math
import os
import threading
import time
import uuid
from ctypes import addressof, byref, c_size_t, c_uint32, c_uint64, c_void_p, create_string_buffer, string_at
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple, TypeVar, Union

from . import _ffi
from ._errors import (
    InvalidArgument,
    InvalidKey,
    InvalidUtf8,
    Lagged,
    RegistryClosed,
    RegistryError,
    Timeout,
    error_for,
)

__all__ = [
    "Registry",
    "Entry",
    "Stats",
    "ProcessCounters",
    "Health",
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
_CREATE_MODES = {
    "open_or_create": _ffi.PROCREG_OPEN_OR_CREATE,
    "create": _ffi.PROCREG_CREATE,
    "open": _ffi.PROCREG_OPEN,
}
_U32_MAX = 0xFFFF_FFFF
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF
#: Longest single blocking call of wait_for / Watcher.next, in milliseconds:
#: longer waits are cut into slices so that Ctrl-C (signal handlers run only
#: between calls) and a close() from another thread take effect within it.
_WAIT_SLICE_MS = 250


def _time(ns: int) -> datetime:
    """UTC datetime from nanoseconds since the Unix epoch (exact to the microsecond)."""
    return _EPOCH + _timedelta(0, ns // 1_000_000_000, (ns // 1000) % 1_000_000)


_timedelta = timedelta


# ---- value types ---------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One registration: who owns (namespace, name), with what metadata, since when."""

    namespace: str
    name: str
    pid: int
    metadata: bytes
    registered_at: datetime
    version: int
    #: Name of the host the owner runs on (for ``shm:`` and ``mem:``, this host).
    host: str = ""

    def metadata_json(self) -> Any:
        """The metadata decoded as JSON (as stored from a ``dict``)."""
        return json.loads(self.metadata)

    def metadata_text(self) -> str:
        """The metadata decoded as UTF-8."""
        return self.metadata.decode("utf-8")


@dataclass(frozen=True)
class ProcessCounters:
    """Operations of this process (all handles, all threads) since it loaded
    the library; the fields of ``procreg_stats_t`` named ``process_*``."""

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
    are ``None`` rather than made up."""

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


class LivenessMode(enum.IntEnum):
    """How owner liveness is judged (``procreg_liveness_mode``)."""

    PROC_START_TIME = 0
    FOREIGN_PID_NAMESPACE = 1
    IN_PROCESS = 2
    #: A networked registry (etcd): an entry lives while its owner's lease is
    #: kept alive; owners on this host are also checked through ``/proc``.
    LEASE = 3


@dataclass(frozen=True)
class Health:
    """Result of :meth:`Registry.health`. ``header_valid``, ``load_factor``
    and ``stuck_slots`` belong to a hash table: ``None`` on ``etcd://``."""

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
    #: One string per problem (the library's "\n"-separated text, split),
    #: complete even when the C struct's buffer had to cut it.
    problems: List[str]


class EventKind(enum.Enum):
    """What a change did (``procreg_event_kind``)."""

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


_new = object.__new__

# Host names by the address of the library's interned copy: the library keeps
# each distinct host name at one address until the process exits.
_hosts: Dict[int, str] = {}


def _host(addr: Optional[int]) -> str:
    """The host name at ``addr`` (a ``const char *`` interned by the library)."""
    if not addr:
        return ""
    try:
        return _hosts[addr]
    except KeyError:
        h = _hosts[addr] = string_at(addr).decode("utf-8", "replace")
        return h


def _entry(
    namespace: str, name: str, pid: int, metadata: bytes, registered_at_ns: int, version: int, host: str
) -> Entry:
    """Builds an Entry without the frozen dataclass's per-field
    object.__setattr__ calls (about 1 us of a lookup otherwise)."""
    e = _new(Entry)
    d = e.__dict__
    d["namespace"] = namespace
    d["name"] = name
    d["pid"] = pid
    d["metadata"] = metadata
    d["registered_at"] = _time(registered_at_ns)
    d["version"] = version
    d["host"] = host
    return e


# ---- argument conversion (all before any FFI call) ----------------------------

# str -> UTF-8 bytes of keys already seen: a hit costs one dict lookup instead
# of an encode and a NUL check. Only validated keys are stored; bounded.
_key_cache: Dict[str, bytes] = {}
_KEY_CACHE_MAX = 1 << 16


def _key(s: object, what: str) -> bytes:
    """Validates and encodes a namespace or name (the slow path of the cache)."""
    if not isinstance(s, str):
        raise TypeError(f"{what} must be str, not {type(s).__name__}")
    if "\0" in s:
        raise InvalidKey(f"{what} {s!r} contains a NUL character; keys are text without NUL", 2)
    try:
        b = s.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidUtf8(f"{what} {s!r} cannot be encoded as UTF-8 (lone surrogate)", 101) from None
    if len(_key_cache) >= _KEY_CACHE_MAX:
        _key_cache.clear()
    _key_cache[str(s)] = b
    return b


def _meta(m: object) -> bytes:
    t = type(m)
    if t is bytes:
        return m  # type: ignore[return-value]
    if t is str:
        return str.encode(m, "utf-8")  # type: ignore[arg-type]
    if isinstance(m, (bytes, bytearray, memoryview)):
        return bytes(m)
    if isinstance(m, str):
        return str(m).encode("utf-8")
    if isinstance(m, dict):
        return json.dumps(m, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raise TypeError(f"metadata must be bytes, str or dict, not {type(m).__name__}")


def _pid(pid: object) -> int:
    if type(pid) is bool or not isinstance(pid, int):
        raise TypeError(f"pid must be int or None, not {type(pid).__name__}")
    if not 0 <= pid <= _U32_MAX:
        raise InvalidArgument(f"pid {pid} is out of range (a process id is 1..{_U32_MAX})", 10)
    return int(pid)


def _seconds(v: object, what: str) -> float:
    """A duration in seconds: a finite, non-negative int or float."""
    if type(v) is bool or not isinstance(v, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(v).__name__}")
    f = float(v)
    if not math.isfinite(f) or f < 0:
        raise InvalidArgument(f"{what}={v!r} is out of range; give a non-negative number of seconds", 10)
    return f


def _millis(seconds: float, what: str, minimum: int = 0) -> int:
    """Seconds -> whole milliseconds for the C ABI (rounded; at least
    ``minimum`` for a positive duration, so 0.0001 s is not silently 0)."""
    ms = round(seconds * 1000)
    if seconds > 0:
        ms = max(ms, minimum)
    if ms > _U64_MAX:
        raise InvalidArgument(f"{what}={seconds!r} s is out of range", 10)
    return ms


def _limit(v: object, what: str) -> int:
    """An optional size option: None -> 0 (the default / the segment's)."""
    if v is None:
        return 0
    if type(v) is bool or not isinstance(v, int):
        raise TypeError(f"{what} must be int or None, not {type(v).__name__}")
    if v < 1 or v > (1 << 63):
        raise InvalidArgument(f"{what}={v} is out of range; give a positive number or None for the default", 10)
    return int(v)


# ---- per-thread out-parameters --------------------------------------------------

# Another thread may run between a call and the read of its out-parameter (the
# GIL can switch there, and most calls release it), so out-parameters are never
# shared between threads: each thread allocates its own once and reuses it.
_tls = threading.local()
_fast_lookup_pid = _ffi.fast_lookup_pid


def _pid_out() -> Tuple[c_uint32, Any]:
    o = c_uint32()
    t = (o, byref(o))
    _tls.pid = t
    return t


class _EntryOut:
    """The out-parameters of an entry lookup: ``procreg_entry``, the
    metadata buffer and its capacity, and the metadata length."""

    __slots__ = ("e", "e_ref", "buf", "buf_addr", "cap", "n", "n_ref")

    def __init__(self, cap: int) -> None:
        self.e = _ffi.ProcregEntry()
        self.e_ref = byref(self.e)
        self.n = c_size_t()
        self.n_ref = byref(self.n)
        self.grow(cap)

    def grow(self, cap: int) -> None:
        """A buffer of ``cap`` bytes (at least 1)."""
        self.buf = create_string_buffer(max(cap, 1))
        self.buf_addr = addressof(self.buf)
        self.cap = c_size_t(len(self.buf))

    def call(self, fn: Callable[..., int], *args: Any) -> int:
        """``fn(*args, entry, buf, cap, &len)``, retried with a buffer of the
        reported size while the metadata does not fit (it may grow between
        calls); the larger buffer is kept for later calls."""
        while True:
            st = fn(*args, self.e_ref, self.buf, self.cap, self.n_ref)
            if st != _ffi.PROCREG_E_BUFFER_TOO_SMALL:
                return st
            self.grow(self.n.value)

    def entry(self, ns: str, name: str) -> Entry:
        """The Entry of a successful call."""
        e = self.e
        n = self.n.value
        return _entry(
            ns,
            name,
            e.pid,
            string_at(self.buf_addr, n) if n else b"",
            e.registered_at_ns,
            e.version,
            _host(e.host),
        )


def _entry_out() -> _EntryOut:
    t = _EntryOut(_ffi.PROCREG_METADATA_CAPACITY)
    _tls.entry = t
    return t


def _fail(status: int) -> RegistryError:
    """The exception of a failed call: reads the detail on this thread, right after it."""
    msg, pid = _ffi.last_error()
    if not msg:
        msg = _ffi.strerror(status)
    return error_for(status, msg, pid)


# ---- the registry ----------------------------------------------------------------


class _Handle(c_void_p):
    """The ``procreg *`` of one open registry; frees it when the last reference
    goes. ``Registry.close()`` drops the registry's reference, and a call in
    flight on another thread holds its own (a local variable) until it
    returns, so a close racing with calls never frees the handle under them,
    and costs the hot path nothing. In CPython the free is immediate when no
    call is in flight (a traceback that still holds a frame of a failed call
    may delay it, harmlessly)."""

    def __del__(self) -> None:
        if self.value:
            try:
                close = _ffi.lib.procreg_close
            except AttributeError:  # interpreter shutdown: the OS reclaims it
                return
            close(self)
            self.value = None


_C = TypeVar("_C", bound="_Closing")


class _Closing:
    """``with`` support and a best-effort release when garbage collected,
    for objects whose release is ``_release()`` (idempotent)."""

    def _release(self) -> None:
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

    def __del__(self) -> None:
        try:
            self._release()
        except Exception:
            pass


class Registry(_Closing):
    """A handle on a procreg registry.

    ``url`` is ``"shm:NAME"`` (or a bare name), ``"file:/path"``,
    ``"mem:[NAME]"`` (this process only), or
    ``"etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?ttl=10s&timeout=5s]"`` when the
    library was built with etcd support (``PROCREG_CARGO_FEATURES=etcd``; the
    table options below do not apply to it). Limits left at ``None`` take the
    defaults when creating and the segment's own when opening; ``create`` is
    ``"open_or_create"`` (default), ``"create"`` or ``"open"``.

    One handle may be used from many threads. ``close()`` (or leaving the
    ``with`` block) releases it; later calls raise :class:`RegistryClosed`.
    Entries stay registered after close: they belong to processes, not handles.
    """

    def __init__(
        self,
        url: str = "shm:default",
        *,
        capacity: Optional[int] = None,
        max_name_len: Optional[int] = None,
        max_metadata_len: Optional[int] = None,
        mode: Optional[int] = None,
        create: str = "open_or_create",
        max_namespace_len: Optional[int] = None,
        max_writers: Optional[int] = None,
        lock_timeout_ms: Optional[int] = None,
        allow_foreign_owner: bool = False,
        allow_world_writable: bool = False,
    ) -> None:
        # Set first so that close()/__del__ work whatever fails below.
        self._h: Optional[_Handle] = None
        if not isinstance(url, str):
            raise TypeError(f"url must be str, not {type(url).__name__}")
        if not isinstance(create, str):
            raise TypeError(f"create must be str, not {type(create).__name__}")
        if create not in _CREATE_MODES:
            raise InvalidArgument(
                f"create={create!r}; use 'open_or_create', 'create' or 'open'", _ffi.PROCREG_E_INVALID_ARGUMENT
            )
        if "\0" in url:
            raise InvalidArgument(f"url {url!r} contains a NUL character", _ffi.PROCREG_E_INVALID_ARGUMENT)
        opts = _ffi.ProcregOptions()
        st = _ffi.lib.procreg_options_default(byref(opts))
        if st != 0:
            raise _fail(st)
        opts.capacity = _limit(capacity, "capacity")
        opts.max_namespace_len = _limit(max_namespace_len, "max_namespace_len")
        opts.max_name_len = _limit(max_name_len, "max_name_len")
        opts.max_metadata_len = _limit(max_metadata_len, "max_metadata_len")
        opts.max_writers = _limit(max_writers, "max_writers")
        if lock_timeout_ms is not None:
            v = _limit(lock_timeout_ms, "lock_timeout_ms")
            if v > _U32_MAX:
                raise InvalidArgument(f"lock_timeout_ms={v} is out of range", _ffi.PROCREG_E_INVALID_ARGUMENT)
            opts.lock_timeout_ms = v
        if mode is not None:
            if type(mode) is bool or not isinstance(mode, int):
                raise TypeError(f"mode must be int or None, not {type(mode).__name__}")
            if not 0 <= mode <= 0o7777:
                raise InvalidArgument(f"mode={mode:#o} is out of range; give a file mode such as 0o600", 10)
            opts.mode = mode
        opts.create = _CREATE_MODES[create]
        for flag, value in (("allow_foreign_owner", allow_foreign_owner), ("allow_world_writable", allow_world_writable)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be bool, not {type(value).__name__}")
            setattr(opts, flag, value)
        handle = _Handle()
        st = _ffi.lib.procreg_open(url.encode("utf-8", "surrogateescape"), byref(opts), byref(handle))
        if st != 0:
            raise _fail(st)
        self._h = handle
        #: The url this registry was opened with.
        self.url: str = url
        s = self.stats()
        self._max_metadata_len: int = s.max_metadata_len

    # -- lifetime ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._h is None

    def close(self) -> None:
        """Releases the handle (idempotent). Calls still running in other
        threads finish first: the last of them frees it.

        A :class:`Watcher` from :meth:`watch` or a :class:`Reaper` holds its
        own reference to the registry (inside the library), so it keeps
        working after ``close()``."""
        self._h = None

    def _release(self) -> None:
        self.close()

    def __enter__(self) -> "Registry":
        self._handle()
        return self

    def __repr__(self) -> str:
        state = "closed" if self._h is None else "open"
        return f"<procreg.Registry {getattr(self, 'url', '?')!r} {state}>"

    def _handle(self) -> c_void_p:
        h = self._h
        if h is None:
            raise RegistryClosed(f"registry {getattr(self, 'url', '?')!r} is closed; open a new Registry")
        return h

    def _call(self, fn: Callable[..., int], *args: Any) -> int:
        """Calls ``fn(handle, *args)``; the local ``h`` keeps the handle alive
        across a concurrent close()."""
        h = self._h
        if h is None:
            raise RegistryClosed(f"registry {self.url!r} is closed; open a new Registry")
        return fn(h, *args)

    # -- writing --------------------------------------------------------------------

    def register(self, ns: str, name: str, pid: Optional[int] = None, metadata: Metadata = b"") -> None:
        """Registers (ns, name) for ``pid`` (``None``: this process).

        Raises :class:`AlreadyExists` (with ``.pid``) if a live process holds
        the key; an entry of a dead owner is replaced."""
        nsb = _key(ns, "namespace")
        nameb = _key(name, "name")
        p = None if pid is None else _pid(pid)
        m = _meta(metadata)
        if p is None:
            st = self._call(_ffi.lib.procreg_register_self, nsb, nameb, m, len(m))
        else:
            st = self._call(_ffi.lib.procreg_register, nsb, nameb, p, m, len(m))
        if st != 0:
            raise _fail(st)

    def unregister(self, ns: str, name: str) -> bool:
        """Removes (ns, name); False if it was not registered."""
        nsb = _key(ns, "namespace")
        nameb = _key(name, "name")
        st = self._call(_ffi.lib.procreg_unregister, nsb, nameb)
        if st == 0:
            return True
        if st == _ffi.PROCREG_E_NOT_FOUND:
            return False
        raise _fail(st)

    def update_metadata(self, ns: str, name: str, metadata: Metadata) -> None:
        """Replaces the metadata of (ns, name); :class:`NotFound` if absent."""
        nsb = _key(ns, "namespace")
        nameb = _key(name, "name")
        m = _meta(metadata)
        st = self._call(_ffi.lib.procreg_update_metadata, nsb, nameb, m, len(m))
        if st != 0:
            raise _fail(st)

    def clear_namespace(self, ns: str) -> int:
        """Removes every entry of ``ns``; returns how many."""
        nsb = _key(ns, "namespace")
        n = c_size_t()
        st = self._call(_ffi.lib.procreg_clear_namespace, nsb, byref(n))
        if st != 0:
            raise _fail(st)
        return n.value

    def sweep(self) -> int:
        """Reclaims entries of dead owners and leftovers of dead writers; returns how many."""
        n = c_size_t()
        st = self._call(_ffi.lib.procreg_sweep, byref(n))
        if st != 0:
            raise _fail(st)
        return n.value

    # -- reading ----------------------------------------------------------------------

    def lookup_pid(self, ns: str, name: str) -> Optional[int]:
        """The owner pid of (ns, name), or None (whatever the owner's liveness).

        The fastest read: keys seen before are not re-encoded, and the call
        reuses a per-thread out-parameter."""
        try:
            nsb = _key_cache[ns]
            nameb = _key_cache[name]
        except (KeyError, TypeError):
            nsb = _key(ns, "namespace")
            nameb = _key(name, "name")
        try:
            out, ref = _tls.pid
        except AttributeError:
            out, ref = _pid_out()
        h = self._h
        if h is None:
            raise RegistryClosed(f"registry {self.url!r} is closed; open a new Registry")
        st = _fast_lookup_pid(h, nsb, nameb, ref)
        if st == 0:
            return out.value  # type: ignore[no-any-return]
        if st == 5:  # PROCREG_E_NOT_FOUND
            return None
        raise _fail(st)

    def lookup(self, ns: str, name: str) -> Optional[Entry]:
        """The entry of (ns, name), or None, whatever its owner's liveness."""
        return self._lookup(ns, name, _ffi.fast_lookup, False)

    def lookup_checked(self, ns: str, name: str) -> Optional[Entry]:
        """Like :meth:`lookup`, but None for an entry whose owner is dead (which
        is reclaimed on the way)."""
        return self._lookup(ns, name, _ffi.fast_lookup_checked, True)

    def _lookup(self, ns: str, name: str, fn: Callable[..., int], checked: bool) -> Optional[Entry]:
        try:
            nsb = _key_cache[ns]
            nameb = _key_cache[name]
        except (KeyError, TypeError):
            nsb = _key(ns, "namespace")
            nameb = _key(name, "name")
        try:
            o = _tls.entry
        except AttributeError:
            o = _entry_out()
        h = self._h
        if h is None:
            raise RegistryClosed(f"registry {self.url!r} is closed; open a new Registry")
        # Metadata longer than the thread's buffer: the library reports its
        # length and the call is repeated with a buffer that large.
        st = o.call(fn, h, nsb, nameb)
        if st == 0:
            return o.entry(ns if type(ns) is str else str(ns), name if type(name) is str else str(name))
        if st == _ffi.PROCREG_E_NOT_FOUND:
            return None
        raise _fail(st)

    def lookup_metadata(self, ns: str, name: str) -> Optional[bytes]:
        """Only the metadata of (ns, name), or None; works for any metadata size."""
        nsb = _key(ns, "namespace")
        nameb = _key(name, "name")
        buf = create_string_buffer(max(self._max_metadata_len, 1))
        n = c_size_t()
        while True:
            st = self._call(_ffi.lib.procreg_lookup_metadata, nsb, nameb, buf, len(buf), byref(n))
            if st != _ffi.PROCREG_E_BUFFER_TOO_SMALL:
                break
            buf = create_string_buffer(n.value)
        if st == 0:
            return buf.raw[: n.value]
        if st == _ffi.PROCREG_E_NOT_FOUND:
            return None
        raise _fail(st)

    def _visit(
        self,
        nsb: Optional[bytes],
        out: List[Entry],
        want: Optional[Callable[[Any], bool]] = None,
        stop_after_first: bool = False,
    ) -> None:
        """Collects entries of ``nsb`` (every namespace if None) into ``out``."""
        errors: List[BaseException] = []

        def visit(p: Any, _ctx: Any) -> int:
            try:
                v = p.contents
                if want is not None and not want(v):
                    return 0
                n = v.metadata_len
                out.append(
                    _entry(
                        v.ns.decode("utf-8", "replace"),
                        v.name.decode("utf-8", "replace"),
                        v.pid,
                        string_at(v.metadata, n) if n else b"",
                        v.registered_at_ns,
                        v.version,
                        _host(v.host),
                    )
                )
                return 1 if stop_after_first else 0
            except BaseException as e:  # never let an exception cross into C
                errors.append(e)
                return 1

        cb = _ffi.VISIT_FN(visit)
        if nsb is None:
            st = self._call(_ffi.lib.procreg_list_all, cb, None)
        else:
            st = self._call(_ffi.lib.procreg_list, nsb, cb, None)
        if st != 0:
            raise _fail(st)
        if errors:
            raise errors[0]

    def list(self, ns: str) -> List[Entry]:
        """Every entry of ``ns``, sorted by name."""
        nsb = _key(ns, "namespace")
        out: List[Entry] = []
        self._visit(nsb, out)
        out.sort(key=lambda e: e.name)
        return out

    def list_all(self) -> List[Entry]:
        """Every entry of every namespace, sorted by (namespace, name)."""
        out: List[Entry] = []
        self._visit(None, out)
        out.sort(key=lambda e: (e.namespace, e.name))
        return out

    def namespaces(self) -> List[str]:
        """The namespaces that hold at least one entry, sorted."""
        seen: Set[bytes] = set()
        errors: List[BaseException] = []

        def visit(p: Any, _ctx: Any) -> int:
            try:
                seen.add(p.contents.ns)
                return 0
            except BaseException as e:
                errors.append(e)
                return 1

        cb = _ffi.VISIT_FN(visit)
        st = self._call(_ffi.lib.procreg_list_all, cb, None)
        if st != 0:
            raise _fail(st)
        if errors:
            raise errors[0]
        return sorted(b.decode("utf-8", "replace") for b in seen)

    def stats(self) -> Stats:
        """Sizes and counters of the registry."""
        s = _ffi.ProcregStats()
        st = self._call(_ffi.lib.procreg_stats, byref(s))
        if st != 0:
            raise _fail(st)
        t = bool(s.has_table)

        def table(v: Any) -> Any:
            return v if t else None

        return Stats(
            backend=(s.backend or b"").decode("utf-8", "replace"),
            capacity=table(s.capacity),
            live=s.live,
            tombstones=table(s.tombstones),
            claimed=table(s.claimed),
            max_probe_distance=table(s.max_probe_distance),
            mean_miss_groups=table(s.mean_miss_groups),
            segment_bytes=table(s.segment_bytes),
            created_at=_time(s.created_at_ns) if t else None,
            max_namespace_len=s.max_namespace_len,
            max_name_len=s.max_name_len,
            max_metadata_len=s.max_metadata_len,
            registers=table(s.registers),
            unregisters=table(s.unregisters),
            updates=table(s.updates),
            reclaimed=table(s.reclaimed),
            stuck_recovered=table(s.stuck_recovered),
            locks_stolen=table(s.locks_stolen),
            changes=s.revision,
            process=ProcessCounters(
                registers=s.process_registers,
                lookup_hits=s.process_lookup_hits,
                lookup_misses=s.process_lookup_misses,
                unregisters=s.process_unregisters,
                updates=s.process_updates,
                reclaimed=s.process_reclaimed,
                busy=s.process_busy,
            ),
            has_table=t,
        )

    def health(self) -> Health:
        """Checks owners and leftovers of dead writers."""
        h = _ffi.ProcregHealth()
        buf = create_string_buffer(_ffi.PROBLEMS_BUFFER)
        n = c_size_t()
        while True:
            st = self._call(_ffi.lib.procreg_health, byref(h), buf, len(buf), byref(n))
            if st != 0:
                raise _fail(st)
            if n.value < len(buf):
                break
            buf = create_string_buffer(n.value + 1)  # cut like snprintf: ask again
        text = buf.value.decode("utf-8", "replace")
        try:
            mode: Union[LivenessMode, int] = LivenessMode(h.liveness_mode)
        except ValueError:
            mode = h.liveness_mode
        return Health(
            healthy=bool(h.healthy),
            header_valid=bool(h.header_valid) if h.has_table else None,
            load_factor=h.load_factor if h.has_table else None,
            live=h.live,
            alive_owners=h.alive_owners,
            dead_owners=h.dead_owners,
            unknown_owners=h.unknown_owners,
            expired_leases=h.expired_leases,
            stuck_slots=h.stuck_slots if h.has_table else None,
            liveness_mode=mode,
            problem_count=h.problem_count,
            problems=[p for p in text.split("\n") if p],
        )

    # -- waiting, watching, leases, reaping ---------------------------------------------

    def revision(self) -> int:
        """The latest committed revision: every committed change of any process adds one."""
        out = c_uint64()
        st = self._call(_ffi.lib.procreg_revision, byref(out))
        if st != 0:
            raise _fail(st)
        return out.value

    def wait_for(self, ns: str, name: str, timeout: Optional[float]) -> Entry:
        """Waits until (ns, name) is registered by a live owner and returns its
        entry; at once if it already is. ``timeout`` is in seconds (``None``:
        no limit). Raises :class:`Timeout` when it runs out.

        The library sleeps on a futex shared by every process of the segment
        (no polling) with the GIL released, so other threads run meanwhile.
        Long waits are made of calls of at most 0.25 s, so Ctrl-C and a
        ``close()`` from another thread (:class:`RegistryClosed`) take effect."""
        nsb = _key(ns, "namespace")
        nameb = _key(name, "name")
        deadline = None if timeout is None else time.monotonic() + _seconds(timeout, "timeout")
        out = _EntryOut(self._max_metadata_len)
        while True:
            if deadline is None:
                ms = _WAIT_SLICE_MS
            else:
                ms = min(_WAIT_SLICE_MS, max(0, math.ceil((deadline - time.monotonic()) * 1000)))
            # After a too-small buffer the key is registered: the retry with
            # a buffer of the reported size returns at once.
            st = out.call(lambda *a: self._call(_ffi.lib.procreg_wait_for, *a), nsb, nameb, ms)
            if st == 0:
                return out.entry(ns, name)
            if st != _ffi.PROCREG_E_TIMEOUT:
                raise _fail(st)
            if deadline is not None and time.monotonic() >= deadline:
                raise Timeout(
                    f"key {name!r} in namespace {ns!r} was not registered by a live process "
                    f"within {timeout} s",
                    _ffi.PROCREG_E_TIMEOUT,
                )

    def register_with_lease(
        self, ns: str, name: str, ttl: float, pid: Optional[int] = None, metadata: Metadata = b""
    ) -> None:
        """Registers (ns, name) for ``pid`` (``None``: this process) with a
        lease of ``ttl`` seconds (1 ms to about 4.6 hours, kept to whole
        milliseconds): the entry expires unless :meth:`keepalive` renews it in
        time, even if its owner is alive but hung. An expired entry is hidden
        from :meth:`lookup_checked`, counted in ``health().expired_leases``
        and reclaimed by :meth:`sweep` (or a :class:`Reaper`)."""
        nsb = _key(ns, "namespace")
        nameb = _key(name, "name")
        ms = _millis(_seconds(ttl, "ttl"), "ttl", minimum=1)
        p = os.getpid() if pid is None else _pid(pid)
        m = _meta(metadata)
        st = self._call(_ffi.lib.procreg_register_with_lease, nsb, nameb, p, m, len(m), ms)
        if st != 0:
            raise _fail(st)

    def keepalive(self, ns: str, name: str) -> None:
        """Renews the lease of (ns, name) for another ttl. :class:`NotFound` if
        it is absent or already expired; :class:`InvalidArgument` if it was
        registered without a lease."""
        nsb = _key(ns, "namespace")
        nameb = _key(name, "name")
        st = self._call(_ffi.lib.procreg_keepalive, nsb, nameb)
        if st != 0:
            raise _fail(st)

    def watch(self, ns: Optional[str] = None, from_revision: Optional[int] = None) -> "Watcher":
        """A :class:`Watcher` of the changes of ``ns`` (``None``: every
        namespace) after revision ``from_revision`` (``None``: the current
        :meth:`revision`, i.e. only what happens from now on)."""
        nsb = None if ns is None else _key(ns, "namespace")
        if from_revision is None:
            from_revision = self.revision()
        elif type(from_revision) is bool or not isinstance(from_revision, int):
            raise TypeError(f"from_revision must be int or None, not {type(from_revision).__name__}")
        elif not 0 <= from_revision <= _U64_MAX:
            raise InvalidArgument(f"from_revision={from_revision} is out of range", 10)
        w = c_void_p()
        st = self._call(_ffi.lib.procreg_watch, nsb, int(from_revision), byref(w))
        if st != 0:
            raise _fail(st)
        return Watcher(w, ns, int(from_revision))

    def spawn_reaper(self, interval: float = 1.0) -> "Reaper":
        """Starts a thread (in this process, inside the library) that reclaims
        entries within milliseconds of their owners' death (it holds a pidfd
        per owner) and sweeps every ``interval`` seconds anyway (expired
        leases, owners in other PID namespaces). It holds its own reference to
        the registry, so it outlives :meth:`close`; stop it with
        :meth:`Reaper.stop` or a ``with`` block."""
        ms = _millis(_seconds(interval, "interval"), "interval", minimum=1)
        r = c_void_p()
        st = self._call(_ffi.lib.procreg_reaper_start, ms, byref(r))
        if st != 0:
            raise _fail(st)
        return Reaper(r, self.url)

    # -- test isolation ---------------------------------------------------------------

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


_EVENT_KINDS = {k.value: k for k in EventKind}


class Watcher(_Closing):
    """A stream of the registry's changes, from :meth:`Registry.watch`.

    ``next(timeout)`` returns the next :class:`Event`; iterating yields events
    until the watcher is closed, waiting as long as it takes. Events come in
    revision order. When the watcher fell behind the change history,
    :class:`Lagged` is raised once (re-read with :meth:`Registry.list`; the
    watcher then continues after the latest revision).

    A watcher is used by one thread at a time (a second concurrent ``next``
    raises ``RuntimeError``); ``close()`` may come from any thread: it frees
    the watcher at once, or, when a ``next`` is running, as soon as that call
    returns (within 0.25 s), which then raises :class:`RegistryClosed` (ends
    the iteration). The library's watcher holds its own reference to the
    registry, so it keeps working after :meth:`Registry.close`.
    """

    def __init__(self, w: c_void_p, ns: Optional[str], from_revision: int) -> None:
        self._w: Optional[c_void_p] = w
        self._lock = threading.Lock()
        self._closing = False
        self._ev = _ffi.ProcregEvent()
        #: The namespace watched (None: every namespace).
        self.namespace: Optional[str] = ns
        #: The revision the watcher started after.
        self.from_revision: int = from_revision

    # -- lifetime ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closing

    def _free(self) -> None:
        """Frees the C watcher (caller holds _lock)."""
        w = self._w
        self._w = None
        if w is not None and w.value:
            _ffi.lib.procreg_watch_close(w)

    def close(self) -> None:
        """Stops the watcher (idempotent, any thread)."""
        self._closing = True
        if self._lock.acquire(blocking=False):
            try:
                self._free()
            finally:
                self._lock.release()
        # else: the thread inside next() frees it when its call returns.

    def _release(self) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closing else "open"
        return f"<procreg.Watcher namespace={self.namespace!r} {state}>"

    # -- events --------------------------------------------------------------------

    def next(self, timeout: Optional[float] = None) -> Event:
        """The next change, waiting up to ``timeout`` seconds (``None``: no
        limit). Raises :class:`Timeout` if none came, :class:`Lagged` if
        changes were overwritten before they were read (``missed`` is None:
        the C ABI does not report the count), :class:`RegistryClosed` after
        :meth:`close`. The wait releases the GIL."""
        deadline = None if timeout is None else time.monotonic() + _seconds(timeout, "timeout")
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("Watcher.next is running in another thread; use a watcher from one thread at a time")
        try:
            ev = self._ev
            ref = byref(ev)
            while True:
                w = self._w
                if w is None or self._closing:
                    raise RegistryClosed(f"watcher of namespace {self.namespace!r} is closed")
                if deadline is None:
                    ms = _WAIT_SLICE_MS
                else:
                    ms = min(_WAIT_SLICE_MS, max(0, math.ceil((deadline - time.monotonic()) * 1000)))
                st = _ffi.lib.procreg_watch_next(w, ms, ref)
                if st == 0:
                    # ns/name are valid until the next call on the watcher:
                    # read (copied into bytes) while holding the lock.
                    return Event(
                        revision=ev.revision,
                        kind=_EVENT_KINDS.get(ev.kind, EventKind.LOST),
                        namespace=(ev.ns or b"").decode("utf-8", "replace"),
                        name=(ev.name or b"").decode("utf-8", "replace"),
                        pid=ev.pid,
                        version=ev.version,
                        at=_time(ev.at_ns),
                        host=_host(ev.host),
                    )
                if st == _ffi.PROCREG_E_LAGGED:
                    msg, _ = _ffi.last_error()
                    raise Lagged(msg or _ffi.strerror(st), st, missed=None)
                if st != _ffi.PROCREG_E_TIMEOUT:
                    raise _fail(st)
                if deadline is not None and time.monotonic() >= deadline:
                    raise Timeout(f"no change within {timeout} s", _ffi.PROCREG_E_TIMEOUT)
        finally:
            self._lock.release()
            if self._closing and self._w is not None and self._lock.acquire(blocking=False):
                try:
                    self._free()
                finally:
                    self._lock.release()

    def __iter__(self) -> "Watcher":
        return self

    def __next__(self) -> Event:
        try:
            return self.next(None)
        except RegistryClosed:
            raise StopIteration from None


class Reaper(_Closing):
    """A reaper thread from :meth:`Registry.spawn_reaper`: reclaims entries of
    dead owners within milliseconds, until :meth:`stop` (or the end of a
    ``with`` block, or garbage collection)."""

    def __init__(self, r: c_void_p, url: str) -> None:
        self._r: Optional[c_void_p] = r
        self._lock = threading.Lock()
        self._final = 0
        #: The url of the registry it reaps.
        self.url = url

    @property
    def running(self) -> bool:
        """True until :meth:`stop`."""
        return self._r is not None

    @property
    def reclaimed(self) -> int:
        """How many entries the reaper reclaimed so far (after stop: at stop)."""
        with self._lock:
            r = self._r
            if r is None:
                return self._final
            out = c_uint64()
            st = _ffi.lib.procreg_reaper_reclaimed(r, byref(out))
            if st != 0:
                raise _fail(st)
            return out.value

    def stop(self) -> None:
        """Stops the thread and frees the reaper (idempotent). Raises the
        error that had stopped it early, if any."""
        with self._lock:
            r = self._r
            if r is None:
                return
            out = c_uint64()
            if _ffi.lib.procreg_reaper_reclaimed(r, byref(out)) == 0:
                self._final = out.value
            self._r = None
            st = _ffi.lib.procreg_reaper_stop(r)
        if st != 0:
            raise _fail(st)

    def _release(self) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._r is not None else "stopped"
        return f"<procreg.Reaper {self.url!r} {state}>"


def destroy(url: str) -> None:
    """Removes the segment at ``url`` (only a procreg segment, only by its
    creator's user). Open handles keep working on the unlinked file."""
    if not isinstance(url, str):
        raise TypeError(f"url must be str, not {type(url).__name__}")
    if "\0" in url:
        raise InvalidArgument(f"url {url!r} contains a NUL character", 10)
    st = _ffi.lib.procreg_destroy(url.encode("utf-8", "surrogateescape"))
    if st != 0:
        raise _fail(st)
