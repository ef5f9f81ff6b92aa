"""`leangym/LeanTactic-v0`: prove a theorem one tactic at a time, with backtracking and a search graph.

    env = gym.make("leangym/LeanTactic-v0", problems="core:test")
    obs, info = env.reset(options={"problem": "core_alg_add_zero"})
    obs["goals"]                                  # 'n : Nat\\n⊢ n + 0 = n', as Lean prints it
    obs, reward, terminated, truncated, info = env.step("intro n")
    info["error"]                                 # Lean's error when the tactic failed ("" otherwise)
    env.unwrapped.goto(info["state_id"])          # back to any state of the episode
    env.unwrapped.try_tactics(state_id, ["simp", "omega"])   # expand a node: one Lean run
    env.unwrapped.graph                           # networkx.DiGraph: states (by goals) and tactics

`LeanTacticEnv`'s docstring has the spaces, the reward and when an episode ends; the proof
states come from a tactic backend of `leangym.lean_project.tactics`.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import networkx as nx

from leangym.envs.common import LeanEnv, ProblemsArg
from leangym.envs.spaces import LeanText, text_dict
from leangym.lean_project.runtime import LeanRuntime
from leangym.lean_project.tactics import (
    ElaborationTactics,
    TacticBackend,
    TacticResult,
    TacticState,
    state_id,
    tactic_block,
)
from leangym.rewards.policy import Policy
from leangym.rewards.problem import Problem
from leangym.rewards.screen import describe, reasons_of, screen
from leangym.rewards.verdict import Verdict
from leangym.rewards.verifier import BaseVerifier

OBSERVATION_LIMITS = {"header": 4096, "formal_statement": 8192, "goals": 65536, "tactics": 65536}
MAX_TACTIC_CHARS = 16384
_TRUNCATED = "\n… (cut at the observation limit)"


@dataclass(frozen=True)
class TacticStep(TacticResult):
    """A tactic's outcome in `LeanTactic-v0`: Lean's result and, once no goal is left, the
    verifier's verdict on the whole proof (the only thing that makes a reward)."""

    verdict: Verdict | None = None

    @classmethod
    def of(cls, result: TacticResult, verdict: Verdict | None = None) -> TacticStep:
        """The backend's `result`, with the env's `verdict` on the whole proof (None while goals are left)."""
        return cls(**{f.name: getattr(result, f.name) for f in fields(TacticResult)}, verdict=verdict)

    @property
    def proved(self) -> bool:
        return self.verdict is not None and self.verdict.proved


class LeanTacticEnv(LeanEnv):
    """`leangym/LeanTactic-v0`: prove a theorem one tactic at a time.

    ## Description

    Each episode is one theorem of `problems`. The agent sends tactics; Lean runs each on the
    current proof state (`leangym.lean_project.tactics`). Beyond Gymnasium's API the unwrapped
    env keeps every state of the episode, so a search agent can go back to any of them
    (`goto`), expand one with several tactics in one Lean run (`try_tactics`), and read the
    search graph (`graph`, `export_graph`).

    ## Action Space

    One tactic as text (`LeanText`, 1 to 16,384 characters); a multi-line tactic such as
    `induction n with …` is one action.

    ## Observation Space

    A `Dict` of text: `header` and `formal_statement` (the problem's), `goals` (the goals as
    Lean prints them, separated by a blank line; "" once none is left) and `tactics` (the
    tactics applied so far, as the lines of the proof after `formal_statement`).

    ## Rewards

    0 per step. When a tactic leaves no goal, the whole proof (statement and every tactic of
    the path) goes through the verifier (`leangym.rewards`) once more, and the reward is its
    verdict's: 1.0 iff `proved`.

    ## Starting State

    The goals at the `sorry` of the problem's statement (`proof_statement`), for the problem
    `reset(options={"problem": name})` names, else one drawn with the env's seeded generator.

    ## Episode End

    Terminated when no goal is left (with the verifier's reward), or at a failed tactic when
    `terminate_on_error` (never when Lean itself failed: `info["infra"]`). A failed tactic
    otherwise leaves the state as it was, with Lean's error in `info["error"]`. Truncated after
    `max_steps` steps, failed ones included. `sorry`, `admit` and whatever the verifier's policy
    forbids are refused before Lean sees them, so they never close a goal.

    ## Arguments

    * `problems`: a problem set `SET[:SPLIT]`, a JSONL path, or a list of `Problem`.
    * `runtime`: `"embedded"`, `"native"`, or a `LeanRuntime` (for the shared verifier).
    * `policy`: the verifier's `Policy`, or a dict of its fields; its timeout and heartbeats bound every tactic.
    * `max_steps`: steps before truncation (default 64).
    * `terminate_on_error`: end the episode at the first failed tactic (refused by Lean or by the screen).
    * `backend`: a `TacticBackend` (default: `default_backend` for the verifier's runtime).
    * `verifier`: a verifier of your own (any `BaseVerifier`; yours to close) instead of the shared one.
    * `render_mode`: None or `"ansi"` (`render()` returns the state as text).
    """

    def __init__(
        self,
        problems: ProblemsArg = "core:test",
        runtime: str | LeanRuntime = "embedded",
        policy: Policy | Mapping[str, Any] | None = None,
        *,
        max_steps: int = 64,
        terminate_on_error: bool = False,
        backend: TacticBackend | None = None,
        verifier: BaseVerifier | None = None,
        render_mode: str | None = None,
    ) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.max_steps = max_steps
        self.terminate_on_error = terminate_on_error
        self.action_space = LeanText(MAX_TACTIC_CHARS, min_length=1)
        shown = ("header", "formal_statement")
        super().__init__(text_dict(**OBSERVATION_LIMITS), shown, problems, runtime, policy, verifier, render_mode)
        try:
            self.backend = backend if backend is not None else default_backend(self.verifier)
        except BaseException:
            self.close()  # the shared verifier's hold, taken above, goes back
            raise
        self.state: TacticState | None = None  # the current state
        self.states: dict[str, TacticState] = {}  # every state of the episode, by id (the first path found)
        self.graph = nx.DiGraph()
        self.steps = 0
        self.last: TacticStep | None = None
        self._over = False

    # -- Gymnasium API ---------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, str], dict]:
        super().reset(seed=seed)
        problem = self._next_problem(options)
        start = self.backend.start(proof_statement(problem), problem.header)
        if start.state is None:
            kind = "Lean could not start the proof" if start.infra else "the statement does not elaborate"
            raise RuntimeError(f"problem {problem.name!r}: {kind}: {start.error}")
        self.state, self.states, self.steps, self.last, self._over = start.state, {}, 0, None, False
        self.graph = nx.DiGraph(problem=problem.name)
        root = self._record(start.state)
        self.graph.nodes[root]["root"] = True
        return self.observation(), {"problem": problem.name, "state_id": root}

    def step(self, action: str) -> tuple[dict[str, str], float, bool, bool, dict[str, Any]]:
        if self.state is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self._over:
            raise gym.error.ResetNeeded("the episode is over: call reset() (or goto() a recorded state)")
        if not isinstance(action, str):
            raise TypeError(f"the action is one tactic (str), not {type(action).__name__}")
        self.steps += 1
        [out] = self._expand(self.state, [action])
        self.last = out
        reward, terminated = 0.0, False
        if out.failed:
            terminated = self.terminate_on_error and out.infra is None
        else:
            self.state = self._reached(self.state, out)
            if out.verdict is not None:
                reward, terminated = out.verdict.reward, True
        truncated = not terminated and self.steps >= self.max_steps
        self._over = terminated or truncated
        return self.observation(), reward, terminated, truncated, self._info(out)

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self.problem is None or self.state is None:
            return "LeanTactic-v0: not reset\n"
        lines = [f"problem {self.problem.name}  step {self.steps}/{self.max_steps}  state {self.state_id}"]
        lines += [self.problem.formal_statement, tactic_block(self.state.tactics) or "  (no tactic yet)", ""]
        lines.append("\n\n".join(self.state.goals) or "no goals")
        if self.last is not None and self.last.failed:
            lines += ["", f"last tactic failed: {self.last.tactic!r}", self.last.error]
        return "\n".join(lines) + "\n"

    # -- search: states, backtracking, expansion, the graph --------------------------------

    @property
    def state_id(self) -> str:
        """The id of the current state (a hash of its goals; "no-goals" once proved)."""
        assert self.state is not None, "call reset() first"
        return state_id(self.state.goals)

    def goto(self, target: str) -> dict[str, str]:
        """Make the recorded state `target` current again (any state of this episode) and return its observation.

        The state's tactics are those of the first path that reached it. A finished episode
        is open again after `goto` (the step count is kept, so `max_steps` still applies).
        """
        if target not in self.states:
            raise KeyError(f"no state {target!r} in this episode ({len(self.states)} recorded)")
        self.state = self.states[target]
        self._over = not self.state.goals or self.steps >= self.max_steps
        self.last = None
        return self.observation()

    def try_tactics(self, target: str, tactics: list[str]) -> list[TacticStep]:
        """Apply each tactic to the recorded state `target`, in one Lean run; record the results in the graph.

        The current state and the step count do not change: this is the node expansion of a
        search agent (best-first search, MCTS). Results come back in the order of `tactics`.
        """
        if target not in self.states:
            raise KeyError(f"no state {target!r} in this episode ({len(self.states)} recorded)")
        parent = self.states[target]
        results = self._expand(parent, tactics)
        for out in results:
            if not out.failed:
                self._reached(parent, out)
        return results

    def export_graph(self, path: str | Path) -> Path:
        """Write the search graph as GraphML (`.graphml`) or Graphviz DOT (`.dot`, `.gv`)."""
        path = Path(path)
        if path.suffix == ".graphml":
            nx.write_graphml(self.graph, path)
        elif path.suffix in (".dot", ".gv"):
            path.write_text(graph_to_dot(self.graph), encoding="utf-8")
        else:
            raise ValueError(f"export_graph writes .graphml, .dot or .gv files, not {path.name!r}")
        return path

    # -- internals ------------------------------------------------------------------------------

    def _expand(self, state: TacticState, tactics: list[str]) -> list[TacticStep]:
        """Screen, apply (one Lean run), then verify the proofs that closed every goal (one batch)."""
        assert self.problem is not None
        screened = [(t, screen_tactic(self.verifier, t)) for t in tactics]
        applied = iter(self.backend.apply_many(state, [t for t, why in screened if not why]))
        results = [TacticStep(None, why, tactic=t) if why else TacticStep.of(next(applied)) for t, why in screened]
        closed = [(i, out.state) for i, out in enumerate(results) if out.state is not None and not out.state.goals]
        if closed:
            verdicts = self.verifier.verify_batch(
                [(self.problem, proof_body(self.problem, s.tactics)) for _, s in closed]
            )
            for (i, _), verdict in zip(closed, verdicts, strict=True):
                results[i] = replace(results[i], verdict=verdict)
        return results

    def _record(self, state: TacticState) -> str:
        sid = state_id(state.goals)
        if sid not in self.states:
            self.states[sid] = state
            self.graph.add_node(sid, goals="\n\n".join(state.goals), n_goals=len(state.goals), depth=len(state.tactics))
        return sid

    def _reached(self, parent: TacticState, out: TacticStep) -> TacticState:
        """Record the edge of a successful outcome; return the state it reached (along this path)."""
        assert out.state is not None
        src, dst = state_id(parent.goals), self._record(out.state)
        if not self.graph.has_edge(src, dst):
            self.graph.add_edge(src, dst, tactic=out.tactic)
        if out.verdict is not None:
            self.graph.nodes[dst]["proved"] = self.graph.nodes[dst].get("proved", False) or out.verdict.proved
        return out.state

    def observation(self) -> dict[str, str]:
        """The current state as the observation space holds it (what `step` and `goto` return)."""
        p, s = self.problem, self.state
        assert p is not None and s is not None
        return {
            "header": p.header,
            "formal_statement": p.formal_statement,
            "goals": _fit("\n\n".join(s.goals), OBSERVATION_LIMITS["goals"]),
            "tactics": _fit(tactic_block(s.tactics), OBSERVATION_LIMITS["tactics"]),
        }

    def _info(self, out: TacticStep) -> dict[str, Any]:
        info: dict[str, Any] = {
            "problem": self.problem.name if self.problem else "",
            "state_id": self.state_id,
            "tactic": out.tactic,
            "error": out.error,
            "messages": [m.to_json() for m in out.messages],
            "steps": self.steps,
        }
        if out.infra is not None:
            info["infra"] = str(out.infra)
        if out.verdict is not None:
            info.update(out.verdict.to_json())
        return info


def proof_statement(problem: Problem) -> str:
    """The problem's statement with `:= by sorry` as its proof: where a tactic backend starts."""
    head = re.sub(r":=\s*(by)?\s*$", "", problem.formal_statement.rstrip())
    return head.rstrip() + " := by sorry"


def proof_body(problem: Problem, tactics: Sequence[str]) -> str:
    """The proof body (continuing `formal_statement`) that the verifier checks once no goal is left."""
    block = "\n" + tactic_block(tactics)
    return block if re.search(r"\bby$", problem.formal_statement.rstrip()) else " by" + block


def screen_tactic(verifier: BaseVerifier, tactic: str) -> str:
    """Why `tactic` may not run ("" when it may): the verifier's screen for proof bodies, on one tactic."""
    findings = screen(tactic, verifier.policy)
    return f"refused ({', '.join(reasons_of(findings))}): {describe(findings, tactic)}" if findings else ""


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(_TRUNCATED)] + _TRUNCATED


_backends: weakref.WeakKeyDictionary[LeanRuntime, dict[tuple[float, int], ElaborationTactics]] = (
    weakref.WeakKeyDictionary()
)
_backends_lock = threading.Lock()


def default_backend(verifier: BaseVerifier) -> TacticBackend:
    """The REPL's proof states when the verifier's runtime keeps them (`LeanRuntime.proof_state_tactics`:
    the native Lean REPL), else re-elaboration.

    Tactics run under the verifier's limits (its policy's timeout and heartbeats). There is one
    `ElaborationTactics` per (runtime, limits), shared by every env, so its cache serves them all.
    """
    runtime, policy = verifier.runtime, verifier.policy
    on_states = runtime.proof_state_tactics(timeout=policy.timeout, max_heartbeats=policy.max_heartbeats)
    if on_states is not None:
        return on_states
    limits = (policy.timeout, policy.max_heartbeats)
    with _backends_lock:
        per_runtime = _backends.setdefault(runtime, {})
        if limits not in per_runtime:
            per_runtime[limits] = ElaborationTactics(runtime, timeout=limits[0], max_heartbeats=limits[1])
        return per_runtime[limits]


def graph_to_dot(graph: nx.DiGraph) -> str:
    """Graphviz DOT for a search graph: nodes labelled with their goals, edges with their tactics."""

    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\l") + '\\l"'

    lines = ["digraph proof_search {", '  node [shape=box, fontname="monospace"];']
    for node, data in graph.nodes(data=True):
        style = ", style=bold" if data.get("root") else ", color=green" if data.get("proved") else ""
        lines.append(f'  "{node}" [label={quote(data.get("goals") or "no goals")}{style}];')
    for src, dst, data in graph.edges(data=True):
        lines.append(f'  "{src}" -> "{dst}" [label={quote(data["tactic"])}];')
    return "\n".join([*lines, "}"]) + "\n"
