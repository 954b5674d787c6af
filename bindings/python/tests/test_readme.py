"""Every Python snippet of the binding's README and of the top-level README
runs to its end and passes ``mypy --strict``: the docs cannot drift from the
code. Each runs as a script of its own (a spawn child must be able to import
its functions) on a registry of its own; the etcd snippet needs a cluster."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import List, Tuple

import pytest

import procreg

from conftest import repo_root

HERE = Path(__file__).resolve().parent
ENDPOINTS = os.environ.get("PROCREG_ETCD_ENDPOINTS", "")


def _snippets() -> List[Tuple[str, str]]:
    docs = [HERE.parent / "README.md"]
    root = repo_root()
    if root is not None and (root / "README.md").is_file():
        docs.append(root / "README.md")
    out = []
    for doc in docs:
        text = doc.read_text()
        for i, m in enumerate(re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)):
            line = text[: m.start()].count("\n") + 1
            out.append((f"{doc.parent.name}/{doc.name}:{line}", m.group(1)))
    return out


SNIPPETS = _snippets()


def test_the_readmes_have_python_snippets():
    where = {w.split(":")[0] for w, _ in SNIPPETS}
    assert len(SNIPPETS) >= 4 and len(where) == 2, where


def _localise(code: str) -> Tuple[str, str]:
    """The snippet on a registry of its own, and that registry's url."""
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if "etcd://" in code:
        if not ENDPOINTS or not procreg.HAS_ETCD:
            pytest.skip("needs PROCREG_ETCD_ENDPOINTS and a build with etcd")
        url = f"etcd://{ENDPOINTS}/readme-{tag}?ttl=10s&timeout=5s"
        code = re.sub(r"etcd://[^\"]*", url, code)
        return code, url
    url = f"shm:readme-{tag}"
    assert "shm:myapp" in code, "a snippet opens shm:myapp (the test swaps in a registry of its own)"
    return code.replace("shm:myapp", url), url


@pytest.mark.parametrize("where,code", SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_readme_snippet_runs_to_its_end(where, code, tmp_path):
    code, url = _localise(code)
    script = tmp_path / "snippet.py"
    script.write_text(code)
    try:
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert out.returncode == 0, f"{where}:\n{out.stdout}\n{out.stderr}"
    finally:
        try:
            procreg.destroy(url)
        except procreg.NoSuchRegistry:
            pass


def test_readme_snippets_pass_mypy_strict(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (pip install mypy)")
    files = []
    for i, (where, code) in enumerate(SNIPPETS):
        f = tmp_path / f"snippet_{i}.py"
        f.write_text(code)
        files.append(str(f))
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *files],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
