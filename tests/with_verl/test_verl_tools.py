"""leangym's verl tools (`envs/verl_tools.py`) inside verl 0.9.1, with the real embedded Lean.

verl pins an older transformers than TRL, so this runs in its own environment: `make test-verl`
(the main suite skips it). The tools are loaded by verl's own registry from the example configs
in docs/examples/, and driven by verl's own `ToolAgentLoop`: its LLM server is the tiny
tool-calling model of `agents/tiny.py` (each whole tool call one token, chosen at random before
training), so trajectories really call Lean turn after turn, verl parses the calls and feeds
Lean's answers back, and the test checks that each trajectory's score is the trusted verdict a
fresh verifier gives its final proof.
"""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("verl", reason="verl runs in its own environment: make test-verl")

from verl.tools.tool_registry import initialize_tools_from_config

from leangym.envs.problems import load_problems
from leangym.envs.verl_tools import tool_score
from leangym.rewards import Policy, Problem, Verifier, get_verifier
from leangym.rewards.adapters import VerifierUnavailable

pytestmark = pytest.mark.lean

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
sys.path.insert(0, str(EXAMPLES))
from verl_multiturn import rollouts, tiny_agent_loop  # noqa: E402  (the example runs the same loop)

TOY = load_problems("toy")[:4]  # closed by omega, decide, simp, … (one tactic each)
ADD = "theorem add_swap (a b : Nat) (h : a = b) : a + 0 = b := by"
FALSE = "theorem f : (1 : Nat) + 1 = 3 := by"


def tools(config: str) -> dict[str, Any]:
    return {tool.name: tool for tool in initialize_tools_from_config(str(EXAMPLES / config))}


async def call(tool: Any, row: dict[str, str], trajectory: Any, **arguments: str) -> tuple[str, float]:
    """One tool call as verl's `ToolAgentLoop._call_tool` makes it: create, execute, release."""
    instance, _ = await tool.create(create_kwargs=row)
    try:
        response, reward, _ = await tool.execute(instance, arguments, agent_data=trajectory)
    finally:
        await tool.release(instance)
    return response.text, reward


class Trajectory:
    """What a tool uses of verl's `AgentData`: the object (one per rollout), its request id, its extra fields."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.extra_fields: dict[str, Any] = {}


def test_proof_tools_through_verls_registry() -> None:
    proof = tools("verl_proof_tools.yaml")
    assert set(proof) == {"check_proof", "submit_proof"}
    schema = proof["check_proof"].tool_schema.function
    assert schema.parameters.required == ["proof"] and "Lean" in schema.description  # read from the docstring

    async def episode() -> None:
        row, t = {"formal_statement": ADD}, Trajectory("proof-1")
        text, reward = await call(proof["check_proof"], row, t, proof="  simp\n  exact foo")
        assert "line 2, column 8: error: Unknown identifier `foo`" in text and reward == 0.0
        text, reward = await call(proof["check_proof"], row, t, prf="  omega")  # a wrong argument name
        assert "The tool failed: TypeError" in text and reward == 0.0
        text, reward = await call(proof["submit_proof"], row, t, proof="  simp [h]")  # the same episode
        assert "accepted" in text and reward == 1.0
        text, reward = await call(proof["submit_proof"], row, t, proof="  simp [h]")
        assert "already submitted" in text and reward == 0.0  # one reward per episode
        other = Trajectory("proof-2")  # another trajectory, another episode
        text, reward = await call(proof["submit_proof"], {"formal_statement": FALSE}, other, proof="  sorry")
        assert "rejected" in text and reward == 0.0
        text, reward = await call(proof["check_proof"], {}, Trajectory("proof-3"), proof="  omega")
        assert "formal_statement" in text and reward == 0.0  # a sample without a statement: told, not raised
        assert t.extra_fields == {"lean_proof": "  simp [h]", "lean_reward": 1.0}  # kept beside the rollout

    asyncio.run(episode())


def test_red_team_attacks_on_the_verl_tools() -> None:
    """What a red-team pass found (each worked before the fix), with the real Lean."""
    proof = tools("verl_proof_tools.yaml")
    true, false = {"formal_statement": "theorem t : (1 : Nat) + 1 = 2 := by"}, {"formal_statement": FALSE}

    async def episode() -> None:
        # verl's request ids repeat at every step under `full_determinism` (det-<sample index>): a
        # trajectory of the next step must not inherit the last one's episode (its problem, its budget)
        step1, step2 = Trajectory("det-0"), Trajectory("det-0")
        await call(proof["check_proof"], true, step1, proof="  rfl")
        text, reward = await call(proof["submit_proof"], false, step2, proof="  rfl")
        assert "rejected" in text and reward == 0.0
        text, reward = await call(proof["submit_proof"], true, step1, proof="  rfl")
        assert "accepted" in text and reward == 1.0  # step 1's own episode, its one submission
        for arguments in ([1, 2], "  rfl", None, 3):  # arguments that are not an object: an answer, not an exception
            instance, _ = await proof["check_proof"].create(create_kwargs=true)
            response, reward, _ = await proof["check_proof"].execute(instance, arguments, agent_data=Trajectory("x"))
            assert "must be a JSON object" in response.text and reward == 0.0
        for row in (
            {"formal_statement": "example : (1 : Nat) + 1 = 2 := by"},
            {"formal_statement": "theorem t : 2 = 2"},
        ):
            text, reward = await call(proof["submit_proof"], row, Trajectory("bad-row"), proof="  rfl")
            assert "The tool failed: ValueError" in text and reward == 0.0  # an unusable sample, not a NaN

    asyncio.run(episode())


def test_tactic_tools_through_verls_registry() -> None:
    tactic = tools("verl_tactic_tools.yaml")
    assert set(tactic) == {"run_tactic", "goals", "backtrack"}

    async def episode() -> None:
        row, t = {"formal_statement": ADD}, Trajectory("tactic-1")
        text, _ = await call(tactic["goals"], row, t)
        root = text.splitlines()[0].removeprefix("State ").rstrip(":")
        text, reward = await call(tactic["run_tactic"], row, t, tactic="rw [Nat.add_zero]")
        assert "⊢ a = b" in text and reward == 0.0
        text, _ = await call(tactic["backtrack"], row, t, state_id=root)
        assert "⊢ a + 0 = b" in text
        text, reward = await call(tactic["run_tactic"], row, t, tactic="omega")
        assert "accepted" in text and reward == 1.0

    asyncio.run(episode())


def test_tool_score() -> None:
    assert tool_score("lean", "", None, {"tool_rewards": [0.0, 1.0]}) == 1.0
    assert tool_score("lean", "", None, {"tool_rewards": []}) == 0.0
    with pytest.raises(VerifierUnavailable):  # Lean failed: never a 0
        tool_score("lean", "", None, {"tool_rewards": [0.0, math.nan]})


def run(mode: str) -> list[Any]:
    """Six trajectories per toy problem in verl's agent loop (docs/examples/verl_multiturn.py; with
    the tiny model's uniform choice, a whole-proof trajectory is proved ~1 time in 4)."""
    rows = [{"formal_statement": p.formal_statement, "name": p.name} for p in TOY for _ in range(6)]
    loop = tiny_agent_loop(mode, [p.formal_statement for p in TOY])
    return rollouts(loop, mode, rows)


def fresh_rewards(pairs: list[tuple[Problem, str]]) -> list[float]:
    """The verdicts judged again, from scratch (no cache)."""
    runtime = get_verifier("embedded").runtime
    return [v.reward for v in Verifier(runtime, Policy(), cache_size=0).verify_batch(pairs)]


def test_proof_tools_in_verls_tool_agent_loop() -> None:
    outputs = run("proofs")
    scores = [tool_score("lean", "", None, out.extra_fields) for out in outputs]
    statements = [p.formal_statement for p in TOY for _ in range(6)]
    submitted = [(Problem("t", s), out.extra_fields["lean_proof"]) for s, out in zip(statements, outputs, strict=True)
                 if out.extra_fields.get("lean_proof") is not None]  # fmt: skip
    truth = iter(fresh_rewards(submitted))
    assert scores == [next(truth) if out.extra_fields.get("lean_proof") is not None else 0.0 for out in outputs]
    assert [out.extra_fields.get("lean_reward", 0.0) for out in outputs] == scores
    assert max(out.num_turns for out in outputs) > 3  # some trajectory called a tool more than once
    assert set(scores) == {0.0, 1.0}


def test_tactic_tools_in_verls_tool_agent_loop() -> None:
    outputs = run("tactics")
    scores = [tool_score("lean", "", None, out.extra_fields) for out in outputs]
    statements = [p.formal_statement for p in TOY for _ in range(6)]
    closed = [(Problem("t", s), out.extra_fields["lean_proof"]) for s, out, r in zip(statements, outputs, scores, strict=True)
              if r == 1.0]  # fmt: skip
    assert all(fresh_rewards(closed)) and set(scores) == {0.0, 1.0}
    assert [out.extra_fields.get("lean_reward", 0.0) for out in outputs] == scores
