"""Finding the procreg source checkout (standard library only: ``setup.py``
loads this file by path at build time, before the package can be imported)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


def is_procreg_manifest(text: str) -> bool:
    """Whether ``text`` is a Cargo.toml whose ``[package]`` is named procreg."""
    in_package = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            in_package = line == "[package]"
        elif in_package and line.replace(" ", "") == 'name="procreg"':
            return True
    return False


def repo_root(start: Path) -> Optional[Path]:
    """The procreg source checkout at or above ``start``."""
    for d in (start, *start.parents):
        try:
            text = (d / "Cargo.toml").read_text()
        except OSError:
            continue
        if is_procreg_manifest(text):
            return d
    return None
