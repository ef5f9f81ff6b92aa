"""Multi-turn environments (`envs/agentic.py`) with the real embedded Lean, and inside TRL's real
`GRPOTrainer(environment_factory=…)` on the CPU.

The trainer runs a tiny tool-calling model built here (`agents/tiny.build_tiny_agent`: each tool
call is one token, chosen at random before training), so rollouts really call `check_proof`,
`submit_proof` or `run_tactic`, TRL feeds Lean's answers back as tool messages, and the test
checks that every reward TRL logged is the trusted verdict a fresh verifier gives the final proof.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from conftest import train_two_trl_steps

from leangym.agents.tiny import TACTICS, build_tiny_agent, tool_call
from leangym.envs.agentic import ProofRevisionEnv, TacticAgentEnv
from leangym.envs.problems import load_problems
from leangym.lean_project import LeanRuntime
from leangym.rewards import Policy, Problem, Verifier

pytestmark = pytest.mark.lean

TOY = load_problems("toy")[:4]  # closed by omega, decide, simp, … (one tactic each)
ADD = Problem("add_swap", "theorem add_swap (a b : Nat) (h : a = b) : a + 0 = b := by")


def test_proof_revision_tools(lean: LeanRuntime) -> None:
    env = ProofRevisionEnv(lean, max_checks=2)
    assert "2 times" in env.reset(formal_statement=ADD.formal_statement)
    wrong = env.check_proof("  simp\n  exact foo")
    assert (
        "rejected" in wrong
        and "line 2, column 8: error: Unknown identifier `foo`" in wrong
        and "1 checks left" in wrong
    )  # its own text's lines
    assert "accepted" in env.check_proof("  omega")
    assert "No checks left" in env.check_proof("  omega")
    assert env.get_reward() == 0.0  # nothing submitted yet
    assert "must be text" in env.submit_proof(42)  # a wrong call is an answer, not an exception
    assert env.get_reward() == 0.0 and "already submitted" in env.submit_proof("  omega")
    env.reset(formal_statement=ADD.formal_statement, name="again")
    assert "accepted" in env.submit_proof("  simp [h]") and env.get_reward() == 1.0
    env.reset(formal_statement="theorem f : (1 : Nat) + 1 = 3 := by")
    assert "rejected" in env.submit_proof("  sorry") and env.get_reward() == 0.0


def test_tactic_agent_tools(lean: LeanRuntime) -> None:
    env = TacticAgentEnv(lean, max_steps=4)
    start = env.reset(formal_statement=ADD.formal_statement)
    assert "⊢ a + 0 = b" in start
    root = env.goals().splitlines()[0].removeprefix("State ").rstrip(":")
    assert "failed" in env.run_tactic("exact foo")
    after = env.run_tactic("rw [Nat.add_zero]")
    assert "⊢ a = b" in after
    assert "⊢ a + 0 = b" in env.backtrack(root) and "No state" in env.backtrack("nope")
    assert "accepted" in env.run_tactic("omega") and env.get_reward() == 1.0
    assert env.proof == "\n  omega"
    assert "episode is over" in env.run_tactic("rfl")


def _trainer(tmp_path: Path, factory, actions: list[str]):
    from datasets import Dataset

    rows = [{"prompt": [{"role": "user", "content": p.formal_statement}], "formal_statement": p.formal_statement,
             "name": p.name} for p in TOY]  # fmt: skip
    model, tokenizer = build_tiny_agent([p.formal_statement for p in TOY], factory(), actions)
    return train_two_trl_steps(
        tmp_path, model, tokenizer, Dataset.from_list(rows), environment_factory=factory,
        config_per_device_train_batch_size=8, config_num_generations=4,  # two prompts a step, four rollouts each
        config_max_completion_length=64, config_max_tool_calling_iterations=3,
    )  # fmt: skip


def _logged(trainer, name: str) -> list[float]:
    return [row[f"rewards/{name}/mean"] for row in trainer.state.log_history if f"rewards/{name}/mean" in row]


class RecordedRevision(ProofRevisionEnv):
    """Writes down each rollout's submitted proof and reward when TRL asks for it."""

    seen: list[tuple[str, str | None, float | None]] = []  # noqa: RUF012 - one list for every rollout

    def get_reward(self) -> float | None:
        reward = super().get_reward()
        self.seen.append((self.problem.formal_statement, self.submitted, reward))
        return reward


def test_proof_revision_env_in_trls_grpo_trainer(lean: LeanRuntime, tmp_path: Path) -> None:
    actions = [tool_call(tool, proof=t) for tool in ("check_proof", "submit_proof") for t in TACTICS]
    trainer = _trainer(tmp_path, functools.partial(RecordedRevision, lean), actions)
    seen = RecordedRevision.seen
    assert len(seen) == 16 and len(_logged(trainer, "RecordedRevision")) == 2
    fresh = Verifier(lean, Policy(), cache_size=0)  # judged again, from scratch
    submitted = [(Problem("t", s), p) for s, p, _ in seen if p is not None]
    truth = iter(v.reward for v in fresh.verify_batch(submitted))
    assert [r for *_, r in seen] == [next(truth) if p is not None else 0.0 for _, p, _ in seen]
    for step, mean in enumerate(_logged(trainer, "RecordedRevision")):  # what TRL logged is what Lean said
        assert mean == pytest.approx(sum(r for *_, r in seen[8 * step : 8 * step + 8]) / 8)
    assert {r for *_, r in seen} == {0.0, 1.0}
    calls = [row["tools/call_frequency"] for row in trainer.state.log_history if "tools/call_frequency" in row]
    assert calls and min(calls) >= 1  # the rollouts did call Lean, turn after turn


class RecordedTactics(TacticAgentEnv):
    seen: list[tuple[str, str, float | None]] = []  # noqa: RUF012

    def get_reward(self) -> float | None:
        reward = super().get_reward()
        self.seen.append((self.problem.formal_statement, self.proof, reward))
        return reward


def test_tactic_agent_env_in_trls_grpo_trainer(lean: LeanRuntime, tmp_path: Path) -> None:
    actions = [tool_call("run_tactic", tactic=t) for t in TACTICS]
    trainer = _trainer(tmp_path, functools.partial(RecordedTactics, lean), actions)
    seen = RecordedTactics.seen
    assert len(seen) == 16
    fresh = Verifier(lean, Policy(), cache_size=0)
    closed = [(Problem("t", s), p) for s, p, r in seen if r == 1.0]
    assert closed and all(v.proved for v in fresh.verify_batch(closed))  # every 1 is a proof the kernel accepts
    assert any(r == 0.0 for *_, r in seen)
    for step, mean in enumerate(_logged(trainer, "RecordedTactics")):
        assert mean == pytest.approx(sum(r for *_, r in seen[8 * step : 8 * step + 8]) / 8)
