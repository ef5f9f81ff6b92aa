"""A native Lean toolchain (elan + Lake), driven through the same `FileRuntime` as the embedded one.

Only the command line differs: `lean --run Session.lean REQUESTS` with the `LEAN_PATH` of a Lake project
(this folder's own, or one the user points to with `LEANGYM_LAKE_PROJECT`), so Mathlib is
importable once the project has fetched it. For many proofs against a heavy header such as
`import Mathlib`, the REPL pool (`leangym.lean_project.repl_runtime`) elaborates the header once per worker.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from leangym.lean_project.process import run_to_end
from leangym.lean_project.sandbox import require_sandbox
from leangym.lean_project.types import LeanRuntimeError

PROJECT_DIR = Path(__file__).parent  # the bundled Lake project (lakefile.toml, lean-toolchain)
SESSION_PROGRAM = PROJECT_DIR / "session" / "Session.lean"  # leangym's batch/session program
QUERY_MEMORY_MB = 4096  # `lake env`, `lean --version`: far below; a cap like every Lean process's
INSTALL_HINT = "install elan, then `cd lean_project && lake update && lake build repl` (docs/native.md)"


@dataclass(frozen=True)
class NativeLauncher:
    """Starts a native `lean` on a file (the `Launcher` of `runtime.FileRuntime`)."""

    lean: Path
    lean_path: tuple[Path, ...]
    version: str
    project: Path | None = None
    name: str = "native"
    warm_start: bool = False  # native start-up is well under a second

    @property
    def sysroot(self) -> Path:
        return self.lean.parent.parent

    def command(self, requests_file: Path) -> tuple[list[str], dict[str, str]]:
        """The session program over a request file (a one-shot batch of `runtime.FileRuntime`)."""
        argv = [str(self.lean), "--run", str(SESSION_PROGRAM), str(requests_file)]
        return self.confined(argv, reads=(requests_file.parent,)), self.environment()

    def environment(self, *modules: Path) -> dict[str, str]:
        """All a native Lean is given of this process's environment: where the toolchain and the
        `.olean` files are (plus the folders of `modules`), and PATH. Nothing else (no secrets)."""
        return {
            "LEAN_PATH": os.pathsep.join(map(str, (*self.lean_path, *modules))),
            "LEAN_SYSROOT": str(self.sysroot),
            "PATH": f"{self.sysroot / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        }

    def confined(self, argv: list[str], *, reads: tuple[Path, ...] = (), writes: tuple[Path, ...] = ()) -> list[str]:
        """`argv` (a Lean that may run submitted code) inside bubblewrap (`sandbox.py`): it reads the
        toolchain, the `.olean` folders, the project and `reads`, writes only `writes`. The native
        Lean has no other confinement: without bubblewrap this refuses, unless LEANGYM_SANDBOX=off."""
        sandbox = require_sandbox("the native Lean")
        if sandbox is None:
            return argv
        mounts = (self.sysroot, *self.lean_path, *((self.project,) if self.project else ()), SESSION_PROGRAM.parent)
        return sandbox.wrap(argv, reads=(*mounts, *reads), writes=writes)

    def judge_command(self) -> None:
        """None: the native toolchain's verdicts come from the audit (`rewards/audit.py`), not a judge."""
        return None

    def can_import(self, module: str) -> bool:
        rel = Path(*module.split(".")).with_suffix(".olean")
        return any((d / rel).exists() for d in self.lean_path)

    def import_hint(self, module: str) -> str:
        where = self.project or "the toolchain's library"
        return f"`import {module}`: no {module}.olean in {where}; for Mathlib see docs/native.md"


def lake_project() -> Path | None:
    """The Lake project to use: $LEANGYM_LAKE_PROJECT, else the bundled one if it was built."""
    configured = os.environ.get("LEANGYM_LAKE_PROJECT")
    if configured:
        return Path(configured).expanduser().resolve()
    return PROJECT_DIR if (PROJECT_DIR / ".lake").is_dir() else None


def _tool(name: str) -> str | None:
    elan_bin = Path(os.environ.get("ELAN_HOME", Path.home() / ".elan")) / "bin" / name
    return shutil.which(name) or (str(elan_bin) if elan_bin.exists() else None)


def _run(argv: list[str], cwd: Path | None = None) -> str:
    """A toolchain query (`lean --version`, `lake env`), run as every Lean process is (`process.run_to_end`)."""
    try:
        done = run_to_end(argv, dict(os.environ), timeout=300.0, memory_mb=QUERY_MEMORY_MB, cwd=cwd, machine_slot=False)
    except OSError as e:
        raise LeanRuntimeError(f"cannot run `{' '.join(argv)}`: {e}") from e
    if done.returncode != 0:
        why = done.stopped or done.stderr.strip()[:500]
        raise LeanRuntimeError(f"`{' '.join(argv)}` failed: {why}")
    return done.stdout


def lake_env(project: Path, lake: str) -> dict[str, str]:
    """The environment `lake env` gives inside `project` (LEAN_PATH, LEAN_SYSROOT, …)."""
    out = _run([lake, "env", "env"], cwd=project)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def find_native(project: Path | None = None) -> NativeLauncher:
    """Locate a native Lean; a clear error naming the install steps when there is none."""
    project = project or lake_project()
    lake, lean = _tool("lake"), _tool("lean")
    if project is not None and lake is not None:
        env = lake_env(project, lake)
        sysroot = Path(env.get("LEAN_SYSROOT", ""))
        lean_bin = Path(env["LEAN"]) if env.get("LEAN") else sysroot / "bin" / "lean"
        paths = tuple(Path(p) for p in env.get("LEAN_PATH", "").split(os.pathsep) if p)
    elif lean is not None:
        lean_bin = Path(lean)
        sysroot = Path(_run([lean, "--print-prefix"]).strip())
        paths = (sysroot / "lib" / "lean",)
    else:
        raise LeanRuntimeError(f"no native Lean found (neither `lake` nor `lean` on PATH): {INSTALL_HINT}")
    version = _run([str(lean_bin), "--version"]).strip()
    return NativeLauncher(lean=lean_bin, lean_path=paths, version=version, project=project)
