"""The exception hierarchy: one class per kind of procreg error, each also
a subclass of the matching builtin exception (``Timeout`` is a
``TimeoutError``, ``InvalidKey`` a ``ValueError``, ``NotFound`` a
``LookupError``, ``NoSuchRegistry`` a ``FileNotFoundError``...), so that
code that knows nothing of procreg catches them as it would expect.

``status`` is the number of the same error in the C ABI (``procreg_status``
in ``include/procreg.h``, declared once in ``src/ffi/status_list.rs``); the
test ``test_status_classes_match_the_header_enum`` fails when this table and
the header disagree on any number or name."""

from __future__ import annotations

from typing import Dict, Optional, Type


class RegistryError(Exception):
    """Base of every error procreg raises.

    ``status`` is the library's ``procreg_status`` number (``None`` only for
    :class:`RegistryClosed`, which the binding raises without calling the
    library); ``message`` is the library's detailed message.
    """

    #: The ``procreg_status`` this class stands for.
    STATUS: Optional[int] = None
    #: Its C name in ``include/procreg.h`` (checked against the header by
    #: ``tests/test_api.py``, so this table cannot drift from the library's).
    C_NAME: Optional[str] = None

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message: str = message
        self.status: Optional[int] = self.STATUS if status is None else status

    def __str__(self) -> str:
        return self.message


class AlreadyExists(RegistryError):
    """The key is registered already by a live process (``.pid`` tells which)."""

    STATUS = 1
    C_NAME = "PROCREG_E_ALREADY_EXISTS"

    def __init__(self, message: str, status: Optional[int] = None, pid: int = 0) -> None:
        super().__init__(message, status)
        #: Owner of the existing entry (0 if the library did not say).
        self.pid: int = pid


class InvalidKey(RegistryError, ValueError):
    """The namespace or name is empty, too long for this registry, or holds a NUL."""

    STATUS = 2
    C_NAME = "PROCREG_E_INVALID_KEY"


class MetadataTooLarge(RegistryError, ValueError):
    """The metadata is larger than this registry allows."""

    STATUS = 3
    C_NAME = "PROCREG_E_METADATA_TOO_LARGE"


class ProcessNotAlive(RegistryError, ProcessLookupError):
    """The pid given as owner is not a running process."""

    STATUS = 4
    C_NAME = "PROCREG_E_PROCESS_NOT_ALIVE"


class NotFound(RegistryError, LookupError):
    """The key is not registered."""

    STATUS = 5
    C_NAME = "PROCREG_E_NOT_FOUND"


class RegistryFull(RegistryError):
    """No free slot near the key's home: sweep, unregister, or use a larger capacity."""

    STATUS = 6
    C_NAME = "PROCREG_E_FULL"


class Busy(RegistryError):
    """A concurrent writer kept the slot or its neighbourhood busy; retry."""

    STATUS = 7
    C_NAME = "PROCREG_E_BUSY"


class IncompatibleSegment(RegistryError):
    """The segment is not one this library can use, or its limits differ from those asked for."""

    STATUS = 8
    C_NAME = "PROCREG_E_INCOMPATIBLE_SEGMENT"


class PermissionDenied(RegistryError, PermissionError):
    """The segment's owner, mode or permissions forbid using it."""

    STATUS = 9
    C_NAME = "PROCREG_E_PERMISSION_DENIED"


class InvalidArgument(RegistryError, ValueError):
    """An argument other than the key is out of range (an option, a url, pid 0)."""

    STATUS = 10
    C_NAME = "PROCREG_E_INVALID_ARGUMENT"


class NoSuchRegistry(RegistryError, FileNotFoundError):
    """No registry exists at the url and the call does not create one."""

    STATUS = 11
    C_NAME = "PROCREG_E_NO_SUCH_REGISTRY"


class RegistryExists(RegistryError, FileExistsError):
    """A registry exists at the url and the call demanded to create it."""

    STATUS = 12
    C_NAME = "PROCREG_E_REGISTRY_EXISTS"


class IoError(RegistryError, OSError):
    """An operating-system call failed (the message names it)."""

    STATUS = 13
    C_NAME = "PROCREG_E_IO"


class Timeout(RegistryError, TimeoutError):
    """A wait ended before what it waited for happened."""

    STATUS = 14
    C_NAME = "PROCREG_E_TIMEOUT"


class Lagged(RegistryError):
    """A watcher fell behind the change history; re-read with
    :meth:`Registry.list` and keep watching (the watcher continues after the
    latest revision).

    ``missed`` is how many changes were lost.
    """

    STATUS = 15
    C_NAME = "PROCREG_E_LAGGED"

    def __init__(self, message: str, status: Optional[int] = None, missed: Optional[int] = None) -> None:
        super().__init__(message, status)
        #: Changes lost, or None when the library did not say.
        self.missed: Optional[int] = missed


class Unavailable(RegistryError, ConnectionError):
    """A networked registry's cluster did not answer within the handle's
    timeout, or this handle's session lease is lost and its writes are fenced.
    The message names the endpoints tried and what to do."""

    STATUS = 16
    C_NAME = "PROCREG_E_UNAVAILABLE"


class NullArgument(RegistryError):
    """A pointer argument was NULL (C ABI only; never raised by this binding)."""

    STATUS = 100
    C_NAME = "PROCREG_E_NULL_ARGUMENT"


class InvalidUtf8(RegistryError, ValueError):
    """A string argument is not valid UTF-8."""

    STATUS = 101
    C_NAME = "PROCREG_E_INVALID_UTF8"


class BufferTooSmall(RegistryError):
    """The caller's buffer cannot hold the result (C ABI only; never raised by this binding)."""

    STATUS = 102
    C_NAME = "PROCREG_E_BUFFER_TOO_SMALL"


class InternalPanic(RegistryError):
    """procreg panicked: a bug. The registry stays consistent; please report it."""

    STATUS = 103
    C_NAME = "PROCREG_E_PANIC"


class UnknownError(RegistryError):
    """An error this binding does not know (a newer library)."""

    STATUS = 199
    C_NAME = "PROCREG_E_UNKNOWN"


class RegistryClosed(RegistryError, ValueError):
    """The :class:`~procreg.Registry` (or :class:`~procreg.Watcher`) was used
    after ``close()``; a ``ValueError``, as for a closed file."""

    STATUS = None


#: ``procreg_status`` number -> exception class.
STATUS_CLASSES: Dict[int, Type[RegistryError]] = {
    cls.STATUS: cls
    for cls in (
        AlreadyExists,
        InvalidKey,
        MetadataTooLarge,
        ProcessNotAlive,
        NotFound,
        RegistryFull,
        Busy,
        IncompatibleSegment,
        PermissionDenied,
        InvalidArgument,
        NoSuchRegistry,
        RegistryExists,
        IoError,
        Timeout,
        Lagged,
        Unavailable,
        NullArgument,
        InvalidUtf8,
        BufferTooSmall,
        InternalPanic,
        UnknownError,
    )
    if cls.STATUS is not None
}


def error_for(status: int, message: str, pid: int = 0) -> RegistryError:
    """The exception for a failed call's status and message."""
    cls = STATUS_CLASSES.get(status)
    if cls is None:
        return UnknownError(f"{message} (status {status})", status)
    if cls is AlreadyExists:
        return AlreadyExists(message, status, pid)
    return cls(message, status)
