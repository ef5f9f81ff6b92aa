"""Tactic mode: a proof one tactic at a time, on any Lean runtime (`LeanTactic-v0` is built on it).

    backend = ElaborationTactics(get_runtime("embedded"))   # or runtime.proof_state_tactics(...) on a native REPL
    result = backend.start("theorem t (n : Nat) : 0 + n = n := by sorry", header="")
    result.state.goals                    # ('n : Nat\\n⊢ 0 + n = n',): one string per goal, as Lean prints it
    result = backend.apply(result.state, "induction n")
    result.failed, result.error           # a refused tactic: no state, Lean's error
    results = backend.apply_many(state, ["simp", "omega", "rfl"])   # one Lean run where the backend batches

A `TacticBackend` starts a proof at the first `sorry` of a statement and applies tactics to
states. States (`TacticState`) are immutable values: their goals, the statement, and the
tactics that lead to them from that `sorry`. A backend never changes a state; it answers a
`TacticResult`: the state reached (no goals once the proof is done), or Lean's reason for
refusing the tactic (`failed`), or Lean's own failure (`infra`: a crash, a timeout), which is
never a judgement of the tactic. Both backends take the verifier's `maxHeartbeats`.

`ElaborationTactics` works over `LeanRuntime.check`, so on every runtime (embedded wasm,
native `lean`, the native REPL pool). A state is *re-elaborated*: the statement with its
`sorry` replaced by the state's tactics and the new one (on the embedded runtime one request
to a warm session, tens of milliseconds),

    set_option maxHeartbeats 400000 in
    theorem t (n : Nat) : 0 + n = n := by
      induction n
      simp                                -- the tactic being tried

and the new goals are read from the one error Lean reports at the `by` when goals remain
(`unsolved goals` + the goals, printed exactly as `trace_state` would print them). Any other
error means the tactic failed; no error means no goal is left. Every candidate tactic for a
state is a separate source of one `check` call, so expanding a search node costs one Lean run
(`apply_many`). Results are cached by (header, statement, the state's goals, tactic), so going
back to a state and trying a tactic again costs nothing; the key is the goals, not the path
that reached them, so a state reached by two paths is one state (as in the search graph) and a
result found along one path serves the other. docs/envs.md gives the measured cost per step
(`bench/session.py --only steps`).

`ReplTactics` uses the proof states of the Lean REPL itself (a native `ReplPool`): one
request per tactic, nothing elaborated twice.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import textwrap
import threading
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from leangym.lean_project.pool import ReplPool, ReplWorker
from leangym.lean_project.repl import ProofStepResponse, ReplRefusal
from leangym.lean_project.runtime import LeanRuntime
from leangym.lean_project.source import code_tokens, heartbeat_limit
from leangym.lean_project.types import InfraError, Message, Position, SourceResult

__all__ = [
    "ElaborationTactics",
    "ReplTactics",
    "TacticBackend",
    "TacticResult",
    "TacticState",
    "state_id",
    "tactic_block",
]

INDENT = "  "


@dataclass(frozen=True)
class TacticState:
    """A proof state: its goals, and the path that reaches it from the statement's `sorry`."""

    goals: tuple[str, ...]  # one string per goal, as Lean prints it; () once no goal is left
    header: str
    statement: str  # the command whose first `sorry` starts the proof
    tactics: tuple[str, ...] = ()  # applied since that sorry, in order


@dataclass(frozen=True)
class TacticResult:
    """What `start` or one tactic gave: the state reached, or why there is none."""

    state: TacticState | None  # None when the statement or the tactic was refused
    error: str = ""  # Lean's reason, or why the tactic was refused before Lean saw it
    messages: tuple[Message, ...] = ()  # Lean's (`ElaborationTactics`: positions from the tactic's first line)
    infra: InfraError | None = None  # Lean itself failed (crash, timeout): not a judgement of the tactic
    tactic: str = ""  # the tactic applied ("" for `start`)

    @property
    def failed(self) -> bool:
        return self.state is None

    @property
    def goals(self) -> tuple[str, ...]:
        return () if self.state is None else self.state.goals

    @property
    def state_id(self) -> str | None:
        return None if self.state is None else state_id(self.state.goals)


class TacticBackend(ABC):
    """Starts a proof and applies tactics to immutable states (see the module docstring).

    A backend subclasses it: `start` and `apply` are its own; `apply_many` applies each tactic
    in turn unless the backend checks several in one Lean run (`ElaborationTactics`)."""

    @abstractmethod
    def start(self, statement: str, header: str = "") -> TacticResult:
        """The state at the first `sorry` of `statement`, or why there is none (the statement did not elaborate)."""

    @abstractmethod
    def apply(self, state: TacticState, tactic: str) -> TacticResult:
        """Run `tactic` in `state`: a new state (no goals when it closed the last one), or Lean's error."""

    def apply_many(self, state: TacticState, tactics: Sequence[str]) -> list[TacticResult]:
        """Each tactic applied to `state`, in order."""
        return [self.apply(state, t) for t in tactics]


def tactic_block(tactics: Sequence[str]) -> str:
    """The tactics as the lines of a `by` block: each dedented, then indented by two spaces."""
    lines = [INDENT + ln.rstrip() for t in tactics for ln in (textwrap.dedent(t).strip("\n").splitlines() or [""])]
    return "\n".join(lines)


def state_id(goals: Sequence[str]) -> str:
    """A stable name for a proof state: a hash of its goals as Lean prints them.

    Two paths that reach the same goals reach the same state id (one node of the search graph).
    """
    text = "\n\n".join("\n".join(line.rstrip() for line in g.strip().splitlines()) for g in goals)
    return hashlib.sha256(text.encode()).hexdigest()[:12] if goals else "no-goals"


# -- re-elaboration, over any runtime ----------------------------------------------------------


class ElaborationTactics(TacticBackend):
    """`TacticBackend` over `LeanRuntime.check`: a state's tactics are elaborated again with each new one."""

    def __init__(
        self,
        runtime: LeanRuntime,
        *,
        timeout: float | None = None,
        max_heartbeats: int | None = None,
        cache_size: int = 100_000,
    ):
        self.runtime = runtime
        self.timeout = timeout  # seconds per source; None: the runtime's default
        self.max_heartbeats = max_heartbeats  # `set_option maxHeartbeats N in` before the statement
        self.cache_size = cache_size
        self._cache: OrderedDict[_Key, TacticResult] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, statement: str, header: str = "") -> TacticResult:
        root = TacticState((), header, statement)
        [result] = self._run(root, [None])
        return result

    def apply(self, state: TacticState, tactic: str) -> TacticResult:
        return self.apply_many(state, [tactic])[0]

    def apply_many(self, state: TacticState, tactics: Sequence[str]) -> list[TacticResult]:
        """Each tactic applied to `state`; the ones not cached are checked together in one Lean run."""
        return self._run(state, list(tactics))

    def _run(self, state: TacticState, tactics: list[str | None]) -> list[TacticResult]:
        """`None` stands for "no new tactic" (the statement's own initial state)."""
        keys = [(state.header, state.statement, state.goals, t) for t in tactics]
        with self._lock:
            found = {k: self._cache[k] for k in keys if k in self._cache}
        todo: dict[_Key, _Layout] = {}
        for key, t in zip(keys, tactics, strict=True):
            if key not in found and key not in todo:
                path = state.tactics + ((t,) if t is not None else ())
                todo[key] = _layout(state.header, state.statement, path, self.max_heartbeats)
        for key, lay in todo.items():
            if lay.error:
                found[key] = TacticResult(None, lay.error, tactic=key[3] or "")
        checks = [(k, lay) for k, lay in todo.items() if not lay.error]
        if checks:
            results = self.runtime.check([lay.source for _, lay in checks], timeout=self.timeout)
            with self._lock:
                for (key, lay), res in zip(checks, results, strict=True):
                    found[key] = _read(res, lay, key)
                    if found[key].infra is None:  # Lean's own failure is retried next time, not remembered
                        self._cache[key] = found[key]
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return [_along(found[k], state, t) for k, t in zip(keys, tactics, strict=True)]


# (header, statement, the state's goals, the new tactic or None for the initial state)
_Key = tuple[str, str, tuple[str, ...], str | None]


def _along(result: TacticResult, state: TacticState, tactic: str | None) -> TacticResult:
    """`result` (perhaps cached from another path to the same goals) as reached from `state`."""
    if result.state is None or tactic is None:
        return result
    return replace(result, state=replace(result.state, tactics=(*state.tactics, tactic)))


class _Layout:
    """One source to check, and where its parts sit (for reading Lean's messages back)."""

    def __init__(self, source: str, by_pos: Position, first_tactic_line: int, last_tactic_line: int, error: str = ""):
        self.source = source
        self.by_pos = by_pos  # the `by` whose "unsolved goals" error lists the state's goals
        self.first_tactic_line = first_tactic_line  # 1-based line of the newest tactic in `source`
        self.last_tactic_line = last_tactic_line
        self.error = error  # set when the statement cannot be laid out (no `sorry`)


@functools.lru_cache(maxsize=256)
def _sorry_span(statement: str) -> tuple[int, int] | None:
    """Where the first `sorry` (with its `by`) sits in `statement`: lexed once per statement, not per tactic."""
    toks = code_tokens(statement)
    at = next((i for i, t in enumerate(toks) if t.kind == "ident" and t.name == "sorry"), None)
    if at is None:
        return None
    return (toks[at - 1].start if at > 0 and toks[at - 1].text == "by" else toks[at].start), toks[at].end


def _layout(header: str, statement: str, tactics: tuple[str, ...], max_heartbeats: int | None) -> _Layout:
    """The source that elaborates `statement` with its first `sorry` replaced by `tactics`."""
    span = _sorry_span(statement)
    if span is None:
        return _Layout("", Position(1, 0), 0, 0, error="the statement has no `sorry` to start from")
    start, end = span
    head = header.rstrip("\n") + "\n" if header.strip() else ""
    before = head + heartbeat_limit(max_heartbeats) + statement[:start]
    block = tactic_block(tactics or ("skip",))
    source = before + "by\n" + block + "\n" + statement[end:].lstrip(" ")
    by_line = before.count("\n") + 1
    by_pos = Position(by_line, len(before) - (before.rfind("\n") + 1))
    last = by_line + block.count("\n") + 1
    newest = tactic_block(tactics[-1:] or ("skip",)).count("\n") + 1
    return _Layout(source, by_pos, last - newest + 1, last)


def _read(result: SourceResult, lay: _Layout, key: _Key) -> TacticResult:
    """The result Lean's messages describe (see the module docstring); `_along` gives its state its path."""
    header, statement, _, tactic = key
    applied = tactic or ""
    if result.status != "ok":
        return TacticResult(None, str(result.error), tuple(result.messages), result.error, applied)
    goals_msgs = [m for m in result.messages if m.is_error and m.pos == lay.by_pos and _is_unsolved(m)]
    others = tuple(_relative(m, lay) for m in result.messages if m not in goals_msgs)
    errors = [m.text for m in others if m.is_error]
    if tactic is None and errors:
        return TacticResult(None, "the statement does not elaborate:\n" + "\n".join(errors), others)
    if errors:
        return TacticResult(None, "\n".join(errors), others, tactic=applied)
    if any(m.uses_sorry for m in others):
        return TacticResult(None, "the proof uses `sorry`", others, tactic=applied)
    goals = _split_goals(goals_msgs[0].text) if goals_msgs else ()
    return TacticResult(TacticState(goals, header, statement), messages=others, tactic=applied)


def _is_unsolved(m: Message) -> bool:
    return m.kind == "Tactic.unsolvedGoals" or m.text.startswith("unsolved goals")


def _split_goals(text: str) -> tuple[str, ...]:
    """`unsolved goals\\n<goal>\\n\\n<goal>…` -> the goals, one string each."""
    body = text.split("\n", 1)[1] if "\n" in text else ""
    return tuple(g.strip("\n") for g in body.split("\n\n") if g.strip())


def _relative(m: Message, lay: _Layout) -> Message:
    """`m` with positions counted from the newest tactic's first line (line 1, column 0) when it lies there."""

    def shift(p: Position | None) -> Position | None:
        if p is None or not lay.first_tactic_line <= p.line <= lay.last_tactic_line:
            return p
        return Position(p.line - lay.first_tactic_line + 1, max(0, p.column - len(INDENT)))

    return Message(m.severity, m.text, shift(m.pos) or m.pos, shift(m.end_pos), m.kind)


# -- the REPL's own proof states, over a native REPL pool -----------------------------------------


@dataclass(frozen=True)
class _Handle:
    """Where a REPL holds a state: a proof state id in one worker's process, valid for its generation."""

    worker: int
    generation: int
    proof_state: int


# A state reached on a worker and where it lives there, or why there is none (and None).
_Reached = tuple[TacticResult, _Handle | None]


class ReplTactics(TacticBackend):
    """`TacticBackend` over a `ReplPool` of Lean REPLs: the REPL's proof states, kept across restarts.

    `start` elaborates the statement and takes the proof state the REPL opens at its first
    `sorry`; `apply` runs one tactic (or a block) in a state. A proof state lives in one REPL
    process: this backend remembers where each state it answered lives (for as long as the
    caller holds the state), and when that process was restarted (a crash, a timeout, the
    memory cap), or the state is not one it knows, it reaches the state again there by
    replaying the state's path (header, statement, tactics) before the tactic runs.

    A tactic fails when Lean refused it (the REPL's `Lean error: …`) or reported an error while
    running it; the REPL's own failure is `infra`. A state with no goal left is not a verdict: the
    environment asks the verifier about the whole proof (`LeanTactic-v0`).

    With `max_heartbeats` the statement is elaborated under `set_option maxHeartbeats N in`, and
    its proof states keep that option for every tactic run in them. The REPL (up to v4.33) does
    not copy the option into the heartbeat budget of a proof state, which stays Lean's default
    (200000) for what reads the budget rather than the option; `timeout` bounds the rest.
    """

    def __init__(
        self,
        pool: ReplPool,
        *,
        timeout: float = 60.0,
        max_heartbeats: int | None = None,
    ):
        self.pool = pool
        self.timeout = timeout
        self.max_heartbeats = max_heartbeats
        self._next_worker = itertools.count()
        self._handles: weakref.WeakKeyDictionary[TacticState, _Handle] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def start(self, statement: str, header: str = "") -> TacticResult:
        """The proof state at the first `sorry` of `statement` (e.g. `theorem t : P := by sorry`)."""
        root = TacticState((), header, statement)
        return self._call(self._any_worker(), lambda w: self._start_on(w, root)[0])

    def apply(self, state: TacticState, tactic: str) -> TacticResult:
        """Run `tactic` in `state`; the state itself is never changed (states are immutable values)."""
        handle = self._handle(state)
        index = handle.worker if handle is not None else self._any_worker()
        return replace(self._call(index, lambda w: self._apply_on(w, state, handle, tactic)), tactic=tactic)

    def _call(self, index: int, run: Callable[[ReplWorker], TacticResult]) -> TacticResult:
        outcome = self.pool.call(index, run)
        return TacticResult(None, str(outcome), infra=outcome) if isinstance(outcome, InfraError) else outcome

    def _any_worker(self) -> int:
        with self._lock:
            return next(self._next_worker) % len(self.pool.workers)

    def _handle(self, state: TacticState) -> _Handle | None:
        with self._lock:
            return self._handles.get(state)

    def _remember(self, state: TacticState, handle: _Handle) -> None:
        with self._lock:
            self._handles[state] = handle

    def _reached(self, state: TacticState, handle: _Handle, messages: Sequence[Message]) -> _Reached:
        self._remember(state, handle)
        return TacticResult(state, messages=tuple(messages)), handle

    def _start_on(self, worker: ReplWorker, root: TacticState) -> _Reached:
        env = None
        if root.header:
            head = worker.header(root.header)
            if isinstance(head, ReplRefusal):
                return TacticResult(None, f"the header did not elaborate: {head.message}"), None
            env = head.env
        limit = heartbeat_limit(self.max_heartbeats)
        shift = -limit.count("\n")  # positions stay relative to the statement
        answer = worker.command(limit + root.statement, env=env, timeout=self.timeout, line_offset=shift)
        if isinstance(answer, ReplRefusal):
            return TacticResult(None, answer.message), None
        errors = [m for m in answer.messages if m.is_error]
        starts = [s for s in answer.sorries if s.proof_state is not None]
        if errors or not starts:
            reason = "\n".join(m.text for m in errors) or "the statement has no `sorry` to start from"
            return TacticResult(None, reason, tuple(answer.messages)), None
        first = starts[0]
        state = TacticState((first.goal,), root.header, root.statement)
        return self._reached(state, _Handle(worker.index, worker.generation, first.proof_state), answer.messages)

    def _apply_on(self, worker: ReplWorker, state: TacticState, handle: _Handle | None, tactic: str) -> TacticResult:
        worker.start()  # now, if it died, so that the generation below is current
        if handle is None or handle.generation != worker.generation:
            rebuilt, handle = self._rebuild(worker, state)
            if handle is None:
                return rebuilt
            self._remember(state, handle)
        answer = worker.tactic(tactic, handle.proof_state, timeout=self.timeout)
        if isinstance(answer, ReplRefusal):
            return TacticResult(None, answer.message.removeprefix("Lean error:\n"))
        return self._step(answer, state, tactic, worker)[0]

    def _rebuild(self, worker: ReplWorker, state: TacticState) -> _Reached:
        """Reach `state` again on this worker's current process by replaying its path."""
        result, handle = self._start_on(worker, TacticState((), state.header, state.statement))
        for tactic in state.tactics:
            if result.state is None or handle is None:
                break
            answer = worker.tactic(tactic, handle.proof_state, timeout=self.timeout)
            if isinstance(answer, ReplRefusal):
                result, handle = TacticResult(None, answer.message), None
            else:
                result, handle = self._step(answer, result.state, tactic, worker)
        if handle is None:
            return TacticResult(None, f"could not reach the proof state again on the REPL: {result.error}"), None
        return result, handle

    def _step(self, answer: ProofStepResponse, before: TacticState, tactic: str, worker: ReplWorker) -> _Reached:
        errors = [m for m in answer.messages if m.is_error]
        if errors:  # Lean recovered from an error (e.g. an unknown identifier) by inserting `sorry`
            return TacticResult(None, "\n".join(m.text for m in errors), tuple(answer.messages)), None
        state = TacticState(tuple(answer.goals), before.header, before.statement, (*before.tactics, tactic))
        handle = _Handle(worker.index, worker.generation, answer.proof_state)
        return self._reached(state, handle, answer.messages)
