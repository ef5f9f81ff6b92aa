"""`FileRuntime`: a `LeanRuntime` over one Lean process per batch, for when no process can be kept alive.

It runs the session program over a file of requests (`batch.py`), so each source is
elaborated from its imports alone, exactly as in a session. It

  1. groups the sources into few runs (`batch.plan`);
  2. runs up to `workers` Lean processes at once, taking pre-started ("warm") ones when
     the launcher supports it, so a batch does not wait for Lean's start-up;
  3. watches each run: the imports get `startup_timeout` seconds, each source `timeout` seconds
     from the moment the previous request was answered; memory is capped per process;
  4. when a run dies or is stopped mid-way, keeps every answer it gave, charges the source it
     was on, and checks the rest again in a new run; a run that dies before answering
     anything is started once more before its sources are reported as errors.
"""

from __future__ import annotations

import atexit
import os
import shutil
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from leangym.lean_project.batch import Answers, Prepared, plan, prepare, requests
from leangym.lean_project.kernel import JudgeHold, KernelCheck, KernelVerdict
from leangym.lean_project.pool import ReplCommand
from leangym.lean_project.process import LeanProcess, Spares, private_dir, run_slots, tree_rss_mb
from leangym.lean_project.runtime import LeanRuntime
from leangym.lean_project.types import InfraError, RuntimeHealth, SourceResult


class Launcher(Protocol):
    """How to start one Lean running the session program over a request file (see `embedded`, `native`)."""

    name: str
    version: str
    warm_start: bool  # may the process start before its request file exists?

    def command(self, requests_file: Path) -> tuple[list[str], dict[str, str]]: ...

    def judge_command(self) -> ReplCommand | None:
        """How to start this toolchain's judge (`kernel.Judge`), or None if it has none."""

    def can_import(self, module: str) -> bool: ...

    def import_hint(self, module: str) -> str: ...


@dataclass
class _Run:
    """A Lean process working on one batch."""

    batch: list[Prepared]
    proc: LeanProcess
    answers: Answers
    last_progress: float = 0.0
    attempt: int = 0  # 1 for a batch retried after its first run died before answering


class FileRuntime(LeanRuntime):
    """A `LeanRuntime` over one Lean process per batch (see the module docstring)."""

    def __init__(
        self,
        launcher: Launcher,
        *,
        timeout: float = 60.0,
        startup_timeout: float = 600.0,
        workers: int | None = None,
        memory_mb: int = 8192,
        warm: int = 1,
        max_batch: int = 256,
    ):
        self.launcher = launcher
        self.name = launcher.name
        self.timeout = timeout  # seconds per source, counted from the previous answer
        self.startup_timeout = startup_timeout  # seconds until the imports are answered (Lean's start-up)
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.memory_mb = memory_mb
        self.warm = warm if launcher.warm_start else 0
        self.max_batch = max_batch
        self.runs_started = 0  # Lean processes given a batch (a batch re-run after a failure counts again)
        self._run_slots = run_slots()
        self._spares: Spares[LeanProcess] = Spares(LeanProcess.cleanup)
        command = launcher.judge_command()
        self._judge = JudgeHold(command) if command is not None else None  # held from first use to `close`
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        atexit.register(_close_ref, weakref.ref(self))

    @property
    def version(self) -> str:
        return self.launcher.version

    def can_import(self, module: str) -> bool:
        return self.launcher.can_import(module)

    def import_hint(self, module: str) -> str:
        return self.launcher.import_hint(module)

    def kernel_check(self, items: Sequence[KernelCheck], *, timeout: float | None = None) -> list[KernelVerdict]:
        if self._judge is None:
            return super().kernel_check(items, timeout=timeout)
        return self._judge.get().check(items, timeout=timeout)

    def has_judge(self) -> bool:
        return self._judge is not None

    # -- public API -------------------------------------------------------------------

    def check(
        self, sources: Sequence[str], *, timeout: float | None = None, export: bool = False
    ) -> list[SourceResult]:
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
            self._count(len(runnable))
            self._run_all(deque((b, 0) for b in plan(runnable, self.max_batch)), results, limit, export)
            self._top_up_spares()  # warm up for the next call (not during this one)
        return [results[i] for i in range(len(sources))]

    def prewarm(self) -> None:
        self._forget_parent_processes()
        with self._lock:
            self._top_up_spares()

    def close(self) -> None:
        self._forget_parent_processes()
        with self._lock:
            self._closed = True
            self._spares.close()
        if self._judge is not None:
            self._judge.release()

    def _forget_parent_processes(self) -> None:
        """In a forked child (an async vector env worker), the spares are the parent's: drop, don't kill."""
        if self._pid != os.getpid():
            self._pid, self._lock = os.getpid(), threading.Lock()
            self._spares.forget()

    # -- scheduling -------------------------------------------------------------------

    def _run_all(
        self, queue: deque[tuple[list[Prepared], int]], results: dict[int, SourceResult], limit: float, export: bool
    ) -> None:
        runs: list[_Run] = []
        try:
            while queue or runs:
                while queue and len(runs) < self.workers:
                    # Never wait for a slot while holding one: two runtimes (or processes) that each
                    # held a finished run's slot and waited for a second would wait forever.
                    slot = self._run_slots.acquire(block=not runs)
                    if slot is None:
                        break
                    run = self._start(*queue.popleft(), results, slot, export)
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

    def _start(
        self, batch: list[Prepared], attempt: int, results: dict[int, SourceResult], slot: int, export: bool
    ) -> _Run | None:
        """Hand `batch` to a Lean process holding run `slot`; if none can be started, record why and return None."""
        answers = Answers(len(batch))
        text = requests(batch, answers.ids, export=export)
        proc = self._spares.take()
        try:
            if proc is None:
                proc = self._spawn(text)
            else:
                proc.feed(text)
        except OSError as e:
            if proc is not None:
                proc.cleanup()  # a spare that could not be handed its requests
            os.close(slot)
            for p in batch:
                results[p.index] = SourceResult("error", error=InfraError("startup", f"cannot start Lean: {e}"))
            return None
        proc.slots.append(slot)
        self.runs_started += 1
        return _Run(batch, proc, answers, last_progress=time.monotonic(), attempt=attempt)

    def _spawn(self, text: str | None) -> LeanProcess:
        """A new Lean process; with `text` None it is a spare, waiting for its requests."""
        workdir = private_dir()
        # Lean may read the request folder only: its answers and stderr go to files beside it, which a
        # later source of the batch could otherwise read (earlier sources' proofs: a red-team find).
        requests = workdir / "requests"
        requests.mkdir(mode=0o700)
        input_file = requests / "requests.jsonl"
        argv, env = self.launcher.command(input_file)
        try:
            if text is not None:
                input_file.write_text(text, encoding="utf-8")
            proc = LeanProcess(argv, env, workdir, input_file, cwd=requests)
        except OSError:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        if text is not None:
            proc.fed_at = proc.started
        return proc

    def health(self) -> RuntimeHealth:
        """Its warm spares: a batch's own processes live for that batch only."""
        pids = self._spares.pids()
        return RuntimeHealth("oneshot", len(pids), 0, pids, sum(tree_rss_mb(pid) for pid in pids))

    def _top_up_spares(self) -> None:
        """Warm runs for the next call, as many as `warm` (and `workers`) allow."""
        self._spares.top_up(min(self.warm, self.workers), lambda: self._spawn(None))

    # -- watching one run -------------------------------------------------------------

    def _watch(
        self, run: _Run, results: dict[int, SourceResult], limit: float
    ) -> list[tuple[list[Prepared], int]] | None:
        """Advance `run`; when it is over, record results and return batches to run again."""
        before = (run.answers.ready, len(run.answers.messages))
        run.answers.feed(run.proc.read_new())
        now = time.monotonic()
        if (run.answers.ready, len(run.answers.messages)) != before:
            run.last_progress = now
        failure: InfraError | None = None
        finished = len(run.answers.messages) >= len(run.batch)
        if run.answers.unreadable:
            failure = InfraError("protocol", f"Lean printed something that is not an answer: {run.answers.unreadable}")
        elif run.proc.returncode() is None and not finished:
            allowed = limit if run.answers.ready else self.startup_timeout
            if now - run.last_progress > allowed:
                failure = InfraError("timeout" if run.answers.ready else "startup", f"no answer for {allowed:.0f} s")
            elif (over := run.proc.past_memory(self.memory_mb)) is not None:
                failure = InfraError("out_of_memory", over)
            else:
                return None
        run.proc.kill()
        run.answers.feed(run.proc.read_new())
        return self._settle(run, results, failure)

    def _settle(
        self, run: _Run, results: dict[int, SourceResult], failure: InfraError | None
    ) -> list[tuple[list[Prepared], int]]:
        """Record what `run` answered; charge the source it stopped on; return the rest to run again."""
        proc, answered = run.proc, run.answers.messages[: len(run.batch)]
        wall = time.monotonic() - (proc.fed_at or proc.started)
        share = wall / len(run.batch)
        for k, (p, messages) in enumerate(zip(run.batch, answered, strict=False)):
            results[p.index] = SourceResult("ok", messages, seconds=share, constants=run.answers.constants[k])
        left = run.batch[len(answered) :]
        if not left:
            return []
        if failure is None:
            code = proc.returncode()
            failure = InfraError("crash", f"Lean exited with status {code} mid-batch\n{proc.stderr_tail()}".strip())
        if failure.kind == "timeout":  # a verdict: the source ran past its limit
            results[left[0].index] = SourceResult("timeout", seconds=wall, error=failure)
            return [(left[1:], 0)] if left[1:] else []
        if not run.answers.ready:  # died before its imports were answered: Lean did not come up
            if run.attempt == 0:
                return [(left, 1)]  # once more, in a fresh process
            kind = "out_of_memory" if failure.kind == "out_of_memory" else "startup"
            for p in left:
                results[p.index] = SourceResult("error", seconds=wall, error=InfraError(kind, failure.detail))
            return []
        suspect, rest = left[0], left[1:]
        if run.attempt == 0:  # the source Lean died on gets a fresh process to itself, once
            return [([suspect], 1), *([(rest, 0)] if rest else [])]
        results[suspect.index] = SourceResult("error", seconds=wall, error=failure)
        return [(rest, 0)] if rest else []


def _close_ref(ref: weakref.ref[FileRuntime]) -> None:
    runtime = ref()
    if runtime is not None:
        runtime.close()
