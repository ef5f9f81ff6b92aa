"""The runtime API: check a batch of Lean sources, get one `SourceResult` per source.

`LeanRuntime` is what every caller (verifier, environments, CLI) uses; `check_judged` is the
verifier's one call (the untrusted check, and the judge's answer on each proof it accepted).
The implementations:

* `repl_runtime.ReplRuntime`: long-lived Lean processes (the embedded session program, or the
  native Lean REPL) that take sources one request at a time: the default;
* `oneshot.FileRuntime`: one Lean process per batch, for when no process can be kept alive;
* `embedded.EmbeddedRuntime` and `native.NativeRuntime`: a toolchain's sessions (or one-shot
  runs), its judge and, natively, the REPL for proof states.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from leangym.lean_project.kernel import Judged, JudgeLine, KernelCheck, KernelVerdict, Reference
from leangym.lean_project.types import RuntimeHealth, SourceResult

if TYPE_CHECKING:
    from leangym.lean_project.tactics import TacticBackend

# Told of one source's result as soon as it is known: (the source's index in the batch, its result).
OnResult = Callable[[int, SourceResult], None]


class LeanRuntime(ABC):
    """Checks Lean sources. Use as a context manager, or call `close()` to release Lean processes."""

    name: str = "lean"
    lean_batches: int = 0  # `check` calls that sent at least one source to Lean (how well callers batch)

    def _count(self, sources: int) -> None:
        if sources:
            self.lean_batches += 1

    @property
    @abstractmethod
    def version(self) -> str:
        """The Lean version string, part of every cache key."""

    @abstractmethod
    def check(
        self, sources: Sequence[str], *, timeout: float | None = None, export: bool = False
    ) -> list[SourceResult]:
        """One result per source, in order. Never raises for a bad source.

        With `export`, a result also carries the declarations its source added
        (`SourceResult.constants`) where the runtime's Lean program can export them: untrusted
        data, for `kernel_check`.
        """

    def check_each(
        self, sources: Sequence[str], on_result: OnResult, *, timeout: float | None = None, export: bool = False
    ) -> list[SourceResult]:
        """`check`, calling `on_result(index, result)` once per source as soon as its result is known:
        `check_judged` sends a proof to the judge while Lean checks the rest of the batch. The calls may
        come from other threads and in any order. Here: after the whole batch (a runtime whose Lean
        answers source by source says each at once)."""
        results = self.check(sources, timeout=timeout, export=export)
        for i, result in enumerate(results):
            on_result(i, result)
        return results

    def check_judged(
        self, sources: Sequence[str], references: Sequence[Reference | None], *, timeout: float | None = None
    ) -> list[Judged]:
        """`check` with export, and the judge's answer on every source Lean accepted
        (`SourceResult.accepted`) that has a reference: each goes to the judge as soon as its result
        is in, while Lean checks the rest (two processes, two cores: the judge's time hides).
        Raises what the judge raised, after the check, and a `RuntimeError` for a runtime that
        answered the wrong number of results."""
        if len(references) != len(sources):
            raise ValueError(f"{len(sources)} sources but {len(references)} references")
        with JudgeLine(lambda items: self.kernel_check(items, timeout=timeout)) as line:

            def on_result(i: int, result: SourceResult) -> None:
                reference = references[i]
                if reference is not None and result.accepted and result.constants is not None:
                    line.put(i, result, reference.check(result.constants))

            results = self.check_each(sources, on_result, timeout=timeout, export=True)
        if len(results) != len(sources):
            raise RuntimeError(f"the {self.name} runtime answered {len(results)} results for {len(sources)} sources")
        return [Judged(result, line.answer(i, result)) for i, result in enumerate(results)]

    def kernel_check(self, items: Sequence[KernelCheck], *, timeout: float | None = None) -> list[KernelVerdict]:
        """The trusted judge's verdict on each item (`kernel.py`); a runtime without a judge answers `error`
        (a bare REPL pool's verdicts come from the native audit instead: `rewards/audit.py`)."""
        detail = f"the {self.name} runtime has no trusted judge"
        return [KernelVerdict("error", reason="no_judge", detail=detail) for _ in items]

    def has_judge(self) -> bool:
        """Whether `kernel_check` answers (else a verifier falls back to the native audit, `rewards/audit.py`)."""
        return False

    @abstractmethod
    def can_import(self, module: str) -> bool:
        """Whether `import module` can be satisfied by this runtime."""

    def import_hint(self, module: str) -> str:
        """What to tell a user whose source imports `module`, which this runtime cannot load."""
        return f"`import {module}`: the {self.name} runtime cannot load it (see docs/native.md)"

    def proof_state_tactics(self, *, timeout: float, max_heartbeats: int | None) -> TacticBackend | None:
        """Tactic mode on proof states this runtime's Lean keeps (`tactics.ReplTactics` over the native
        Lean REPL), each tactic within `timeout` seconds and `max_heartbeats`; or None: this runtime's
        Lean (the embedded session program, one-shot runs, Ray actors) keeps none, and tactics are
        run by elaborating the statement with the tactics so far (`tactics.ElaborationTactics`)."""
        return None

    def health(self) -> RuntimeHealth:
        """How its Lean processes fare; a runtime that starts one Lean per batch keeps none running."""
        return RuntimeHealth("per-batch", 0, 0)

    def prewarm(self) -> None:  # noqa: B027 - optional hook, a no-op where start-up is cheap
        """Start Lean ahead of the next `check` where start-up is slow."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release Lean processes."""

    def __enter__(self) -> LeanRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StreamingRuntime(LeanRuntime):
    """A runtime whose Lean answers source by source: it reports each result as it comes
    (`check_each`, its own), and `check` waits for the whole batch."""

    def check(
        self, sources: Sequence[str], *, timeout: float | None = None, export: bool = False
    ) -> list[SourceResult]:
        return self.check_each(sources, _ignore, timeout=timeout, export=export)

    @abstractmethod
    def check_each(
        self, sources: Sequence[str], on_result: OnResult, *, timeout: float | None = None, export: bool = False
    ) -> list[SourceResult]: ...


def _ignore(index: int, result: SourceResult) -> None:
    """The `on_result` of a caller who waits for the whole batch."""
