"""The runtime API: check a batch of Lean sources, get one `SourceResult` per source.

`LeanRuntime` is what every caller (verifier, environments, CLI) uses. `FileRuntime`
implements it for any Lean that checks a file given on its command line — the embedded
wasm build and a native `lean` — by:

1. grouping the sources into few runs (`batch.plan`), each source in a scope of its own;
2. running up to `max_procs` Lean processes at once, taking pre-started ("warm") ones
   when the launcher supports it, so a batch does not wait for Lean's start-up;
3. watching each run: a source gets `timeout` seconds from the moment the previous one
   finished (markers in Lean's output show progress); memory is capped per process;
4. when a run dies or is stopped mid-way, keeping every verdict it finished, charging the
   source it was on, and checking the rest again in a new run.
"""

from __future__ import annotations

import atexit
import os
import shutil
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from leangym.lean.batch import Assembled, Attribution, Prepared, assemble, attribute, plan, prepare
from leangym.lean.process import LeanProcess, private_dir, run_slots, spare_slots
from leangym.lean.types import InfraError, SourceResult


class LeanRuntime(ABC):
    """Checks Lean sources. Use as a context manager, or call `close()` to release Lean processes."""

    name: str = "lean"

    @property
    @abstractmethod
    def version(self) -> str:
        """The Lean version string, part of every cache key."""

    @abstractmethod
    def check(self, sources: Sequence[str], *, timeout: float | None = None) -> list[SourceResult]:
        """One result per source, in order. Never raises for a bad source."""

    @abstractmethod
    def can_import(self, module: str) -> bool:
        """Whether `import module` can be satisfied by this runtime."""

    def check_one(self, source: str, *, timeout: float | None = None) -> SourceResult:
        return self.check([source], timeout=timeout)[0]

    def prewarm(self) -> None:  # noqa: B027 - optional hook, a no-op where start-up is cheap
        """Start Lean ahead of the next `check` where start-up is slow."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release Lean processes."""

    def __enter__(self) -> LeanRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Launcher(Protocol):
    """How to start one Lean that checks a file (see `embedded.EmbeddedLauncher`, `native.NativeLauncher`)."""

    name: str
    version: str
    warm_start: bool  # may the process start before its input file exists?
    reliable_progress: bool  # does Lean's output reach the file line by line?

    def command(self, input_file: Path, options: list[str]) -> tuple[list[str], dict[str, str]]: ...

    def can_import(self, module: str) -> bool: ...

    def import_hint(self, module: str) -> str: ...


@dataclass
class _Run:
    """A Lean process working on one assembled batch."""

    batch: list[Prepared]
    asm: Assembled
    proc: LeanProcess
    attr: Attribution = field(default_factory=Attribution)
    last_progress: float = 0.0


class FileRuntime(LeanRuntime):
    """A `LeanRuntime` over a command-line Lean (see the module docstring)."""

    def __init__(
        self,
        launcher: Launcher,
        *,
        timeout: float = 60.0,
        startup_timeout: float = 240.0,
        max_procs: int | None = None,
        memory_mb: int = 8192,
        warm: int = 1,
        max_batch: int = 256,
        lean_options: Sequence[str] | None = None,
    ):
        self.launcher = launcher
        self.name = launcher.name
        self.timeout = timeout  # seconds per source, counted from the previous source's end
        self.startup_timeout = startup_timeout  # seconds until Lean has read its imports
        self.max_procs = max(1, max_procs or os.cpu_count() or 1)
        self.memory_mb = memory_mb
        self.warm = warm if launcher.warm_start else 0
        self.max_batch = max_batch
        # Lean stops a file after 100 errors by default (`maxErrors`), which would cut a batch
        # short; the option is read from the command line only.
        self.lean_options = ["-DmaxErrors=0", *(lean_options or [])]
        self.runs_started = 0  # Lean processes given a batch (tests and benchmarks read it)
        self._run_slots, self._spare_slots = run_slots(), spare_slots()
        self._spares: list[LeanProcess] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        atexit.register(_close_ref, weakref.ref(self))

    @property
    def version(self) -> str:
        return self.launcher.version

    def can_import(self, module: str) -> bool:
        return self.launcher.can_import(module)

    # -- public API -------------------------------------------------------------------

    def check(self, sources: Sequence[str], *, timeout: float | None = None) -> list[SourceResult]:
        limit = self.timeout if timeout is None else timeout
        results: dict[int, SourceResult] = {}
        runnable: list[Prepared] = []
        for i, src in enumerate(sources):
            p = prepare(i, src)
            missing = [m for m in p.imports if not self.launcher.can_import(m)]
            if missing:
                detail = self.launcher.import_hint(missing[0])
                results[i] = SourceResult("error", error=InfraError("unsupported_import", detail))
            else:
                runnable.append(p)
        self._forget_parent_processes()
        with self._lock:
            if self._closed:
                raise RuntimeError("this runtime is closed")
            self._run_all(deque(plan(runnable, self.max_batch)), results, limit)
            self._top_up_spares(busy=0)  # warm up for the next call (not during this one)
        return [results[i] for i in range(len(sources))]

    def prewarm(self) -> None:
        self._forget_parent_processes()
        with self._lock:
            self._top_up_spares(busy=0)

    def warm_spares(self) -> int:
        """How many started Lean processes are ready and waiting for a batch."""
        return sum(proc.waiting for proc in self._spares)

    def close(self) -> None:
        self._forget_parent_processes()
        with self._lock:
            self._closed = True
            for proc in self._spares:
                proc.cleanup()
            self._spares.clear()

    def _forget_parent_processes(self) -> None:
        """In a forked child (an async vector env worker), the spares are the parent's: drop, don't kill."""
        if self._pid != os.getpid():
            self._pid, self._spares, self._lock = os.getpid(), [], threading.Lock()

    # -- scheduling -------------------------------------------------------------------

    def _run_all(self, queue: deque[list[Prepared]], results: dict[int, SourceResult], limit: float) -> None:
        runs: list[_Run] = []
        try:
            while queue or runs:
                while queue and len(runs) < self.max_procs:
                    # Never wait for a slot while holding one: two runtimes (or processes) that each
                    # held a finished run's slot and waited for a second would wait forever.
                    slot = self._run_slots.acquire(block=not runs)
                    if slot is None:
                        break
                    run = self._start(queue.popleft(), results, slot)
                    if run is not None:
                        runs.append(run)
                for run in list(runs):
                    retry = self._watch(run, results, limit)
                    if retry is not None:
                        runs.remove(run)
                        run.proc.cleanup()
                        queue.extend(retry)
                if runs:
                    time.sleep(0.05)
        finally:
            for run in runs:  # interrupted (Ctrl-C) or failed: leave no process behind
                run.proc.cleanup()

    def _start(self, batch: list[Prepared], results: dict[int, SourceResult], slot: int) -> _Run | None:
        """Hand `batch` to a Lean process holding run `slot`; if none can be started, record why and return None."""
        asm = assemble(batch)
        try:
            proc = self._take_spare()
            if proc is None:
                proc = self._spawn(asm.text)
            else:
                proc.release_slots()  # no longer a spare
                proc.feed(asm.text)
        except OSError as e:
            os.close(slot)
            for p in batch:
                results[p.index] = SourceResult("error", error=InfraError("startup", f"cannot start Lean: {e}"))
            return None
        proc.slots.append(slot)
        self.runs_started += 1
        return _Run(batch, asm, proc, last_progress=time.monotonic())

    def _spawn(self, text: str | None) -> LeanProcess:
        """A new Lean process; with `text` None it is a spare, waiting for its input."""
        workdir = private_dir()
        input_file = workdir / "batch.lean"
        argv, env = self.launcher.command(input_file, self.lean_options)
        try:
            if text is not None:
                input_file.write_text(text, encoding="utf-8")
            proc = LeanProcess(argv, env, workdir, input_file)
        except OSError:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        if text is not None:
            proc.fed_at = proc.started
        return proc

    def _take_spare(self) -> LeanProcess | None:
        while self._spares:
            proc = self._spares.pop(0)
            if proc.returncode() is None:
                return proc
            proc.cleanup()  # died while waiting (e.g. its idle limit passed)
        return None

    def _top_up_spares(self, busy: int) -> None:
        while self.warm and len(self._spares) < self.warm and busy + len(self._spares) < self.max_procs:
            slot = self._spare_slots.acquire(block=False)
            if slot is None:
                return  # enough spares on this machine already
            try:
                spare = self._spawn(None)
            except OSError:
                os.close(slot)
                return  # the next check reports the cause when it starts Lean itself
            spare.slots.append(slot)
            self._spares.append(spare)

    # -- watching one run -------------------------------------------------------------

    def _watch(self, run: _Run, results: dict[int, SourceResult], limit: float) -> list[list[Prepared]] | None:
        """Advance `run`; when it is over, record results and return batches to retry."""
        before = (run.attr.ready, len(run.attr.done))
        attribute(run.proc.poll(), run.asm, run.attr)
        now = time.monotonic()
        if (run.attr.ready, len(run.attr.done)) != before:
            run.last_progress = now
        failure: InfraError | None = None
        if run.proc.returncode() is None:
            waiting_for_start = run.asm.ready_line and not run.attr.ready
            allowed = self.startup_timeout if waiting_for_start else limit
            if not run.asm.ready_line and not run.attr.done:
                allowed = self.startup_timeout + limit  # a solo run: start-up and the source
            if now - run.last_progress > allowed:
                failure = InfraError(
                    "startup" if waiting_for_start else "timeout",
                    f"no progress for {allowed:.0f} s",
                )
            elif run.proc.rss_mb() > self.memory_mb:
                failure = InfraError("out_of_memory", f"passed the {self.memory_mb} MiB cap")
            else:
                return None
            run.proc.kill()
        attribute(run.proc.poll(), run.asm, run.attr)
        return self._settle(run, results, failure)

    def _settle(self, run: _Run, results: dict[int, SourceResult], failure: InfraError | None) -> list[list[Prepared]]:
        """Record what `run` finished; charge the source it stopped on; return the rest to retry."""
        proc, attr = run.proc, run.attr
        wall = time.monotonic() - (proc.fed_at or proc.started)
        share = wall / len(run.batch)
        for idx in attr.done:
            msgs = attr.shared + attr.messages.get(idx, [])
            results[idx] = SourceResult("ok", msgs, seconds=share)
        left = [p for p in run.batch if p.index not in results]
        if not left:
            return []
        exited_by_itself = failure is None
        if failure is None:
            code = proc.returncode()
            failure = InfraError("crash", f"Lean exited with status {code} mid-batch\n{proc.stderr_tail()}".strip())
        if run.asm.ready_line and not attr.ready and failure.kind != "out_of_memory":
            shared = "\n".join(m.text for m in attr.shared)
            detail = f"Lean did not start: {failure.detail}\n{shared}\n{proc.stderr_tail()}".strip()
            for p in left:
                results[p.index] = SourceResult(
                    "error", list(attr.shared), seconds=wall, error=InfraError("startup", detail)
                )
            return []
        suspect, rest = left[0], left[1:]
        suspect_msgs = attr.messages.get(suspect.index, [])
        if exited_by_itself and (proc.returncode() == 0 or any(m.is_error for m in suspect_msgs)):
            # Lean stopped by itself on the suspect and its exit status agrees with its
            # messages (say, `#exit`, or an unterminated comment that swallowed the markers
            # after it): a verdict, not a crash. The rest are checked again.
            results[suspect.index] = SourceResult("ok", attr.shared + suspect_msgs, seconds=share)
            return [rest] if rest else []
        # Markers are reliable for a timeout (reporting waits on the slow source); after a
        # crash, a neighbour may have finished without its marker being reported yet.
        if len(run.batch) == 1 or (self.launcher.reliable_progress and failure.kind != "crash"):
            status = "timeout" if failure.kind == "timeout" else "error"
            results[suspect.index] = SourceResult(status, suspect_msgs, seconds=wall, error=failure)
            return [rest] if rest else []
        return [[suspect], rest] if rest else [[suspect]]


def _close_ref(ref: weakref.ref[FileRuntime]) -> None:
    runtime = ref()
    if runtime is not None:
        runtime.close()
