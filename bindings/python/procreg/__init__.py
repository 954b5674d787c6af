"""procreg: a process registry for OS processes, from Python.

Processes register services under ``(namespace, name)`` in a shared-memory
hash table and find each other's pid and metadata in well under a
microsecond, without a daemon. Entries of dead processes are reclaimed by
:meth:`Registry.sweep`.

>>> import procreg
>>> with procreg.Registry("mem:doc") as reg:
...     reg.register("web", "api", metadata={"port": 8080})
...     reg.lookup("web", "api").metadata_json()
{'port': 8080}

The shared library is the one built into the package at install time, or
``$PROCREG_LIBRARY`` when set.
"""

from __future__ import annotations

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
from ._ffi import LIBRARY_PATH, PROCREG_METADATA_CAPACITY, library_version
from ._registry import (
    Entry,
    Event,
    EventKind,
    Health,
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

__all__ = [
    "Registry",
    "Entry",
    "Stats",
    "ProcessCounters",
    "Health",
    "Watcher",
    "Event",
    "EventKind",
    "Reaper",
    "LivenessMode",
    "Metadata",
    "destroy",
    "library_version",
    "LIBRARY_PATH",
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
