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
from pathlib import Path
from typing import Any

import pytest

verl = pytest.importorskip("verl", reason="verl runs in its own environment: make test-verl")

from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap  # noqa: E402
from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop  # noqa: E402
from verl.tools.tool_registry import initialize_tools_from_config  # noqa: E402
from verl.workers.rollout.replica import TokenOutput  # noqa: E402

from leangym.agents.tiny import TACTICS, build_tiny_agent, tool_call  # noqa: E402
from leangym.envs.agentic import ProofRevisionEnv, TacticAgentEnv  # noqa: E402
from leangym.envs.problems import load_problems  # noqa: E402
from leangym.envs.verl_tools import EPISODES, tool_score  # noqa: E402
from leangym.rewards import Policy, Problem, Verifier, get_verifier  # noqa: E402
from leangym.rewards.adapters import VerifierUnavailable  # noqa: E402

pytestmark = pytest.mark.lean

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
TOY = load_problems("toy")[:4]  # closed by omega, decide, simp, … (one tactic each)
ADD = "theorem add_swap (a b : Nat) (h : a = b) : a + 0 = b := by"


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
    """What a tool reads of verl's `AgentData`: the trajectory's request id."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id


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
        text, reward = await call(proof["submit_proof"], {"formal_statement": "theorem f : 1 + 1 = 3 := by"}, other,
                                  proof="  sorry")  # fmt: skip
        assert "rejected" in text and reward == 0.0
        text, reward = await call(proof["check_proof"], {}, Trajectory("proof-3"), proof="  omega")
        assert "formal_statement" in text and reward == 0.0  # a sample without a statement: told, not raised

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


class TinyServer:
    """verl's LLM server, played by the tiny model: it samples a reply to the prompt's token ids."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer

    async def generate(self, request_id: str, prompt_ids: list[int], sampling_params: dict, **_: Any) -> TokenOutput:
        import torch

        with torch.no_grad():
            out = self.model.generate(
                torch.tensor([prompt_ids]), do_sample=True, max_new_tokens=4,
                eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id,
            )  # fmt: skip
        return TokenOutput(token_ids=out[0, len(prompt_ids) :].tolist(), stop_reason="completed")


def agent_loop(config: str, episode: Any, actions: list[str]) -> ToolAgentLoop:
    """verl's `ToolAgentLoop` with the example tools and the tiny model as its server."""
    import torch
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    model, tokenizer = build_tiny_agent([p.formal_statement for p in TOY], episode, actions)
    rollout = {
        "multi_turn": {"max_user_turns": 4, "max_assistant_turns": 4, "max_parallel_calls": 1, "format": "hermes",
                       "max_tool_response_length": 1024, "tool_response_truncate_side": "middle"},
        "prompt_length": 2048, "response_length": 2048, "full_determinism": True,  # request id: det-<priority>
    }  # fmt: skip
    return ToolAgentLoop(
        trainer_config=DictConfigWrap(OmegaConf.create({"actor_rollout_ref": {"rollout": rollout}})),
        server_manager=TinyServer(model, tokenizer), tokenizer=tokenizer, processor=None, dataset_cls=None,
        data_config=DictConfigWrap(OmegaConf.create({})), tools=ToolListWrap(list(tools(config).values())),
    )  # fmt: skip


def rollouts(loop: ToolAgentLoop, names: list[str], first: int) -> list[Any]:
    """Six trajectories per toy problem, as verl's agent loop worker runs them (one `run` each; with
    the tiny model's uniform choice, a whole-proof trajectory is proved ~1 time in 4)."""

    async def run_all() -> list[Any]:
        jobs = []
        for i, p in enumerate([p for p in TOY for _ in range(6)]):
            row = {"formal_statement": p.formal_statement, "name": p.name}
            jobs.append(loop.run({"temperature": 1.0}, priority=first + i, raw_prompt=[{"role": "user",
                        "content": p.formal_statement}], tools_kwargs={n: {"create_kwargs": row} for n in names}))  # fmt: skip
        return await asyncio.gather(*jobs)

    return loop.loop.run_until_complete(run_all())  # the event loop verl's agent loop was made on


def fresh_rewards(pairs: list[tuple[Problem, str]]) -> list[float]:
    """The verdicts judged again, from scratch (no cache)."""
    runtime = get_verifier("embedded").runtime
    return [v.reward for v in Verifier(runtime, Policy(), cache_size=0).verify_batch(pairs)]


def test_proof_tools_in_verls_tool_agent_loop() -> None:
    actions = [tool_call(t, proof=p) for t in ("check_proof", "submit_proof") for p in TACTICS]
    loop = agent_loop("verl_proof_tools.yaml", ProofRevisionEnv("embedded"), actions)
    outputs = rollouts(loop, ["check_proof", "submit_proof"], first=100)
    scores = [tool_score("lean", "", None, out.extra_fields) for out in outputs]
    episodes = [EPISODES.find(ProofRevisionEnv, f"det-{100 + i}") for i in range(len(outputs))]
    assert all(e is not None for e in episodes)  # every trajectory called Lean
    submitted = [(Problem("t", e.problem.formal_statement), e.submitted) for e in episodes if e.submitted]
    truth = iter(fresh_rewards(submitted))
    assert scores == [next(truth) if e.submitted else 0.0 for e in episodes]  # the score is Lean's verdict
    assert max(out.num_turns for out in outputs) > 3  # some trajectory called a tool more than once
    assert set(scores) == {0.0, 1.0}


def test_tactic_tools_in_verls_tool_agent_loop() -> None:
    actions = [tool_call("run_tactic", tactic=t) for t in TACTICS]
    loop = agent_loop("verl_tactic_tools.yaml", TacticAgentEnv("embedded"), actions)
    outputs = rollouts(loop, ["run_tactic", "goals", "backtrack"], first=200)
    scores = [tool_score("lean", "", None, out.extra_fields) for out in outputs]
    episodes = [EPISODES.find(TacticAgentEnv, f"det-{200 + i}") for i in range(len(outputs))]
    closed = [(Problem("t", e.problem.formal_statement), e.proof) for e in episodes if e.reward == 1.0]
    assert all(fresh_rewards(closed)) and scores == [e.get_reward() for e in episodes]
    assert set(scores) == {0.0, 1.0}
