"""A native Lean toolchain (elan + Lake), run as the embedded one is (`NativeRuntime`).

The same session program (`session/Session.lean`, plain Lean 4) runs on the native `lean` with
the `LEAN_PATH` of a Lake project (this folder's own, or one the user points to with
`LEANGYM_LAKE_PROJECT`), so Mathlib is importable once the project has fetched it: long-lived
sessions check sources (a header such as `import Mathlib` elaborated once per session) and
export each one's declarations, and a judge, never sent submitted text, decides every verdict
(`kernel.py`). The Lean REPL, when built in the project, keeps proof states for tactic mode.
Every native Lean that can read submitted text runs in bubblewrap (`confined`).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leangym.lean_project.kernel import JudgeHold, KernelCheck, KernelVerdict
from leangym.lean_project.pool import ReplCommand
from leangym.lean_project.process import run_to_end
from leangym.lean_project.repl import SCRATCH
from leangym.lean_project.repl_runtime import (
    REPL_BUILD_HINT,
    Limits,
    ReplRuntime,
    find_repl,
    native_repl_runtime,
    repl_runtime,
)
from leangym.lean_project.runtime import OnResult, StreamingRuntime
from leangym.lean_project.sandbox import require_sandbox
from leangym.lean_project.types import LeanRuntimeError, RuntimeHealth, SourceResult

if TYPE_CHECKING:
    from leangym.lean_project.tactics import TacticBackend

PROJECT_DIR = Path(__file__).parent  # the bundled Lake project (lakefile.toml, lean-toolchain)
SESSION_PROGRAM = PROJECT_DIR / "session" / "Session.lean"  # leangym's batch/session program
QUERY_MEMORY_MB = 4096  # `lake env`, `lean --version`: far below; a cap like every Lean process's
INSTALL_HINT = "install elan, then `cd lean_project && lake update && lake build repl` (docs/native.md)"


@dataclass(frozen=True)
class NativeLauncher:
    """Starts a native `lean` on a file (the `Launcher` of `oneshot.FileRuntime`)."""

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
        """The session program over a request file (a one-shot batch of `oneshot.FileRuntime`)."""
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

    def confined(
        self, argv: list[str], *, reads: Sequence[str | Path] = (), writes: Sequence[str | Path] = ()
    ) -> list[str]:
        """`argv` (a Lean that may run submitted code) inside bubblewrap (`sandbox.py`): it reads the
        toolchain, the `.olean` folders, the project and `reads`, writes only `writes`. The native
        Lean has no other confinement: without bubblewrap this refuses, unless LEANGYM_SANDBOX=off."""
        sandbox = require_sandbox("the native Lean")
        if sandbox is None:
            return argv
        mounts = (self.sysroot, *self.lean_path, *((self.project,) if self.project else ()), SESSION_PROGRAM.parent)
        return sandbox.wrap(argv, reads=(*mounts, *reads), writes=writes)

    def session_command(self) -> ReplCommand:
        """The session program on this `lean`, long-lived, reading requests on stdin in its own empty
        folder, with request ids (it echoes them): a session, or, never sent submitted text, the judge."""
        argv = self.confined([str(self.lean), "--run", str(SESSION_PROGRAM)], reads=(SCRATCH,))
        return ReplCommand(tuple(argv), env=self.environment(), cwd=SCRATCH, tag_requests=True)

    def judge_command(self) -> ReplCommand:
        """How to start the judge: the session program, confined like every native Lean."""
        return self.session_command()

    def repl_command(self) -> ReplCommand:
        """How to start the Lean REPL of this Lake project, confined (a `LeanRuntimeError` when it is not built)."""
        repl = find_repl(self.project)
        if repl is None:
            raise LeanRuntimeError(f"the Lean REPL is not built: {REPL_BUILD_HINT}")
        argv = self.confined([str(repl)], reads=(repl.parent,))
        return ReplCommand(tuple(argv), env=self.environment(), cwd=self.project)

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


class NativeRuntime(StreamingRuntime):
    """A native toolchain: sessions of the session program check and export, the judge decides, the
    REPL (when built) keeps proof states (see the module docstring)."""

    name = "native"

    def __init__(self, launcher: NativeLauncher | None = None, **limits: Any):
        """`limits`: the fields of `repl_runtime.Limits`, for the sessions and the REPL alike."""
        self._limits = Limits(**limits)  # a mistyped keyword fails before the search for Lean
        self.launcher = launcher or find_native()
        self.sessions = repl_runtime(
            self.launcher.session_command(),
            self.launcher,
            self._limits,
            name="native",
            version=self.launcher.version,
            startup_probe="",  # a session answers an empty command (its imports) first
        )
        self._judge = JudgeHold(self.launcher.judge_command())
        self._repl: ReplRuntime | None = None
        self._repl_lock = threading.Lock()

    @property
    def version(self) -> str:
        return self.launcher.version

    @property
    def lean_batches(self) -> int:  # type: ignore[override]
        return self.sessions.lean_batches

    def check_each(
        self, sources: Sequence[str], on_result: OnResult, *, timeout: float | None = None, export: bool = False
    ) -> list[SourceResult]:
        if export:
            self._judge.get().start_soon()  # its start-up overlaps this check's
        return self.sessions.check_each(sources, on_result, timeout=timeout, export=export)

    def kernel_check(self, items: Sequence[KernelCheck], *, timeout: float | None = None) -> list[KernelVerdict]:
        return self._judge.get().check(items, timeout=timeout)

    def has_judge(self) -> bool:
        return True

    def can_import(self, module: str) -> bool:
        return self.launcher.can_import(module)

    def import_hint(self, module: str) -> str:
        return self.launcher.import_hint(module)

    def proof_state_tactics(self, *, timeout: float, max_heartbeats: int | None) -> TacticBackend | None:
        """Tactics on the Lean REPL's proof states when the REPL is built in the Lake project (its
        processes made on first use), else None."""
        if find_repl(self.launcher.project) is None:
            return None
        with self._repl_lock:
            if self._repl is None:
                self._repl = native_repl_runtime(launcher=self.launcher, **asdict(self._limits))
            return self._repl.proof_state_tactics(timeout=timeout, max_heartbeats=max_heartbeats)

    def health(self) -> RuntimeHealth:
        """The sessions', with the judge's process and the REPL's (tactic mode) counted in."""
        repl = self._repl
        return self.sessions.health().including(self._judge.health(), *([repl.health()] if repl is not None else []))

    def prewarm(self) -> None:
        self._judge.get().start_soon()
        self.sessions.prewarm()

    def close(self) -> None:
        self.sessions.close()
        with self._repl_lock:
            if self._repl is not None:
                self._repl.close()
                self._repl = None
        self._judge.release()
