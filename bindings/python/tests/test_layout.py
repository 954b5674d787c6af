"""The ctypes structs match include/procreg.h: sizes and every field offset,
as a C compiler sees them; every function the binding declares exists in the
header."""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess

import pytest

from procreg import _ffi

from conftest import repo_root

STRUCTS = {
    "procreg_options": _ffi.ProcregOptions,
    "procreg_entry": _ffi.ProcregEntry,
    "procreg_entry_view": _ffi.ProcregEntryView,
    "procreg_stats_t": _ffi.ProcregStats,
    "procreg_health_t": _ffi.ProcregHealth,
    "procreg_event": _ffi.ProcregEvent,
}

#: Enums the structs declare as c_int.
ENUMS = ("procreg_create_mode", "procreg_liveness_mode", "procreg_event_kind")


def _c_layout(tmp_path) -> dict:
    root = repo_root()
    cc = shutil.which("cc") or shutil.which("gcc")
    if root is None or cc is None or not (root / "include" / "procreg.h").is_file():
        pytest.skip("needs the procreg checkout and a C compiler")
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "procreg.h"', "int main(void) {", 'printf("{");']
    first = True
    for cname, cls in STRUCTS.items():
        ctype = f"struct {cname}"
        items = [f'\\"sizeof\\": %zu'] + [f'\\"{f}\\": %zu' for f, *_ in cls._fields_]
        args = [f"sizeof({ctype})"] + [f"offsetof({ctype}, {f})" for f, *_ in cls._fields_]
        sep = "" if first else ","
        first = False
        lines.append(f'printf("{sep}\\"{cname}\\": {{{", ".join(items)}}}", {", ".join(args)});')
    lines += [f'printf(",\\"{e}\\": %zu", sizeof(enum {e}));' for e in ENUMS]
    lines += [
        'printf("}\\n");',
        "return 0; }",
    ]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c99", "-Wall", "-I", str(root / "include"), str(src), "-o", str(exe)], check=True)
    return json.loads(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)


def test_extensible_structs_carry_their_size():
    for cls in (_ffi.ProcregOptions, _ffi.ProcregEntry, _ffi.ProcregStats, _ffi.ProcregHealth, _ffi.ProcregEvent):
        assert cls._fields_[0][0] == "struct_size" and cls.struct_size.offset == 0
        assert cls().struct_size == ctypes.sizeof(cls), cls


def test_struct_sizes_and_offsets_match_the_header(tmp_path):
    c = _c_layout(tmp_path)
    for cname, cls in STRUCTS.items():
        got = {"sizeof": ctypes.sizeof(cls)}
        got.update({f: getattr(cls, f).offset for f, *_ in cls._fields_})
        assert got == c[cname], cname
    # The enums are declared as c_int in the structs.
    for e in ENUMS:
        assert c[e] == ctypes.sizeof(ctypes.c_int), e


def test_constants_match_the_header():
    root = repo_root()
    if root is None:
        pytest.skip("no procreg checkout")
    header = (root / "include" / "procreg.h").read_text()
    # Buffer sizes are the binding's choice: the header has no fixed arrays.
    assert "PROCREG_METADATA_CAPACITY" not in header and "PROCREG_PROBLEMS_CAPACITY" not in header
    assert _ffi.PROCREG_METADATA_CAPACITY > 0 and _ffi.PROBLEMS_BUFFER > 0
    assert f"#define PROCREG_VERSION_MAJOR {_ffi.HEADER_VERSION[0]}" in header
    assert f"#define PROCREG_VERSION_MINOR {_ffi.HEADER_VERSION[1]}" in header


def test_every_declared_function_is_in_the_header():
    root = repo_root()
    if root is None:
        pytest.skip("no procreg checkout")
    import re

    header = (root / "include" / "procreg.h").read_text()
    in_header = set(re.findall(r"\b(procreg_\w+)\(", header))
    declared = {name for name in dir(_ffi.lib) if name.startswith("procreg_")}
    assert declared and declared <= in_header
    # and the binding declares every function of the header
    assert in_header <= declared, sorted(in_header - declared)
