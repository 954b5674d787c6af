"""procreg: a process registry for OS processes, from Python.

Processes register services under ``(namespace, name)`` in a shared-memory
hash table and find each other's pid and metadata in about the time of a
``dict`` lookup, without a daemon. Entries of dead processes are reclaimed by
:meth:`Registry.sweep` (or a :class:`Reaper`).

>>> import procreg
>>> with procreg.Registry("mem:doc") as reg:
...     reg.register("web", "api", metadata={"port": 8080})
...     reg.lookup("web", "api").metadata_json()
{'port': 8080}

The registry itself is the procreg Rust library, compiled into the extension
module ``procreg._native``.
"""

from __future__ import annotations

from . import _native
from ._errors import (
    AlreadyExists,
    BufferTooSmall,
    Busy,
    IncompatibleSegment,
    InternalPanic,
    InvalidArgument,
    InvalidKey,
    InvalidUtf8,
    IoError,
    Lagged,
    Unavailable,
    MetadataTooLarge,
    NoSuchRegistry,
    NotFound,
    NullArgument,
    PermissionDenied,
    ProcessNotAlive,
    RegistryClosed,
    RegistryError,
    RegistryExists,
    RegistryFull,
    Timeout,
    UnknownError,
    STATUS_CLASSES,
)
from ._native import Key, Service, library_version
from ._registry import (
    Entry,
    Event,
    EventKind,
    Health,
    Liveness,
    LivenessMode,
    Metadata,
    ProcessCounters,
    Reaper,
    Registry,
    Stats,
    Watcher,
    destroy,
)

__version__ = "0.1.0"

#: Path of the compiled extension module (the procreg library is inside it).
LIBRARY_PATH: str = _native.__file__ or ""
#: Whether this build opens ``etcd://`` registries.
HAS_ETCD: bool = _native.ETCD
#: Kept for compatibility with the ctypes binding, whose lookups started with
#: a per-thread metadata buffer of this size; the extension reads metadata of
#: any length in one call.
PROCREG_METADATA_CAPACITY = 4096

__all__ = [
    "Registry",
    "Key",
    "Service",
    "Entry",
    "Stats",
    "ProcessCounters",
    "Health",
    "Watcher",
    "Event",
    "EventKind",
    "Reaper",
    "Liveness",
    "LivenessMode",
    "Metadata",
    "destroy",
    "library_version",
    "LIBRARY_PATH",
    "HAS_ETCD",
    "PROCREG_METADATA_CAPACITY",
    "STATUS_CLASSES",
    "RegistryError",
    "AlreadyExists",
    "InvalidKey",
    "MetadataTooLarge",
    "ProcessNotAlive",
    "NotFound",
    "RegistryFull",
    "Busy",
    "IncompatibleSegment",
    "PermissionDenied",
    "InvalidArgument",
    "NoSuchRegistry",
    "RegistryExists",
    "IoError",
    "Timeout",
    "Lagged",
    "Unavailable",
    "NullArgument",
    "InvalidUtf8",
    "BufferTooSmall",
    "InternalPanic",
    "UnknownError",
    "RegistryClosed",
]
