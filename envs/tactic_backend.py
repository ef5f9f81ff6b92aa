"""Tactic mode for `LeanTactic-v0`: the backend protocol, and its implementation over any runtime.

The protocol (`TacticBackend`) is the one the native REPL client already speaks
(`leangym.lean_project.repl_tactics.ReplTactics`), so the environment takes either:

    step = backend.start("theorem t (n : Nat) : 0 + n = n := by sorry", header="")
    step.state.goals                      # ('n : Nat\\n⊢ 0 + n = n',): one string per goal, as Lean prints it
    step = backend.apply(step.state, "induction n")
    step.failed, step.error               # a refused tactic: no state, Lean's error
    steps = apply_many(backend, state, ["simp", "omega", "rfl"])   # one Lean run where the backend batches

States (`TacticState`) are immutable values: their goals, the statement, and the tactics that
lead to them from the statement's `sorry`. A backend never changes a state; it answers a new one.

`ElaborationTactics` implements the protocol over `LeanRuntime.check`, so it works on every
runtime (embedded wasm, native `lean`, the native REPL pool). A state is *re-elaborated*: the
statement with its `sorry` replaced by the state's tactics and the new one (on the embedded
runtime one request to a warm session, tens of milliseconds),

    theorem t (n : Nat) : 0 + n = n := by
      induction n
      simp                                -- the tactic being tried

and the new goals are read from the one error Lean reports at the `by` when goals remain
(`unsolved goals` + the goals, printed exactly as `trace_state` would print them). Any other
error means the tactic failed; no error means no goal is left. Every candidate tactic for
a state is a separate source of one `check` call, so expanding a search node costs one Lean
run (`apply_many`). Results are cached by (header, statement, the state's goals, tactic), so
going back to a state and trying a tactic again costs nothing; the key is the goals, not the
path that reached them, so a state reached by two paths is one state (as in the search graph)
and a result found along one path serves the other. docs/envs.md gives the measured cost per
step (`bench/tactic_step_cost.py`).
"""

from __future__ import annotations

import hashlib
import textwrap
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from leangym.lean_project.lexer import code_tokens
from leangym.lean_project.repl_tactics import TacticState, TacticStep
from leangym.lean_project.runtime import LeanRuntime
from leangym.lean_project.types import Message, Position, SourceResult

__all__ = ["ElaborationTactics", "TacticBackend", "TacticState", "TacticStep", "apply_many", "state_id", "tactic_block"]

INDENT = "  "


class TacticBackend(Protocol):
    """Starts a proof and applies tactics to immutable states (see the module docstring)."""

    def start(self, statement: str, header: str = "") -> TacticStep:
        """The state at the first `sorry` of `statement`, or why there is none (the statement did not elaborate)."""
        ...

    def apply(self, state: TacticState, tactic: str) -> TacticStep:
        """Run `tactic` in `state`: a new state (no goals when it closed the last one), or Lean's error."""
        ...


def apply_many(backend: TacticBackend, state: TacticState, tactics: Sequence[str]) -> list[TacticStep]:
    """Each tactic applied to `state`, in order: one Lean run when the backend batches (`apply_many`)."""
    batched = getattr(backend, "apply_many", None)
    if batched is not None:
        return list(batched(state, tactics))
    return [backend.apply(state, t) for t in tactics]


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


class ElaborationTactics:
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
        self.lean_runs = 0  # `check` calls made (tests and benchmarks read it)
        self._cache: OrderedDict[_Key, TacticStep] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, statement: str, header: str = "") -> TacticStep:
        root = TacticState((), "", header, statement)
        [step] = self._run(root, [None])
        return step

    def apply(self, state: TacticState, tactic: str) -> TacticStep:
        return self.apply_many(state, [tactic])[0]

    def apply_many(self, state: TacticState, tactics: Sequence[str]) -> list[TacticStep]:
        """Each tactic applied to `state`; the ones not cached are checked together in one Lean run."""
        return self._run(state, list(tactics))

    def close(self) -> None:
        """Nothing of its own to release: the runtime belongs to whoever made it."""

    # -- one Lean run for several candidates -------------------------------------------------

    def _run(self, state: TacticState, tactics: list[str | None]) -> list[TacticStep]:
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
                found[key] = TacticStep(None, lay.error)
        checks = [(k, lay) for k, lay in todo.items() if not lay.error]
        if checks:
            results = self.runtime.check([lay.source for _, lay in checks], timeout=self.timeout)
            self.lean_runs += 1
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


def _along(step: TacticStep, state: TacticState, tactic: str | None) -> TacticStep:
    """`step` (perhaps cached from another path to the same goals) as reached from `state`."""
    if step.state is None or tactic is None:
        return step
    return replace(step, state=replace(step.state, tactics=(*state.tactics, tactic)))


class _Layout:
    """One source to check, and where its parts sit (for reading Lean's messages back)."""

    def __init__(self, source: str, by_pos: Position, first_tactic_line: int, last_tactic_line: int, error: str = ""):
        self.source = source
        self.by_pos = by_pos  # the `by` whose "unsolved goals" error lists the state's goals
        self.first_tactic_line = first_tactic_line  # 1-based line of the newest tactic in `source`
        self.last_tactic_line = last_tactic_line
        self.error = error  # set when the statement cannot be laid out (no `sorry`)


def _layout(header: str, statement: str, tactics: tuple[str, ...], max_heartbeats: int | None) -> _Layout:
    """The source that elaborates `statement` with its first `sorry` replaced by `tactics`."""
    toks = code_tokens(statement)
    at = next((i for i, t in enumerate(toks) if t.kind == "ident" and t.name == "sorry"), None)
    if at is None:
        return _Layout("", Position(1, 0), 0, 0, error="the statement has no `sorry` to start from")
    start = toks[at - 1].start if at > 0 and toks[at - 1].text == "by" else toks[at].start
    head = header.rstrip("\n") + "\n" if header.strip() else ""
    if max_heartbeats is not None:
        head += f"set_option maxHeartbeats {int(max_heartbeats)} in\n"
    before = head + statement[:start]
    block = tactic_block(tactics or ("skip",))
    source = before + "by\n" + block + "\n" + statement[toks[at].end :].lstrip(" ")
    by_line = before.count("\n") + 1
    by_pos = Position(by_line, len(before) - (before.rfind("\n") + 1))
    last = by_line + block.count("\n") + 1
    newest = tactic_block(tactics[-1:] or ("skip",)).count("\n") + 1
    return _Layout(source, by_pos, last - newest + 1, last)


def _read(result: SourceResult, lay: _Layout, key: _Key) -> TacticStep:
    """The step Lean's messages describe (see the module docstring); `_along` gives its state its path."""
    header, statement, _, tactic = key
    if result.status != "ok":
        return TacticStep(None, str(result.error), tuple(result.messages), infra=result.error)
    goals_msgs = [m for m in result.messages if m.is_error and m.pos == lay.by_pos and _is_unsolved(m)]
    others = tuple(_relative(m, lay) for m in result.messages if m not in goals_msgs)
    errors = [m.text for m in others if m.is_error]
    if tactic is None and errors:
        return TacticStep(None, "the statement does not elaborate:\n" + "\n".join(errors), others)
    if errors:
        return TacticStep(None, "\n".join(errors), others)
    if any(m.kind == "hasSorry" or "declaration uses `sorry`" in m.text for m in others):
        return TacticStep(None, "the proof uses `sorry`", others)
    goals = _split_goals(goals_msgs[0].text) if goals_msgs else ()
    status = "Incomplete: open goals remain" if goals else "Completed"
    return TacticStep(TacticState(goals, status, header, statement), messages=others)


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
