"""Build step of the procreg Python package: compiles the Rust library with
cargo and copies it into the package, so that ``pip install ./bindings/python``
works on a machine with only Python and a Rust toolchain.

The procreg checkout is ``$PROCREG_SOURCE_DIR`` if set, else the first
directory above this file whose Cargo.toml names the ``procreg`` package.
``$PROCREG_SKIP_CARGO=1`` skips the build and ships nothing (the package then
needs ``$PROCREG_LIBRARY`` at import). ``$PROCREG_CARGO_FEATURES`` (e.g.
``etcd``) is passed to cargo as ``--features``: ``PROCREG_CARGO_FEATURES=etcd``
builds a library that opens ``etcd://`` registries.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:  # setuptools >= 70.1 has its own bdist_wheel
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - older setuptools
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent


def _load_checkout() -> Any:
    """``procreg/_checkout.py``, loaded by path: the package itself cannot be
    imported before its library is built."""
    spec = importlib.util.spec_from_file_location("_procreg_checkout", HERE / "procreg" / "_checkout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def find_source_dir() -> Path:
    env = os.environ.get("PROCREG_SOURCE_DIR")
    if env:
        root = Path(env).resolve()
        if not (root / "Cargo.toml").is_file():
            sys.exit(f"procreg: PROCREG_SOURCE_DIR={env!r} has no Cargo.toml")
        return root
    root = _load_checkout().repo_root(HERE)
    if root is not None:
        return Path(root)
    sys.exit(
        f"procreg: no procreg checkout above {HERE}; build from the repository "
        "(pip install ./bindings/python) or set PROCREG_SOURCE_DIR to it"
    )


def cargo_build(root: Path) -> Path:
    """Runs cargo and returns the path of the shared library it produced."""
    cargo = os.environ.get("CARGO", "cargo")
    if shutil.which(cargo) is None:
        sys.exit("procreg: `cargo` not found on PATH; install Rust (https://rustup.rs) or set CARGO")
    cmd = [cargo, "build", "--release", "--lib", "--message-format=json-render-diagnostics"]
    features = os.environ.get("PROCREG_CARGO_FEATURES", "").strip()
    if features:
        cmd += ["--features", features]
    print(f"procreg: running {' '.join(cmd)} in {root}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=root, stdout=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        sys.exit(f"procreg: cargo build failed with status {proc.returncode}")
    libs = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact":
            continue
        target = msg.get("target", {})
        if target.get("name") == "procreg" and "cdylib" in target.get("crate_types", []):
            libs += [f for f in msg.get("filenames", []) if f.endswith((".so", ".dylib"))]
    if not libs:
        sys.exit("procreg: cargo built no cdylib for procreg (is crate-type cdylib in Cargo.toml?)")
    return Path(libs[0])


class BuildPyWithCargo(build_py):
    """build_py that also builds libprocreg and puts it next to __init__.py."""

    def run(self) -> None:
        super().run()
        if os.environ.get("PROCREG_SKIP_CARGO") == "1":
            return
        lib = cargo_build(find_source_dir())
        dest = Path(self.build_lib) / "procreg" / lib.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lib, dest)
        print(f"procreg: shipped {lib} as {dest}", file=sys.stderr)


class BinaryDistribution(Distribution):
    """The wheel holds a native library: never a pure-Python wheel."""

    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):
    """Tags the wheel py3-none-<platform>: ctypes needs no particular CPython
    ABI, but the shared library is platform-specific."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(
    cmdclass={"build_py": BuildPyWithCargo, "bdist_wheel": PlatformWheel},
    distclass=BinaryDistribution,
)
