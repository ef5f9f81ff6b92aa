"""Two baseline agents that need no model: a tactic portfolio, and best-first search in `LeanTactic-v0`.

* `PortfolioAgent` tries each closing tactic of a fixed list (`rfl`, `decide`, `omega`, …) as
  the whole proof; the problem is solved when one of them is accepted. All problems × tactics
  go to the verifier in one batch.
* `SearchAgent` runs a best-first search over proof states: it expands the most promising open
  state with every tactic of its list (one Lean run per expansion, through `try_tactics`), and
  keeps the states reached in the environment's `networkx` graph. Every problem's search runs
  in a thread of its own over a `LockstepRuntime`, so one Lean run expands a node of each.

Both are deterministic: one attempt per problem stands for every k.
"""

from __future__ import annotations

import heapq
import itertools
import re
import threading
import time
from collections.abc import Sequence

from leangym.agents.lockstep import LockstepRuntime
from leangym.agents.prover import Attempt
from leangym.envs.problems import PORTFOLIO_TACTICS
from leangym.envs.tactic_env import LeanTacticEnv, proof_body
from leangym.lean_project.tactics import ElaborationTactics
from leangym.rewards import BaseVerifier, Problem, Verdict, Verifier


class PortfolioAgent:
    """Solved when one tactic of `tactics`, alone, proves the theorem (the cheapest is reported)."""

    deterministic = True

    def __init__(self, tactics: Sequence[str] = PORTFOLIO_TACTICS, name: str = "portfolio"):
        if not tactics:
            raise ValueError("the portfolio needs at least one tactic")
        self.tactics = list(tactics)
        self.name = name

    def attempt(self, problems: Sequence[Problem], n: int, verifier: BaseVerifier) -> list[list[Attempt]]:
        t = len(self.tactics)
        verdicts = verifier.verify_batch([(p, proof_body(p, [tac])) for p in problems for tac in self.tactics])
        out = []
        for i, p in enumerate(problems):
            mine = verdicts[i * t : (i + 1) * t]  # [tactic] for problem i
            tried = {tac: v.outcome for tac, v in zip(self.tactics, mine, strict=True)}
            # the cheapest proof; else Lean's failure to decide before a rejection (a rerun may prove it)
            j = next((j for j, v in enumerate(mine) if v.proved), None)
            j = next((j for j, v in enumerate(mine) if v.outcome == "error"), t - 1) if j is None else j
            proof = proof_body(p, [self.tactics[j]])
            out.append([Attempt(proof, mine[j], sum(v.seconds for v in mine), {"tried": tried})])
        return out


# The search's tactics: the portfolio's closers, then steps that split or open a goal. Per
# state, `induction x` and `cases x` are added for the first goal's variables of an inductive
# type (Nat, Int, List, Bool, ∨, ∧, ∃ hypotheses).
SEARCH_TACTICS: tuple[str, ...] = (
    "rfl",
    "decide",
    "omega",
    "simp",
    "simp_all",
    "grind",
    "intro",
    "intros",
    "constructor",
    "simp at *",
    "left",
    "right",
)
_SPLITTABLE = re.compile(r"^(Nat|ℕ|Int|ℤ|List\b.*|Bool)$|[∨∧∃]")


class SearchAgent:
    """Best-first search over proof states (see the module docstring); the score is `score()`."""

    deterministic = True

    def __init__(
        self,
        tactics: Sequence[str] = SEARCH_TACTICS,
        *,
        max_expansions: int = 8,
        max_heartbeats: int = 200_000,
        split_variables: bool = True,
        patience: float = 2.0,
        name: str = "search",
    ):
        if max_expansions < 1:
            raise ValueError("max_expansions must be at least 1")
        self.tactics = list(tactics)
        self.max_expansions = max_expansions
        self.max_heartbeats = max_heartbeats  # bounds each tried tactic (a looping `simp` fails fast)
        self.split_variables = split_variables
        self.patience = patience
        self.name = name

    def attempt(self, problems: Sequence[Problem], n: int, verifier: BaseVerifier) -> list[list[Attempt]]:
        lockstep = LockstepRuntime(verifier.runtime, parties=len(problems), patience=self.patience)
        stepper = Verifier(lockstep, verifier.policy)  # verifies closed proofs in the same lockstep batches
        timeout = verifier.policy.timeout  # the verifier's, so that a lockstep batch is one `check`
        backend = ElaborationTactics(lockstep, timeout=timeout, max_heartbeats=self.max_heartbeats)
        results: list[Attempt] = [Attempt("", Verdict("error", ("agent_error",)), 0.0)] * len(problems)

        def run(i: int) -> None:
            env = LeanTacticEnv([problems[i]], verifier=stepper, backend=backend, max_steps=10**9)
            start = time.monotonic()
            try:
                results[i] = self._search(env, problems[i], start)
            except Exception as e:  # one problem's failure must not stop the others
                verdict = Verdict("error", ("agent_error",), detail=f"{type(e).__name__}: {e}")
                results[i] = Attempt("", verdict, time.monotonic() - start)
            finally:
                env.close()
                lockstep.leave()

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(problems))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return [[a] for a in results]

    def _search(self, env: LeanTacticEnv, problem: Problem, start: float) -> Attempt:
        """Best-first: expand the open state of lowest `score` with every tactic, until a proof or the budget."""
        try:
            _, info = env.reset(options={"problem": problem.name})
        except RuntimeError as e:  # the statement does not elaborate, or Lean could not start
            verdict = Verdict("error", ("statement_not_elaborated",), detail=str(e))
            return Attempt("", verdict, time.monotonic() - start)
        graph, counter, root = env.graph, itertools.count(), info["state_id"]
        graph.nodes[root]["queued"] = True
        frontier = [(score(env.states[root].goals, 0), next(counter), root)]  # (score, tie-break, state id)
        expanded = 0
        while frontier and expanded < self.max_expansions:
            _, _, sid = heapq.heappop(frontier)
            graph.nodes[sid]["expanded"] = True
            expanded += 1
            for out in env.try_tactics(sid, self._tactics_for(env.states[sid].goals)):
                if out.proved:
                    assert out.state is not None and out.verdict is not None
                    tactics = list(out.state.tactics)
                    found = {"expansions": expanded, "nodes": graph.number_of_nodes(), "tactics": tactics}
                    return Attempt(proof_body(problem, tactics), out.verdict, time.monotonic() - start, found)
                new = out.state_id
                if out.goals and new is not None and not graph.nodes[new].get("queued"):
                    graph.nodes[new]["queued"] = True
                    heapq.heappush(frontier, (score(out.goals, len(env.states[new].tactics)), next(counter), new))
        why = f"no proof within {self.max_expansions} expansions" if frontier else "no open state left"
        verdict = Verdict("rejected", ("search_exhausted",), detail=why)
        return Attempt(
            "", verdict, time.monotonic() - start, {"expansions": expanded, "nodes": graph.number_of_nodes()}
        )

    def _tactics_for(self, goals: Sequence[str]) -> list[str]:
        """The fixed list, plus `induction`/`cases` on the first goal's variables of an inductive type."""
        extra = []
        if self.split_variables and goals:
            for names, typ in hypotheses(goals[0]):
                if _SPLITTABLE.search(typ):
                    recursive = typ in ("Nat", "ℕ") or typ.startswith("List")
                    extra += [f"induction {x}" if recursive else f"cases {x}" for x in names]
        return list(dict.fromkeys([*self.tactics, *extra]))


def hypotheses(goal: str) -> list[tuple[list[str], str]]:
    """(names, type) of each hypothesis of a goal as Lean prints it; hidden names (`x✝`) left out."""
    out = []
    for line in goal.splitlines():
        if line.startswith("⊢"):
            break
        names, sep, typ = line.partition(" : ")
        if sep and not line.startswith(" "):
            visible = [n for n in names.split() if "✝" not in n]
            if visible:
                out.append((visible, typ.strip()))
    return out


def score(goals: Sequence[str], depth: int) -> float:
    """Lower is more promising: fewer goals, shorter goals, shallower states."""
    return len(goals) + sum(len(g) for g in goals) / 400 + 0.25 * depth
