"""A pool of Lean REPL workers: N processes, jobs spread over them, failures contained.

Each `ReplWorker` owns one REPL process and remembers the headers it elaborated (`import
Mathlib` costs seconds, within `startup_timeout`; a proof checked on top of it, milliseconds). `ReplPool.map` runs a
list of jobs on all workers at once, each worker taking the next job when it is free:

* a worker whose REPL crashes, stops answering within the job's time limit, or passes its
  memory cap is killed and restarted (losing its headers); the job goes back in the queue
  (`retries` times, default once) unless it ran out of time (a timeout is the job's own
  outcome); after that the job's failure is reported, never a verdict;
* between jobs a worker is recycled when its REPL has answered `max_requests` requests or
  holds more than `recycle_mb` of private memory (default `memory_mb`; the REPL keeps every
  environment it made), so no job is lost to a memory cap that could be seen coming;
* if REPLs keep dying before answering anything (a broken build), the remaining jobs fail at
  once with the reason instead of restarting processes for each of them;
* each running job holds one machine-wide Lean slot (`process.run_slots`), as every
  Lean process of this project does, when `machine_slots` is on;
* with `spares`, each worker keeps a second process starting while the first works (if the
  machine's spare slots allow: `process.spare_slots`), so a restart after a crash, a timeout
  or a recycling finds a warm one instead of waiting for a slow start-up (the embedded Lean's
  ~20 s where it elaborates its program at start).

Tactic sessions need the one worker that holds their proof states: `ReplPool.call(i, run)`
runs there, with the same restart-and-retry rule (`tactics.ReplTactics`).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from leangym.lean_project.process import Spares, run_slots, tree_rss_mb
from leangym.lean_project.repl import CommandResponse, ProofStepResponse, ReplFailure, ReplProcess, ReplRefusal
from leangym.lean_project.types import InfraError, RuntimeHealth

J = TypeVar("J")
R = TypeVar("R")


@dataclass(frozen=True)
class ReplCommand:
    """How to start one REPL: the `repl` binary with a Lake project's paths, or a test double.

    `SCRATCH` in `argv`, in `env`'s values or as `cwd` stands for the process's own empty
    folder (`repl.ReplProcess` makes it), its working folder. `tag_requests`: the program
    echoes request ids.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str] | None = None
    cwd: Path | str | None = None
    tag_requests: bool = False
    check: Callable[[], str | None] | None = None  # before each start: why it may not start, or None


class ReplWorker:
    """One REPL process (started on first use, restarted after a failure) and its elaborated headers."""

    def __init__(
        self,
        index: int,
        launch: ReplCommand,
        memory_mb: float | None,
        max_requests: int,
        recycle_mb: float | None = None,
        spare: bool = False,
        startup_timeout: float = 600.0,
    ):
        self.index = index
        self.launch = launch  # how its processes start
        self.startup_timeout = startup_timeout  # seconds a header may take (`import Mathlib`: several)
        self.memory_mb = memory_mb  # killed past this, mid-request
        self.recycle_mb = recycle_mb if recycle_mb is not None else memory_mb  # restarted past this, between jobs
        self.max_requests = max_requests
        self.lock = threading.Lock()  # held by whoever is talking to the process
        self.generation = 0  # +1 at every (re)start: proof state ids of older generations are gone
        self.headers: dict[tuple[int | None, str], CommandResponse] = {}  # (base env, text) -> the answer: its env id
        self.header_elaborations = 0  # headers this worker elaborated (how often header reuse missed)
        self.restarts = 0  # processes replaced after a failure: a request failed on it, or it was found dead
        self._process: ReplProcess | None = None
        self.keep_spare = spare  # start the next process while this one works (slow start-ups)
        self._spares: Spares[ReplProcess] = Spares(ReplProcess.close)  # the next process, when it keeps one
        self._pid = os.getpid()

    @property
    def process(self) -> ReplProcess:
        """The live process, started if there is none (the warm spare, when there is one)."""
        if self._pid != os.getpid():  # a forked child (an async vector env): the processes are the parent's
            self._pid, self._process, self.lock = os.getpid(), None, threading.Lock()
            self._spares.forget()
            self.headers.clear()
        if self._process is None or not self._process.alive():
            if self._process is not None:  # it died between requests (killed, out of memory): a failure too
                self.restarts += 1
            self.stop()
            self._process = self._spares.take() or self._start()
            self.generation += 1
        return self._process

    def pids(self) -> tuple[int, ...]:
        """The ids of its process when it is up and of its warm spare (none is started for this)."""
        proc = self._process
        return ((proc.pid,) if proc is not None and proc.alive() else ()) + self._spares.pids()

    def _start(self) -> ReplProcess:
        c = self.launch
        why = c.check() if c.check is not None else None
        if why is not None:
            raise ReplFailure(InfraError("startup", why))
        return ReplProcess(c.argv, env=c.env, cwd=c.cwd, memory_mb=self.memory_mb, tag_requests=c.tag_requests)

    @property
    def answered(self) -> int:
        """Requests the current process answered (0: fresh, or not started)."""
        return self._process.requests if self._process is not None else 0

    def header(
        self, text: str, *, env: int | None = None, timeout: float | None = None
    ) -> CommandResponse | ReplRefusal:
        """The environment of `text` (imports and leading commands; on `env` if given, an environment
        this process made), elaborated once per process, within `timeout` (default: the start-up's)."""
        known = self.headers.get((env, text))
        if known is not None and self._process is not None and self._process.alive():
            return known
        answer = self.command(text, env=env, timeout=self.startup_timeout if timeout is None else timeout)
        self.header_elaborations += 1
        if isinstance(answer, CommandResponse):
            self.headers[(env, text)] = answer
            if self.keep_spare:  # now, not at start: two start-ups at once would slow the first
                self._spares.top_up(1, self._start, failures=(ReplFailure,))
        return answer

    def command(
        self, text: str, *, env: int | None = None, timeout: float, line_offset: int = 0, export: bool = False
    ) -> CommandResponse | ReplRefusal:
        """A command on the live process (`ReplProcess.command`): a source's body on its header's `env`."""
        return self.process.command(text, env=env, timeout=timeout, line_offset=line_offset, export=export)

    def tactic(self, tactic: str, proof_state: int, *, timeout: float) -> ProofStepResponse | ReplRefusal:
        """A tactic on a proof state of the live process (`ReplProcess.tactic`)."""
        return self.process.tactic(tactic, proof_state, timeout=timeout)

    def request(self, payload: Mapping[str, object], timeout: float) -> dict:
        """Any request of the protocol (the judge's replay), answered raw (`ReplProcess.request`)."""
        return self.process.request(payload, timeout)

    def start(self) -> int:
        """Start the process now if none is up (its warm spare, when it keeps one); its id."""
        return self.process.pid

    def recycle_if_due(self) -> None:
        """Restart between jobs when the process answered too many requests or grew too big."""
        proc = self._process
        if proc is None:
            return
        if proc.requests >= self.max_requests or (
            self.recycle_mb is not None and proc.recent_rss_mb() > self.recycle_mb
        ):
            self.stop()

    def kill(self) -> None:
        """Kill the process (and the spare) now, from any thread (whoever is talking to it gets a `ReplFailure`)."""
        if self._process is not None:
            self._process.kill()
        self._spares.kill()

    def failed(self) -> None:
        """End the process a request failed on; the next use starts another (a restart)."""
        self.stop()
        self.restarts += 1

    def close(self) -> None:
        """End the process and the spare."""
        self.stop()
        self._spares.close()

    def stop(self) -> None:
        """End the process (if any); the next use takes the spare or starts a fresh one."""
        if self._process is not None:
            self._process.close()
            self._process = None
        self.headers.clear()


@dataclass
class _Item(Generic[J]):
    index: int
    job: J
    attempts: int = 0


@dataclass
class _Breaker:
    """Counts REPLs that died before answering anything, with no answer in between."""

    limit: int
    count: int = 0
    last: InfraError | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, worker: ReplWorker, error: InfraError | None) -> None:
        with self.lock:
            if error is None:
                self.count = 0
            elif worker.answered == 0 and error.kind in ("crash", "startup", "protocol"):
                self.count += 1
                self.last = error

    def tripped(self) -> InfraError | None:
        with self.lock:
            if self.count < self.limit or self.last is None:
                return None
            return InfraError("startup", f"the REPL fails before answering anything: {self.last.detail}")


class ReplPool:
    """N REPL workers; see the module docstring. Use as a context manager or call `close()`."""

    def __init__(
        self,
        command: ReplCommand,
        *,
        workers: int = 1,
        startup_timeout: float = 600.0,
        memory_mb: float | None = 8192,
        recycle_mb: float | None = None,
        spares: bool = False,
        max_requests: int = 1000,
        retries: int = 1,
        machine_slots: bool = True,
    ):
        self.command = command
        self.retries = retries
        self.workers = [
            ReplWorker(i, command, memory_mb, max_requests, recycle_mb, spares, startup_timeout)
            for i in range(max(1, workers))
        ]
        self._slots = run_slots() if machine_slots else None
        self._breaker = _Breaker(limit=3 * len(self.workers))
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this REPL pool is closed")

    def map(
        self,
        jobs: Sequence[J],
        run: Callable[[ReplWorker, J], R],
        fail: Callable[[J, InfraError], R],
    ) -> list[R]:
        """`run(worker, job)` for every job, on all workers at once; `fail(job, why)` for jobs that could not run."""
        self._check_open()
        if not jobs:
            return []
        queue: deque[_Item[J]] = deque(_Item(i, job) for i, job in enumerate(jobs))
        results: dict[int, R] = {}
        lock = threading.Lock()

        interrupted = threading.Event()

        def next_item() -> _Item[J] | None:
            with lock:
                return queue.popleft() if queue and not (interrupted.is_set() or self._closed) else None

        crashed: list[BaseException] = []  # a bug in `run` is re-raised in the caller's thread

        def drive(worker: ReplWorker) -> None:
            try:
                drive_on(worker)
            except BaseException as e:
                crashed.append(e)

        def drive_on(worker: ReplWorker) -> None:
            while (item := next_item()) is not None:
                broken = self._breaker.tripped()
                if broken is not None:
                    results[item.index] = fail(item.job, broken)
                    continue
                outcome = self._attempt(worker, item, run)
                if isinstance(outcome, InfraError):
                    item.attempts += 1
                    if item.attempts <= self.retries and outcome.kind != "timeout":
                        with lock:
                            queue.append(item)
                    else:
                        results[item.index] = fail(item.job, outcome)
                else:
                    results[item.index] = outcome

        threads = [
            threading.Thread(target=drive, args=(w,), daemon=True, name=f"repl-worker-{w.index}")
            for w in self.workers[: max(1, min(len(self.workers), len(jobs)))]
        ]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(timeout=0.2)  # a short join keeps Ctrl-C working
        except BaseException:  # Ctrl-C: no new job starts, and the running ones lose their REPLs
            interrupted.set()
            for w in self.workers:
                w.kill()
            raise
        if crashed:
            raise crashed[0]
        return [results[i] for i in range(len(jobs))]

    def _attempt(self, worker: ReplWorker, item: _Item[J], run: Callable[[ReplWorker, J], R]) -> R | InfraError:
        with worker.lock:  # then a machine slot: a caller waiting for a busy worker holds none
            slot = self._slots.acquire() if self._slots else None
            try:
                try:
                    result = run(worker, item.job)
                except ReplFailure as failure:
                    self._breaker.record(worker, failure.error)
                    worker.failed()
                    return failure.error
                self._breaker.record(worker, None)
                worker.recycle_if_due()
                return result
            finally:
                if slot is not None:
                    os.close(slot)

    def call(self, index: int, run: Callable[[ReplWorker], R]) -> R | InfraError:
        """`run(worker)` on worker `index` (whose process holds the caller's proof states), retried like a job."""
        self._check_open()
        worker = self.worker(index)
        item: _Item[None] = _Item(index, None)
        while True:
            outcome = self._attempt(worker, item, lambda w, _: run(w))
            if not isinstance(outcome, InfraError) or item.attempts >= self.retries:
                return outcome
            item.attempts += 1

    def on_every_worker(self, run: Callable[[ReplWorker], object]) -> None:
        """`run(worker)` once on each worker, all at once (e.g. elaborate a header everywhere); failures ignored."""

        def one(worker: ReplWorker) -> None:  # nothing once the pool is closed (`prewarm` runs this in the background)
            self._attempt(worker, _Item(worker.index, None), lambda w, _: None if self._closed else run(w))

        threads = [threading.Thread(target=one, args=(w,), daemon=True) for w in self.workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    @property
    def restarts(self) -> int:
        """Processes its workers replaced after a failure (`health()`)."""
        return sum(w.restarts for w in self.workers)

    def health(self, mode: str) -> RuntimeHealth:
        """Its processes that are up now, spares included (none is started for this), their memory, its restarts."""
        pids = tuple(pid for w in self.workers for pid in w.pids())
        return RuntimeHealth(mode, len(pids), self.restarts, pids, sum(tree_rss_mb(pid) for pid in pids))

    def answered(self) -> int:
        """Requests the workers' current processes answered."""
        return sum(w.answered for w in self.workers)

    def broken(self) -> InfraError | None:
        """Why processes keep dying before answering anything (then jobs fail at once), or None."""
        return self._breaker.tripped()

    def worker(self, index: int) -> ReplWorker:
        return self.workers[index % len(self.workers)]

    @property
    def header_elaborations(self) -> int:
        return sum(w.header_elaborations for w in self.workers)

    def close(self) -> None:
        """Stop every REPL: end of input, a short grace, then SIGKILL. Safe to call twice."""
        self._closed = True
        self._stop_all()

    def _stop_all(self) -> None:
        deadline = time.monotonic() + 5
        for w in self.workers:
            if w.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                try:
                    w.close()
                finally:
                    w.lock.release()
            else:  # a thread is stuck talking to it: kill the process under it
                w.kill()

    def __enter__(self) -> ReplPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
