"""Tactic mode over the REPL pool: proof states as handles that survive a worker restart.

    tactics = ReplTactics(pool)
    step = tactics.start("theorem t (x : Nat) : x = x := by sorry", header="import Mathlib")
    step = tactics.apply(step.state, "rfl")
    step.state.done                      # the REPL's proofStatus is "Completed"

`start` elaborates a statement whose proof is `sorry` and returns the proof state at that
sorry; `apply` runs one tactic (or a block) in a state and returns the next one. A state
lives in one REPL process; its handle also records how it was reached (header, statement,
tactics), so when that process was restarted (a crash, a timeout, the memory cap) the state
is rebuilt there by replaying the same requests before the tactic runs.

A tactic *fails* (`TacticStep.failed`) when Lean refused it (the REPL's `Lean error: …`) or
reported an error while running it; the REPL's own failure is `TacticStep.infra` instead,
never a judgement of the tactic. `done` means the REPL rebuilt the whole proof term and the
kernel accepted it with no goal, `sorry` or metavariable left; it does not audit axioms
(`native_decide`), which the verifier does for a final reward.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from leangym.lean_project.pool import ReplPool, ReplWorker
from leangym.lean_project.repl import LeanError, ProofStepResponse
from leangym.lean_project.types import InfraError, Message


@dataclass(frozen=True)
class TacticState:
    """A proof state: its goals, and the path that rebuilds it on a fresh REPL."""

    goals: tuple[str, ...]
    proof_status: str  # the REPL's `proofStatus` ("" for the state at the statement's sorry)
    header: str
    statement: str  # the command whose first `sorry` starts the proof
    tactics: tuple[str, ...] = ()  # applied since that sorry, in order
    worker: int = field(default=0, compare=False)
    generation: int = field(default=0, compare=False)
    proof_state: int = field(default=0, compare=False)  # the REPL's id, valid in (worker, generation)

    @property
    def done(self) -> bool:
        return self.proof_status == "Completed"


@dataclass(frozen=True)
class TacticStep:
    """What one `start` or `apply` gave: a new state, or why there is none."""

    state: TacticState | None
    error: str = ""  # Lean's reason when the statement or tactic was refused
    messages: tuple[Message, ...] = ()
    infra: InfraError | None = None  # the REPL itself failed (after the pool's retries)

    @property
    def failed(self) -> bool:
        return self.state is None


class ReplTactics:
    """Starts proofs and applies tactics through a `ReplPool` (see the module docstring)."""

    def __init__(self, pool: ReplPool, *, timeout: float = 60.0, header_timeout: float = 600.0):
        self.pool = pool
        self.timeout = timeout
        self.header_timeout = header_timeout
        self._next_worker = itertools.count()
        self._lock = threading.Lock()

    def start(self, statement: str, header: str = "") -> TacticStep:
        """The proof state at the first `sorry` of `statement` (e.g. `theorem t : P := by sorry`)."""
        with self._lock:
            index = next(self._next_worker) % len(self.pool.workers)
        root = TacticState((), "", header, statement, worker=index)
        outcome = self.pool.call(index, lambda w: self._start_on(w, root))
        return TacticStep(None, str(outcome), infra=outcome) if isinstance(outcome, InfraError) else outcome

    def apply(self, state: TacticState, tactic: str) -> TacticStep:
        """Run `tactic` in `state`; the state itself is never changed (states are immutable handles)."""
        outcome = self.pool.call(state.worker, lambda w: self._apply_on(w, state, tactic))
        return TacticStep(None, str(outcome), infra=outcome) if isinstance(outcome, InfraError) else outcome

    def _start_on(self, worker: ReplWorker, root: TacticState) -> TacticStep:
        env = None
        if root.header:
            head = worker.header(root.header, self.header_timeout)
            if isinstance(head, LeanError):
                return TacticStep(None, f"the header did not elaborate: {head.message}")
            env = head.env
        answer = worker.process.command(root.statement, env=env, timeout=self.timeout)
        if isinstance(answer, LeanError):
            return TacticStep(None, answer.message)
        errors = [m for m in answer.messages if m.is_error]
        starts = [s for s in answer.sorries if s.proof_state is not None]
        if errors or not starts:
            reason = "\n".join(m.text for m in errors) or "the statement has no `sorry` to start from"
            return TacticStep(None, reason, tuple(answer.messages))
        first = starts[0]
        state = TacticState(
            (first.goal,), "", root.header, root.statement, (), worker.index, worker.generation, first.proof_state
        )
        return TacticStep(state, messages=tuple(answer.messages))

    def _apply_on(self, worker: ReplWorker, state: TacticState, tactic: str) -> TacticStep:
        worker.process  # noqa: B018 - start it now if it died, so the generation below is current
        live = state.proof_state
        if state.generation != worker.generation:
            rebuilt = self._rebuild(worker, state)
            if rebuilt.failed:
                return rebuilt
            live = rebuilt.state.proof_state  # type: ignore[union-attr]
        answer = worker.process.tactic(tactic, live, timeout=self.timeout)
        if isinstance(answer, LeanError):
            return TacticStep(None, answer.message.removeprefix("Lean error:\n"))
        return _step(answer, state, tactic, worker)

    def _rebuild(self, worker: ReplWorker, state: TacticState) -> TacticStep:
        """Reach `state` again on this worker's current process by replaying its path."""
        step = self._start_on(worker, TacticState((), "", state.header, state.statement))
        for tactic in state.tactics:
            if step.state is None:
                break
            answer = worker.process.tactic(tactic, step.state.proof_state, timeout=self.timeout)
            if isinstance(answer, LeanError):
                step = TacticStep(None, answer.message)
            else:
                step = _step(answer, step.state, tactic, worker)
        if step.state is None:
            return TacticStep(None, f"could not rebuild the proof state after a REPL restart: {step.error}")
        return step


def _step(answer: ProofStepResponse, before: TacticState, tactic: str, worker: ReplWorker) -> TacticStep:
    errors = [m for m in answer.messages if m.is_error]
    if errors:  # Lean recovered from an error (e.g. an unknown identifier) by inserting `sorry`
        return TacticStep(None, "\n".join(m.text for m in errors), tuple(answer.messages))
    state = TacticState(
        tuple(answer.goals),
        answer.proof_status,
        before.header,
        before.statement,
        (*before.tactics, tactic),
        worker.index,
        worker.generation,
        answer.proof_state,
    )
    return TacticStep(state, messages=tuple(answer.messages))
