"""Multi-turn environments for agentic RL: an LLM calls Lean as a tool, reads its answer, tries again.

TRL (`GRPOTrainer(environment_factory=…)`): one instance per rollout, `reset(**row)` with the
dataset row's columns (`formal_statement`, optional `header` and `name`), every public method
below with an `Args:` docstring becomes a tool, and `get_reward()` scores the rollout.

    from leangym.envs.agentic import ProofRevisionEnv, TacticAgentEnv
    trainer = GRPOTrainer(model=..., environment_factory=ProofRevisionEnv, train_dataset=ds, args=config)

* `ProofRevisionEnv`: whole proofs with revisions (Goedel-Prover-V2's self-correction): `check_proof`
  answers Lean's messages as the agent reads them (positions in its own text), at most
  `max_checks` times; `submit_proof` ends the episode. Reward 1 only for a submitted proof whose
  verdict is `proved` (the trusted judge's, as everywhere).
* `TacticAgentEnv`: one tactic at a time (step-level provers): `run_tactic` on the current state,
  `goals`, `backtrack` to a state seen before; reward 1 when no goal is left and the assembled
  proof is `proved`. At most `max_steps` tactics.

Both run on the same code as `LeanProof-v0` and `LeanTactic-v0` (an episode of those envs sits
under each instance) and the same shared verifier. A tool never raises: a wrong call, a spent
budget or a Lean failure comes back as the tool's text. A verdict `error` (Lean itself failed)
gives the rollout no reward (`None`: TRL leaves it out), never a 0.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from leangym.envs.proof_env import LeanProofEnv
from leangym.envs.tactic_env import LeanTacticEnv, proof_body
from leangym.lean_project.runtime import LeanRuntime
from leangym.rewards.adapters import make_problem
from leangym.rewards.policy import Policy
from leangym.rewards.problem import Problem
from leangym.rewards.submission import parse_statement
from leangym.rewards.verdict import Verdict
from leangym.rewards.verifier import get_verifier

MAX_FEEDBACK = 4000  # characters of Lean's answer handed back to the agent
F = TypeVar("F", bound=Callable[..., str])


def tool(method: F) -> F:
    """A tool never raises into the rollout: an unexpected failure comes back as the tool's text."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> str:
        try:
            return method(*args, **kwargs)
        except Exception as e:  # the agent reads it; the rollout goes on
            return f"The tool failed: {type(e).__name__}: {e}"

    return call  # type: ignore[return-value]


def feedback(verdict: Verdict) -> str:
    """A verdict as the agent reads it: the outcome, then Lean's messages with positions in its own proof."""
    if verdict.proved:
        return "Lean accepted the proof."
    if verdict.outcome == "error":
        return f"Lean could not check the proof (not your fault): {verdict.detail}"
    lines = [f"Lean rejected the proof ({', '.join(verdict.reasons)})."]
    lines += [f"line {m.pos.line}, column {m.pos.column}: {m.severity}: {m.text}" for m in verdict.messages]
    if not verdict.messages and verdict.detail:
        lines.append(verdict.detail)
    text = "\n".join(lines)
    return text if len(text) <= MAX_FEEDBACK else text[:MAX_FEEDBACK] + "\n…"


class _Episode:
    """What both environments hold: the verifier (shared in the process) and the problem of this rollout."""

    def __init__(self, runtime: LeanRuntime | str, policy: Policy | None) -> None:
        self.verifier = get_verifier(runtime, policy)  # pinned: it lives as long as the trainer
        self.problem: Problem | None = None

    def _problem(self, row: dict[str, Any]) -> Problem:
        """The row's problem; an unusable statement is a ValueError here, not a verdict `error` at every proof."""
        if "formal_statement" not in row:
            raise ValueError("the dataset needs a `formal_statement` column (and optionally `header`, `name`)")
        statement = str(row["formal_statement"])
        declared = parse_statement(statement).name  # raises unless it ends in `:=` or `:= by`
        if declared is None:
            raise ValueError("the formal_statement must declare a named theorem (`theorem name … :=`), not `example`")
        return make_problem(statement, row.get("header"), row.get("name") or declared)


class ProofRevisionEnv(_Episode):
    """Whole proofs, checked and revised, then submitted once (see the module docstring)."""

    def __init__(self, runtime: LeanRuntime | str = "embedded", policy: Policy | None = None, *, max_checks: int = 4):
        super().__init__(runtime, policy)
        self.max_checks = max_checks
        self.checks = 0
        self.submitted: str | None = None  # the submitted proof
        self.final: Verdict | None = None  # its verdict
        self._env: LeanProofEnv | None = None

    def reset(self, **row: Any) -> str:
        self.problem = self._problem(row)
        self._env = LeanProofEnv([self.problem], verifier=self.verifier)
        self.checks, self.submitted, self.final = 0, None, None
        return (
            f"\n\nYou may check a proof with Lean {self.max_checks} times (check_proof), then submit one"
            " (submit_proof). A proof continues the statement after `:= by`."
        )

    @tool
    def check_proof(self, proof: str) -> str:
        """Check a proof with Lean without submitting it.

        Args:
            proof: The proof: the tactics that follow `:= by` in the theorem statement.

        Returns:
            Lean's answer: accepted, or the errors with their line and column in your proof.
        """
        if self.final is not None:
            return "The proof is already submitted: the episode is over."
        if self.checks >= self.max_checks:
            return f"No checks left (the budget is {self.max_checks}): submit a proof with submit_proof."
        self.checks += 1
        return feedback(self._verify(proof)) + f"\n({self.max_checks - self.checks} checks left.)"

    @tool
    def submit_proof(self, proof: str) -> str:
        """Submit the final proof; the episode ends and the proof is scored.

        Args:
            proof: The proof: the tactics that follow `:= by` in the theorem statement.

        Returns:
            Lean's verdict on the submitted proof.
        """
        if self.final is not None:
            return "A proof was already submitted: the episode is over."
        self.submitted, self.final = proof, self._verify(proof)
        return feedback(self.final)

    @property
    def ended(self) -> bool:
        """Is a proof submitted (the episode over)?"""
        return self.final is not None

    @property
    def final_proof(self) -> str | None:
        """The submitted proof (None before)."""
        return self.submitted

    def get_reward(self) -> float | None:
        """1.0 for a submitted proof that is `proved`, 0.0 otherwise; None when Lean could not judge it."""
        if self.final is None:
            return 0.0
        return None if self.final.outcome == "error" else self.final.reward

    def _verify(self, proof: Any) -> Verdict:
        """One `LeanProof-v0` episode: the verifier's verdict on `proof` (a wrong type is a rejection, not a crash)."""
        assert self._env is not None and self.problem is not None, "call reset() first"
        if not isinstance(proof, str):
            return Verdict("rejected", ("bad_input",), detail=f"the proof must be text, not {type(proof).__name__}")
        self._env.reset(options={"problem": self.problem.name})
        *_, info = self._env.step(proof)
        return Verdict.from_json(info)


class TacticAgentEnv(_Episode):
    """One tactic at a time on the current proof state, with backtracking (see the module docstring)."""

    def __init__(self, runtime: LeanRuntime | str = "embedded", policy: Policy | None = None, *, max_steps: int = 16):
        super().__init__(runtime, policy)
        self.max_steps = max_steps
        self.reward: float | None = 0.0
        self._env: LeanTacticEnv | None = None

    def reset(self, **row: Any) -> str:
        self.problem = self._problem(row)
        self._env = LeanTacticEnv([self.problem], verifier=self.verifier, max_steps=self.max_steps)
        self.reward = 0.0
        observation, info = self._env.reset(options={"problem": self.problem.name})
        return (
            f"\n\nProve it one tactic at a time (run_tactic), at most {self.max_steps} tactics.\n"
            f"The goals (state {info['state_id']}):\n{observation['goals']}"
        )

    @tool
    def run_tactic(self, tactic: str) -> str:
        """Run one tactic on the current proof state.

        Args:
            tactic: One Lean tactic, e.g. `intro n` or `simp [Nat.add_comm]`.

        Returns:
            The goals left and the new state's id, or Lean's error (the state is then unchanged).
        """
        env = self._live()
        if env is None:
            return "The episode is over: no goal is left, or the budget of tactics is spent."
        if not isinstance(tactic, str) or not tactic.strip():
            return "A tactic is a non-empty text."
        observation, reward, terminated, truncated, info = env.step(tactic)
        if info.get("verdict") == "error":
            self.reward = None
        elif terminated and not info["error"]:
            self.reward = reward
            return feedback(Verdict.from_json(info))
        if info["error"]:
            return f"The tactic failed: {info['error']}" + ("\nNo tactics left." if truncated else "")
        goals = observation["goals"] or "no goals"
        return f"State {info['state_id']}:\n{goals}" + ("\nNo tactics left." if truncated else "")

    @tool
    def goals(self) -> str:
        """The goals of the current proof state.

        Returns:
            The goals as Lean prints them, and the state's id.
        """
        if self._env is None or self._env.state is None:
            return "No proof is open: the episode has not started."
        return f"State {self._env.state_id}:\n" + ("\n\n".join(self._env.state.goals) or "no goals")

    @tool
    def backtrack(self, state_id: str) -> str:
        """Go back to a proof state seen before in this episode.

        Args:
            state_id: The id of that state, as run_tactic or goals showed it.

        Returns:
            The goals of that state, or why it cannot be reached.
        """
        if self._env is None:
            return "No proof is open: the episode has not started."
        try:
            observation = self._env.goto(str(state_id))
        except KeyError:
            return f"No state {state_id!r} in this episode; states seen: {', '.join(self._env.states)}"
        return f"State {state_id}:\n" + (observation["goals"] or "no goals")

    @property
    def ended(self) -> bool:
        """Is no goal left, or the budget of tactics spent?"""
        return self._env is not None and self._live() is None

    @property
    def final_proof(self) -> str | None:
        """The proof of the current state's path once the episode ended (None before)."""
        return self.proof if self.ended else None

    def get_reward(self) -> float | None:
        """1.0 when no goal is left and the whole proof is `proved`; None when Lean could not judge it."""
        return self.reward

    @property
    def proof(self) -> str:
        """The proof body of the current state's path: what the verifier judged once no goal was left."""
        assert self._env is not None and self._env.state is not None and self.problem is not None, "call reset() first"
        return proof_body(self.problem, self._env.state.tactics)

    def _live(self) -> LeanTacticEnv | None:
        """The episode's env while tactics may still run."""
        env = self._env
        if env is None or env.state is None or not env.state.goals or env.steps >= self.max_steps:
            return None
        return env
