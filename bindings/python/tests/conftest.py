"""Shared fixtures: a fresh shm segment per test module, destroyed afterwards."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator, Optional

import pytest

import procreg


def repo_root() -> Optional[Path]:
    """The procreg checkout: $PROCREG_SOURCE_DIR or the Cargo.toml above this file."""
    env = os.environ.get("PROCREG_SOURCE_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for d in (here, *here.parents):
        m = d / "Cargo.toml"
        if m.is_file() and 'name = "procreg"' in m.read_text():
            return d
    return None


def unique_url(tag: str) -> str:
    return f"shm:pytest-{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    u = unique_url("mod")
    r = procreg.Registry(u, capacity=8192, create="create")
    r.close()
    yield u
    procreg.destroy(u)


@pytest.fixture
def reg(url: str) -> Iterator[procreg.Registry]:
    with procreg.Registry(url) as r:
        yield r


@pytest.fixture
def ns(reg: procreg.Registry) -> Iterator[str]:
    with reg.test_namespace() as n:
        yield n
