"""One Lean run for the steps of many searches: `check` calls from several threads, merged.

A tree search in `LeanTactic-v0` on the embedded runtime pays a Lean run (seconds) per node
expansion, whatever the number of tactics tried. Searching 100 problems one after another
would cost 100 times that per step. `LockstepRuntime` lets each problem's search run in a
thread of its own, written as a plain sequential loop, and merges their `check` calls: a
call waits until every search still running has made one (or until `patience` seconds
pass without a new call), then all of them go to the runtime underneath as one batch. So
one Lean run expands one node of every problem.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from leangym.lean_project.kernel import KernelCheck, KernelVerdict
from leangym.lean_project.runtime import LeanRuntime
from leangym.lean_project.types import SourceResult


@dataclass
class _Pending:
    """A `check` call waiting for the lockstep batch it joins."""

    sources: list[str]
    timeout: float | None
    export: bool
    results: list[SourceResult] | None = None
    error: BaseException | None = None


class LockstepRuntime(LeanRuntime):
    """A `LeanRuntime` over `inner` that batches the concurrent calls of `parties` threads."""

    def __init__(self, inner: LeanRuntime, parties: int, *, patience: float = 2.0):
        self.inner = inner
        self.name = inner.name
        self.parties = parties  # threads still searching; each calls `leave()` when done
        self.patience = patience  # seconds to wait for a missing thread (one busy outside Lean)
        self._pending: list[_Pending] = []
        self._cond = threading.Condition()

    @property
    def version(self) -> str:
        return self.inner.version

    def can_import(self, module: str) -> bool:
        return self.inner.can_import(module)

    def kernel_check(self, items: Sequence[KernelCheck], *, timeout: float | None = None) -> list[KernelVerdict]:
        return self.inner.kernel_check(items, timeout=timeout)

    def has_judge(self) -> bool:
        return self.inner.has_judge()

    def check(
        self, sources: Sequence[str], *, timeout: float | None = None, export: bool = False
    ) -> list[SourceResult]:
        call = _Pending(list(sources), timeout, export)
        with self._cond:
            self._pending.append(call)
            while call.results is None and call.error is None:
                if len(self._pending) >= self.parties:
                    self._flush()
                elif not self._cond.wait(timeout=self.patience) and call in self._pending:
                    self._flush()  # nobody else came in time: go with the calls at hand
        if call.error is not None:
            raise call.error
        return call.results  # type: ignore[return-value]

    def leave(self) -> None:
        """One search is over: stop waiting for it."""
        with self._cond:
            self.parties -= 1
            if self._pending and len(self._pending) >= self.parties:
                self._flush()

    def _flush(self) -> None:
        """Check every pending call (one `inner.check` per distinct timeout) and wake their threads."""
        calls, self._pending = self._pending, []
        for timeout, export in dict.fromkeys((c.timeout, c.export) for c in calls):
            group = [c for c in calls if (c.timeout, c.export) == (timeout, export)]
            try:
                results = self.inner.check([s for c in group for s in c.sources], timeout=timeout, export=export)
            except BaseException as e:  # handed to every waiting caller, re-raised in its own thread
                for c in group:
                    c.error = e
                continue
            at = 0
            for c in group:
                c.results, at = results[at : at + len(c.sources)], at + len(c.sources)
        self._cond.notify_all()
