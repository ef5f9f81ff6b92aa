"""Multi-turn rollouts in verl's own `ToolAgentLoop`: the model calls Lean as a tool, reads its answer, tries again.

    make test-verl                                   # builds .venv-verl (verl pins an older transformers than TRL)
    .venv-verl/bin/python docs/examples/verl_multiturn.py                   # whole proofs: check_proof, submit_proof
    .venv-verl/bin/python docs/examples/verl_multiturn.py --mode tactics    # run_tactic, goals, backtrack

leangym brings the tools (`envs/verl_tools.py`, configs `docs/examples/verl_*_tools.yaml`) and the
score (`tool_score`); everything else is verl. In a verl training run you point verl at them:

    actor_rollout_ref.rollout.multi_turn.enable=true
    actor_rollout_ref.rollout.multi_turn.tool_config_path=docs/examples/verl_proof_tools.yaml
    custom_reward_function.path=<site-packages>/leangym/envs/verl_tools.py custom_reward_function.name=tool_score
    # each sample: extra_info.tools_kwargs = {check_proof: {create_kwargs: {formal_statement: ...}}, submit_proof: ...}

A training run needs verl's vLLM or SGLang server on a GPU. Here, on the CPU, the agent loop's LLM
server is the tiny model of `agents/tiny.py`, whose every answer is one whole tool call chosen at
random (`build_tiny_agent`): the script prints each trajectory's tool calls and its score.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
TOOLS = {"proofs": ["check_proof", "submit_proof"], "tactics": ["run_tactic", "goals", "backtrack"]}


class TinyServer:
    """verl's LLM server (`server_manager.generate`), played by a local Hugging Face model: it samples
    a reply to the prompt's token ids (verl builds them with the chat template and its tools)."""

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int = 4) -> None:
        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens

    async def generate(self, request_id: str, prompt_ids: list[int], sampling_params: dict, **_: Any) -> Any:
        import torch
        from verl.workers.rollout.replica import TokenOutput

        with torch.no_grad():
            out = self.model.generate(
                torch.tensor([prompt_ids]), do_sample=True, max_new_tokens=self.max_new_tokens,
                temperature=float(sampling_params.get("temperature", 1.0)),
                eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id,
            )  # fmt: skip
        return TokenOutput(token_ids=out[0, len(prompt_ids) :].tolist(), stop_reason="completed")


def tiny_agent_loop(mode: str, statements: list[str], *, max_turns: int = 4, seed: int = 0) -> Any:
    """verl's `ToolAgentLoop` with leangym's tools of `mode` (the example configs), the tiny model its server."""
    import torch
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
    from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop
    from verl.tools.tool_registry import initialize_tools_from_config

    from leangym.agents.tiny import TACTICS, build_tiny_agent, tool_call
    from leangym.envs.agentic import ProofRevisionEnv, TacticAgentEnv

    tools = initialize_tools_from_config(str(HERE / f"verl_{mode.rstrip('s')}_tools.yaml"))
    if mode == "proofs":
        episode, actions = ProofRevisionEnv, [tool_call(t, proof=p) for t in TOOLS[mode] for p in TACTICS]
    else:
        episode, actions = TacticAgentEnv, [tool_call("run_tactic", tactic=t) for t in TACTICS]
    torch.manual_seed(seed)
    model, tokenizer = build_tiny_agent(statements, episode(), actions, seed=seed)
    rollout = {
        "multi_turn": {"max_user_turns": max_turns, "max_assistant_turns": max_turns, "max_parallel_calls": 1,
                       "format": "hermes", "max_tool_response_length": 1024, "tool_response_truncate_side": "middle"},
        "prompt_length": 2048, "response_length": 2048, "full_determinism": True,  # request ids: det-<priority>
    }  # fmt: skip
    return ToolAgentLoop(
        trainer_config=DictConfigWrap(OmegaConf.create({"actor_rollout_ref": {"rollout": rollout}})),
        server_manager=TinyServer(model, tokenizer), tokenizer=tokenizer, processor=None, dataset_cls=None,
        data_config=DictConfigWrap(OmegaConf.create({})), tools=ToolListWrap(tools),
    )  # fmt: skip


def rollouts(loop: Any, mode: str, rows: list[dict[str, Any]]) -> list[Any]:
    """One trajectory per row, run together as verl's agent loop worker runs them (each row is a
    sample's `create_kwargs`: `formal_statement`, …). Trajectory `i`'s request id is `det-<i>` at
    every call, as at every step of a `full_determinism` run: each trajectory gets its own episode."""

    async def run_all() -> list[Any]:
        return await asyncio.gather(*[
            loop.run({"temperature": 1.0}, priority=i,
                     raw_prompt=[{"role": "user", "content": row["formal_statement"]}],
                     tools_kwargs={name: {"create_kwargs": row} for name in TOOLS[mode]})
            for i, row in enumerate(rows)
        ])  # fmt: skip

    return loop.loop.run_until_complete(run_all())  # the event loop verl's agent loop was made on


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", default="proofs", choices=list(TOOLS))
    ap.add_argument("--problems", default="toy", help="a problem-set spec (`toy`, `core:valid`, …)")
    ap.add_argument("--trajectories", type=int, default=8)
    args = ap.parse_args()

    from leangym.envs.problems import load_problems
    from leangym.envs.verl_tools import tool_score

    problems = load_problems(args.problems)
    rows = [{"formal_statement": p.formal_statement, "header": p.header, "name": p.name} for p in problems]
    rows = [rows[i % len(rows)] for i in range(args.trajectories)]
    loop = tiny_agent_loop(args.mode, [r["formal_statement"] for r in rows])
    for row, out in zip(rows, rollouts(loop, args.mode, rows), strict=True):
        text = loop.tokenizer.decode(out.response_ids)
        score = tool_score("lean", text, None, out.extra_fields)
        print(f"{row['name']}: score {score}, tool rewards {out.extra_fields['tool_rewards']}")
        for call in re.findall(r"<tool_call>\s*(.*?)\s*</tool_call>", text, re.S):
            print("   ", call)


if __name__ == "__main__":
    main()
