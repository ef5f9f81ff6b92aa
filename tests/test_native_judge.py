"""The native runtime's verdicts come from its judge: run with a real Lean standing in for a native toolchain.

No native Lean is installed here. A stand-in toolchain folder holds a `bin/lean` that runs the
embedded build (Lean 4.28 compiled to WebAssembly: a real Lean, the version the Lake project
pins) on the paths it is given. `NativeRuntime` then runs as it would on an elan toolchain: the
session program elaborated at start by `lean --run`, sessions and the judge inside bubblewrap
reading only the toolchain folder, the library and the session program, every verdict decided
by the judge. (`tests/test_native_repl.py` runs the REPL parts on a real native toolchain when
there is one.)
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_trusted_verdicts import FALSE, FORGE, TRUE, io  # pytest puts tests/ on sys.path

from leangym.lean_project.kernel import KernelCheck, reference_source
from leangym.lean_project.native import NativeLauncher, NativeRuntime
from leangym.lean_project.toolchain import locate
from leangym.rewards import Problem, Verifier

pytestmark = [
    pytest.mark.lean,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="the native runtime needs bubblewrap (make setup)"),
]

# The stand-in `lean`: the wasm build's Node and glue beside it; the glue mounts the folders Lean
# reads (its library path, its working folder, the files named on its command line).
STAND_IN = """#!/bin/sh
here=$(dirname "$0")
mounts="$(dirname "$here"):$LEAN_PATH:$(pwd)"
for arg in "$@"; do case "$arg" in /*) mounts="$mounts:$(dirname "$arg")";; esac; done
LEANGYM_MOUNTS="$mounts" exec "$here/node" "$here/lean.js" "$@"
"""
SECRET = Path.home() / f".leangym-native-secret-{uuid.uuid4().hex}"


def _link(source: str | Path, target: str | Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeRuntime]:
    embedded = locate()
    root = tmp_path_factory.mktemp("native-toolchain")  # laid out as an elan toolchain: bin/lean, lib/lean/
    bin_dir = root / "bin"
    bin_dir.mkdir()
    shutil.copytree(embedded.library, root / "lib" / "lean", copy_function=_link)
    _link(embedded.node.resolve(), bin_dir / "node")
    _link(embedded.glue.with_name("lean.wasm").resolve(), bin_dir / "lean.wasm")
    shutil.copy2(embedded.glue, bin_dir / "lean.js")
    (bin_dir / "lean").write_text(STAND_IN)
    (bin_dir / "lean").chmod(0o755)
    launcher = NativeLauncher(
        lean=bin_dir / "lean", lean_path=(root / "lib" / "lean",), version="4.28.0-pre (stand-in)"
    )
    SECRET.write_text("secret")
    runtime = NativeRuntime(launcher, workers=1, timeout=120.0)
    try:
        yield runtime
    finally:
        runtime.close()
        SECRET.unlink(missing_ok=True)


def test_native_verdicts_come_from_the_judge_inside_the_sandbox(native: NativeRuntime) -> None:
    omega = Problem("lt", "theorem lt (a b : Nat) (h : a < b) : a + 1 ≤ b := by")
    forge = io(f'let out ← IO.FS.Handle.mk "/dev/stdout" IO.FS.Mode.write\nout.putStr "{FORGE}"')
    rows = {
        "true": (TRUE, "  decide"),
        "omega": (omega, "  omega"),
        "false": (FALSE, "  decide"),
        "forged answer": (FALSE, forge),
        "after the forgery": (FALSE, "  omega"),
        "reads the library (control)": (
            TRUE,
            io(f'let _ ← IO.FS.readBinFile "{native.launcher.lean_path[0]}/Init.olean"'),
        ),
        "reads a home file": (TRUE, io(f'let _ ← IO.FS.readFile "{SECRET}"')),
        "writes its toolchain": (TRUE, io(f'IO.FS.writeFile "{native.launcher.lean}" "pwned"')),
    }
    verdicts = Verifier(native).verify_batch(list(rows.values()))
    got = {name: v.outcome for name, v in zip(rows, verdicts, strict=True)}
    assert got == {
        "true": "proved",
        "omega": "proved",
        "false": "rejected",
        "forged answer": "rejected",
        "after the forgery": "rejected",
        "reads the library (control)": "proved",
        "reads a home file": "rejected",
        "writes its toolchain": "rejected",
    }, [(n, v.reasons, v.detail[:200]) for n, v in zip(rows, verdicts, strict=True)]
    assert native.launcher.lean.read_text().startswith("#!/bin/sh")  # unchanged
    assert native.has_judge() and native.health().mode == "session" and native.lean_batches == 1


def test_the_native_judge_refuses_a_forged_export(native: NativeRuntime) -> None:
    """Exports the untrusted sessions answer go to the judge as data: an axiom for the false
    statement is refused, a real proof of a true one passes."""
    sources = [
        "axiom cheat : (1 : Nat) + 1 = 3\ntheorem target : (1 : Nat) + 1 = 3 := cheat",
        "theorem two : (2 : Nat) + 2 = 4 := rfl",
    ]
    axiom, true_one = (r.constants for r in native.check(sources, export=True))
    assert axiom is not None and true_one is not None
    checks = [
        KernelCheck(reference_source("", "theorem target : (1 : Nat) + 1 = 3 :="), ("target",), axiom),
        KernelCheck(reference_source("", "theorem two : (2 : Nat) + 2 = 4 :="), ("two",), true_one),
    ]
    forged, honest = native.kernel_check(checks)
    assert (forged.status, forged.reason) == ("rejected", "unexpected_declaration"), forged
    assert honest.status == "ok" and "sorryAx" not in honest.axioms, honest
