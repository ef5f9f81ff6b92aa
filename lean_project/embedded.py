"""The embedded Lean runtime: sessions of the toolchain's Lean (`toolchain.py`), and the judge.

`EmbeddedRuntime` is what `get_runtime("embedded")` returns: long-lived sessions
(`session_runtime`, a `ReplRuntime` over the session program) by default, one-shot batches
(`FileRuntime`) with `LEANGYM_EMBEDDED_MODE=oneshot` or when a session cannot start; and one
judge per toolchain (`kernel.py`) for trusted verdicts.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from leangym.lean_project.kernel import Judge, JudgeHold, KernelCheck, KernelVerdict
from leangym.lean_project.oneshot import FileRuntime
from leangym.lean_project.repl_runtime import Limits, ReplRuntime, repl_runtime
from leangym.lean_project.runtime import OnResult, StreamingRuntime
from leangym.lean_project.toolchain import LEAN_VERSION, EmbeddedLauncher, leangym_home, locate
from leangym.lean_project.types import RuntimeHealth, SourceResult


def session_runtime(launcher: EmbeddedLauncher | None = None, **limits: Any) -> ReplRuntime:
    """The embedded runtime as long-lived sessions: `workers` processes of the session program
    (`limits`: the fields of `repl_runtime.Limits`; here 6 GB a process at most, recycled past
    4 GB or 5,000 requests).

    Each start-up (~7 s with the precompiled program, 12-20 s where Lean elaborates it) is paid
    once per session; a source then costs its elaboration (tens of milliseconds for a small proof).
    Between sources, a session is restarted once it holds more than `recycle_mb` of memory
    or has answered `max_requests` requests; mid-source, it is killed past `memory_mb`. A
    source a session died on is retried once in a fresh session before it is reported. With
    `spares`, the next session of each worker starts while the current one works (machine-wide
    spare slots permitting), so a restart does not wait for a start-up; by default only where
    a start-up is slow (no precompiled program): a ~7 s restart after a timeout or a recycle
    is not worth a second process's ~0.8 GB held all the time (docs/embedded.md).
    """
    chosen = Limits(**{"memory_mb": 6144, "recycle_mb": 4096, "max_requests": 5000, **limits})  # before any start
    launcher = launcher or locate()
    if chosen.spares is None:
        chosen = replace(chosen, spares=launcher.boot is None)
    return repl_runtime(
        launcher.session_command(),
        launcher,
        chosen,
        size_mb=SESSION_MB,
        name="embedded",
        version=LEAN_VERSION,
        startup_probe="",  # every session answers an empty command (its imports) first
    )


MODES = ("session", "oneshot")
SESSION_MB = 4096  # what one session may grow to, for sizing (measured: ~0.8 GB started, ~1.2 GB after 1,000 checks)


def fallback_record() -> Path:
    """Where the last failure to start a session is written (read by `leangym doctor`)."""
    return leangym_home() / "session-fallback.txt"


class EmbeddedRuntime(StreamingRuntime):
    """The embedded Lean: long-lived sessions (`mode="session"`, the default), or one process per
    batch (`"oneshot"`, `oneshot.FileRuntime`), chosen automatically when sessions cannot start.

    Both run the session program, so both check each source from its imports alone; they
    differ only in how long a Lean process lives. `LEANGYM_EMBEDDED_MODE` sets the default.
    """

    name = "embedded"

    def __init__(self, mode: str | None = None, *, warm: int = 1, max_batch: int = 256, **options: Any):
        self.mode = mode or os.environ.get("LEANGYM_EMBEDDED_MODE", "session")
        if self.mode not in MODES:
            raise ValueError(f"unknown embedded mode {self.mode!r}: choose one of {', '.join(MODES)}")
        self.launcher = locate()
        workers = options.pop("workers", None)
        self._options = options
        self._file_options = {"warm": warm, "max_batch": max_batch, "workers": workers}
        self._session = session_runtime(self.launcher, workers=workers, **options) if self.mode == "session" else None
        self._sessions_work = False  # set once a session answered (and the fallback record was cleared)
        self._oneshot: FileRuntime | None = None
        self._judge = JudgeHold(self.launcher.judge_command())  # decides every verdict; held while open

    @property
    def version(self) -> str:
        return LEAN_VERSION

    @property
    def judge(self) -> Judge:
        """The trusted judge (held from first use until `close`)."""
        return self._judge.get()

    def has_judge(self) -> bool:
        return True

    @property
    def sessions(self) -> ReplRuntime | None:
        """The runtime over the session-program processes (None in one-shot mode), as `NativeRuntime.sessions`."""
        return self._session

    @property
    def lean_batches(self) -> int:  # type: ignore[override]
        return sum(r.lean_batches for r in (self._session, self._oneshot) if r is not None)

    def can_import(self, module: str) -> bool:
        return self.launcher.can_import(module)

    def import_hint(self, module: str) -> str:
        return self.launcher.import_hint(module)

    def check_each(
        self, sources: Sequence[str], on_result: OnResult, *, timeout: float | None = None, export: bool = False
    ) -> list[SourceResult]:
        if export:
            self.judge.start_soon()  # its start-up overlaps this check's
        if self._session is None:
            return self.oneshot().check_each(sources, on_result, timeout=timeout, export=export)

        def said(i: int, result: SourceResult) -> None:  # a session that cannot start: the one-shot run answers
            if result.error is None or result.error.kind != "startup":
                on_result(i, result)

        results = self._session.check_each(sources, said, timeout=timeout, export=export)
        broken = self._session.broken()
        redo = [i for i, r in enumerate(results) if r.error is not None and r.error.kind == "startup"]
        if broken is None:
            if not self._sessions_work and self._session.answered():
                fallback_record().unlink(missing_ok=True)  # sessions work (again): said once per runtime
                self._sessions_work = True
        else:
            self._fall_back(broken.detail)  # sessions die before answering anything: one-shot runs from now on
            again = self.oneshot().check([sources[i] for i in redo], timeout=timeout, export=export)
            for i, result in zip(redo, again, strict=True):
                results[i] = result
        for i in redo:
            on_result(i, results[i])
        return results

    def kernel_check(self, items: Sequence[KernelCheck], *, timeout: float | None = None) -> list[KernelVerdict]:
        return self.judge.check(items, timeout=timeout)

    def oneshot(self) -> FileRuntime:
        """The one-process-per-batch runtime (made on first use)."""
        if self._oneshot is None:
            options = {k: v for k, v in self._options.items() if k in ("timeout", "startup_timeout", "memory_mb")}
            self._oneshot = FileRuntime(self.launcher, **self._file_options, **options)
        return self._oneshot

    def _fall_back(self, why: str) -> None:
        self.mode = "oneshot"
        with contextlib.suppress(OSError):
            fallback_record().parent.mkdir(parents=True, exist_ok=True)
            fallback_record().write_text(f"{time.strftime('%Y-%m-%d %H:%M')}: {why}\n", encoding="utf-8")
        warnings.warn(
            f"the embedded Lean session cannot start ({why}); checking one-shot batches instead", stacklevel=3
        )
        if self._session is not None:
            self._session.close()
            self._session = None

    def health(self) -> RuntimeHealth:
        """The sessions', or in one-shot mode the warm spares', with the judge's counted in."""
        lean = self._session or self._oneshot
        own = lean.health() if lean is not None else RuntimeHealth("oneshot", 0, 0)
        return own.including(self._judge.health())

    def prewarm(self) -> None:
        self.judge.start_soon()
        (self._session or self.oneshot()).prewarm()

    def close(self) -> None:
        for r in (self._session, self._oneshot):
            if r is not None:
                r.close()
        self._judge.release()
