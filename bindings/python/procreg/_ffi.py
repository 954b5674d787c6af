"""ctypes declarations of ``include/procreg.h`` and loading of the shared library.

Every struct here mirrors the header field by field; ``tests/test_layout.py``
compiles a C program against the header and checks sizes and offsets.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_double,
    c_int,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Type

from . import _errors
from ._checkout import repo_root

#: The header version these declarations were written against.
HEADER_VERSION = (0, 1)

#: Bytes of the per-thread metadata buffer a lookup starts with. Longer
#: metadata costs one more call: the library reports the length needed
#: (PROCREG_E_BUFFER_TOO_SMALL) and the lookup retries with a buffer that
#: large, which the thread then keeps.
PROCREG_METADATA_CAPACITY = 4096
#: Bytes of the buffer procreg_health's problem text starts with.
PROBLEMS_BUFFER = 512

# procreg_create_mode
PROCREG_OPEN_OR_CREATE = 0
PROCREG_CREATE = 1
PROCREG_OPEN = 2



def _status(cls: Type[_errors.RegistryError]) -> int:
    assert cls.STATUS is not None
    return cls.STATUS


# procreg_status values the binding itself branches on (from the exception
# table, which a test checks against the header).
PROCREG_OK = 0
PROCREG_E_ALREADY_EXISTS = _status(_errors.AlreadyExists)
PROCREG_E_INVALID_KEY = _status(_errors.InvalidKey)
PROCREG_E_NOT_FOUND = _status(_errors.NotFound)
PROCREG_E_INVALID_ARGUMENT = _status(_errors.InvalidArgument)
PROCREG_E_TIMEOUT = _status(_errors.Timeout)
PROCREG_E_LAGGED = _status(_errors.Lagged)
PROCREG_E_BUFFER_TOO_SMALL = _status(_errors.BufferTooSmall)


class _Sized(Structure):
    """A struct whose first field is ``size_t struct_size``, set to its size
    on construction (the library checks it; see ``src/ffi/sized.rs``)."""

    def __init__(self) -> None:
        super().__init__()
        self.struct_size = ctypes.sizeof(self)


class ProcregOptions(_Sized):
    """``struct procreg_options``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("capacity", c_size_t),
        ("max_namespace_len", c_size_t),
        ("max_name_len", c_size_t),
        ("max_metadata_len", c_size_t),
        ("max_writers", c_size_t),
        ("mode", c_uint32),
        ("lock_timeout_ms", c_uint32),
        ("create", c_int),  # enum procreg_create_mode
        ("allow_foreign_owner", c_bool),
        ("allow_world_writable", c_bool),
    ]


class ProcregEntry(_Sized):
    """``struct procreg_entry``; the metadata goes to a separate buffer.
    ``host`` is an interned string of the library (valid until the process
    exits), so its address identifies it."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("pid", c_uint32),
        ("registered_at_ns", c_uint64),
        ("version", c_uint64),
        ("host", c_void_p),
    ]


class ProcregEntryView(Structure):
    """``struct procreg_entry_view`` (filled by the library)."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("ns", c_char_p),
        ("name", c_char_p),
        ("host", c_void_p),
        ("pid", c_uint32),
        ("registered_at_ns", c_uint64),
        ("version", c_uint64),
        ("metadata", c_void_p),
        ("metadata_len", c_size_t),
    ]


class ProcregStats(_Sized):
    """``struct procreg_stats_t``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("backend", c_char_p),
        ("live", c_size_t),
        ("revision", c_uint64),
        ("capacity", c_size_t),
        ("max_namespace_len", c_size_t),
        ("max_name_len", c_size_t),
        ("max_metadata_len", c_size_t),
        ("min_lease_ttl_ms", c_uint64),
        ("max_lease_ttl_ms", c_uint64),
        ("process_registers", c_uint64),
        ("process_lookup_hits", c_uint64),
        ("process_lookup_misses", c_uint64),
        ("process_unregisters", c_uint64),
        ("process_updates", c_uint64),
        ("process_reclaimed", c_uint64),
        ("process_busy", c_uint64),
        ("has_table", c_bool),
        ("tombstones", c_size_t),
        ("claimed", c_size_t),
        ("max_probe_distance", c_size_t),
        ("mean_miss_groups", c_double),
        ("segment_bytes", c_size_t),
        ("created_at_ns", c_uint64),
        ("registers", c_uint64),
        ("unregisters", c_uint64),
        ("updates", c_uint64),
        ("reclaimed", c_uint64),
        ("stuck_recovered", c_uint64),
        ("locks_stolen", c_uint64),
    ]


class ProcregHealth(_Sized):
    """``struct procreg_health_t``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("backend", c_char_p),
        ("healthy", c_bool),
        ("live", c_size_t),
        ("alive_owners", c_size_t),
        ("dead_owners", c_size_t),
        ("unknown_owners", c_size_t),
        ("expired_leases", c_size_t),
        ("liveness_mode", c_int),  # enum procreg_liveness_mode
        ("problem_count", c_size_t),
        ("has_table", c_bool),
        ("header_valid", c_bool),
        ("load_factor", c_double),
        ("stuck_slots", c_size_t),
    ]


class ProcregEvent(_Sized):
    """``struct procreg_event``. ``ns`` and ``name`` point into the watcher
    and stay valid until its next ``procreg_watch_next`` or close: ctypes copies
    them into ``bytes`` on attribute access, which the binding does at once.
    ``host`` is interned by the library (valid until the process exits)."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("revision", c_uint64),
        ("kind", c_int),  # enum procreg_event_kind
        ("pid", c_uint32),
        ("version", c_uint64),
        ("at_ns", c_uint64),
        ("ns", c_char_p),
        ("name", c_char_p),
        ("host", c_void_p),
    ]


#: ``procreg_visit_fn``
VISIT_FN = CFUNCTYPE(c_int, POINTER(ProcregEntryView), c_void_p)

_LIB_NAMES = ("libprocreg.dylib",) if sys.platform == "darwin" else ("libprocreg.so",)


def find_library() -> str:
    """Path of the shared library: ``$PROCREG_LIBRARY``, else the copy shipped
    inside this package, else (running from a source checkout) the cargo build
    output."""
    env = os.environ.get("PROCREG_LIBRARY")
    if env:
        if not os.path.exists(env):
            raise ImportError(f"PROCREG_LIBRARY={env!r} does not exist; point it at libprocreg.so")
        return env
    here = Path(__file__).resolve().parent
    for name in _LIB_NAMES:
        if (here / name).exists():
            return str(here / name)
    root = repo_root(here)
    if root is not None:
        target = Path(os.environ.get("CARGO_TARGET_DIR") or root / "target")
        for name in _LIB_NAMES:
            p = target / "release" / name
            if p.exists():
                return str(p)
    raise ImportError(
        "procreg: shared library not found in the package; reinstall with "
        "`pip install ./bindings/python` (it builds it with cargo), run "
        "`cargo build --release --lib`, or set PROCREG_LIBRARY to libprocreg.so"
    )


def _declare(lib: ctypes.CDLL) -> None:
    P = c_void_p  # opaque struct procreg *
    s = c_char_p
    E = POINTER(ProcregEntry)
    sig = {
        "procreg_version": ([], c_char_p),
        "procreg_strerror": ([c_int], c_char_p),
        "procreg_last_error_message": ([c_char_p, c_size_t], c_size_t),
        "procreg_last_error_pid": ([], c_uint32),
        "procreg_options_default": ([POINTER(ProcregOptions)], c_int),
        "procreg_open": ([s, POINTER(ProcregOptions), POINTER(c_void_p)], c_int),
        "procreg_close": ([P], None),
        "procreg_destroy": ([s], c_int),
        "procreg_register": ([P, s, s, c_uint32, c_char_p, c_size_t], c_int),
        "procreg_register_self": ([P, s, s, c_char_p, c_size_t], c_int),
        "procreg_unregister": ([P, s, s], c_int),
        "procreg_update_metadata": ([P, s, s, c_char_p, c_size_t], c_int),
        "procreg_sweep": ([P, POINTER(c_size_t)], c_int),
        "procreg_clear_namespace": ([P, s, POINTER(c_size_t)], c_int),
        "procreg_lookup": ([P, s, s, E, c_void_p, c_size_t, POINTER(c_size_t)], c_int),
        "procreg_lookup_metadata": ([P, s, s, c_void_p, c_size_t, POINTER(c_size_t)], c_int),
        "procreg_lookup_pid": ([P, s, s, POINTER(c_uint32)], c_int),
        "procreg_lookup_checked": ([P, s, s, E, c_void_p, c_size_t, POINTER(c_size_t)], c_int),
        "procreg_list": ([P, s, VISIT_FN, c_void_p], c_int),
        "procreg_list_all": ([P, VISIT_FN, c_void_p], c_int),
        "procreg_stats": ([P, POINTER(ProcregStats)], c_int),
        "procreg_health": ([P, POINTER(ProcregHealth), c_char_p, c_size_t, POINTER(c_size_t)], c_int),
        "procreg_revision": ([P, POINTER(c_uint64)], c_int),
        "procreg_wait_for": ([P, s, s, c_uint64, E, c_void_p, c_size_t, POINTER(c_size_t)], c_int),
        "procreg_register_with_lease": ([P, s, s, c_uint32, c_char_p, c_size_t, c_uint64], c_int),
        "procreg_keepalive": ([P, s, s], c_int),
        # struct procreg_watcher * and struct procreg_reaper * are opaque too.
        "procreg_watch": ([P, s, c_uint64, POINTER(c_void_p)], c_int),
        "procreg_watch_next": ([c_void_p, c_uint64, POINTER(ProcregEvent)], c_int),
        "procreg_watch_close": ([c_void_p], None),
        "procreg_reaper_start": ([P, c_uint64, POINTER(c_void_p)], c_int),
        "procreg_reaper_reclaimed": ([c_void_p, POINTER(c_uint64)], c_int),
        "procreg_reaper_stop": ([c_void_p], c_int),
    }
    for name, (args, res) in sig.items():
        f = getattr(lib, name)
        f.argtypes = args
        f.restype = res


LIBRARY_PATH: str = find_library()

#: Every function with argtypes/restype set: the checked path, used by all
#: calls except the lookups below.
lib = ctypes.CDLL(LIBRARY_PATH)
_declare(lib)

# The hot lookups go through a second, argtypes-free view of the same library:
# ctypes' per-argument conversion through argtypes costs about 280 ns per call,
# more than the lookup itself. The binding validates every argument before
# these calls and passes only bytes, the handle (a c_void_p) and byref()
# objects, which ctypes maps to the C types without conversion.
#
# Arguments of type size_t are passed as c_size_t objects (a bare int would
# go as a C int).
#
# procreg_lookup_pid and procreg_lookup only load from the segment and finish
# in bounded work (a reader never waits for a writer), so they are called
# without releasing the GIL (PyDLL), which saves its release and re-take.
# procreg_lookup_checked may reclaim a dead owner's entry (a write that can
# wait for a lock): it releases the GIL like every other call.
_fast_gil = ctypes.PyDLL(LIBRARY_PATH)
_fast_nogil = ctypes.CDLL(LIBRARY_PATH)
fast_lookup_pid = _fast_gil.procreg_lookup_pid
fast_lookup_pid.restype = c_int
fast_lookup = _fast_gil.procreg_lookup
fast_lookup.restype = c_int
fast_lookup_checked = _fast_nogil.procreg_lookup_checked
fast_lookup_checked.restype = c_int


def library_version() -> str:
    """The loaded library's version string."""
    v = lib.procreg_version()
    return v.decode() if v else "unknown"


def _check_version() -> None:
    v = library_version()
    try:
        major, minor = (int(x) for x in v.split(".")[:2])
    except ValueError:
        raise ImportError(f"procreg: {LIBRARY_PATH} reports version {v!r}, expected 0.1.x") from None
    if (major, minor) != HEADER_VERSION:
        raise ImportError(
            f"procreg: {LIBRARY_PATH} is version {v}, but this binding was written for "
            f"{HEADER_VERSION[0]}.{HEADER_VERSION[1]}.x; reinstall the binding from the same checkout"
        )


_check_version()


def last_error() -> tuple[str, int]:
    """The message and AlreadyExists pid of the last failed call on this thread."""
    buf = ctypes.create_string_buffer(512)
    n = lib.procreg_last_error_message(buf, len(buf))
    if n >= len(buf):
        buf = ctypes.create_string_buffer(n + 1)
        lib.procreg_last_error_message(buf, len(buf))
    msg = buf.value.decode("utf-8", "replace")
    return msg, int(lib.procreg_last_error_pid())


def strerror(status: int) -> str:
    """The library's static description of a status."""
    s = lib.procreg_strerror(status)
    return s.decode("utf-8", "replace") if s else ""
