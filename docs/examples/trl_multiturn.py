"""Multi-turn GRPO with TRL's `environment_factory`: the model calls Lean as a tool, reads its answer, tries again.

    pip install -e '.[trl]'
    python docs/examples/trl_multiturn.py                      # whole proofs: check_proof, submit_proof
    python docs/examples/trl_multiturn.py --mode tactics       # one tactic at a time: run_tactic, goals, backtrack
    python docs/examples/trl_multiturn.py --model Qwen/Qwen3-1.7B --problems core:train --steps 100   # a GPU

leangym brings the environment class (`envs/agentic.py`): TRL makes one instance per rollout,
calls `reset(**row)` with the dataset row (`formal_statement`, `header`, `name`), offers the
public methods as tools, and scores the rollout with `get_reward()`: 1.0 only for a final proof
whose verdict is `proved` (the trusted judge's). Everything else is TRL.

On the CPU the policy is a tiny model built here (no download) whose every answer is one whole
tool call, e.g. `check_proof(proof="omega")`, chosen at random at first
(`leangym.agents.tiny.build_tiny_agent`). It prints TRL's logged reward and tool calls per step.
"""

from __future__ import annotations

import argparse
import tempfile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", default="proofs", choices=["proofs", "tactics"])
    ap.add_argument(
        "--model", default="tiny", help="`tiny` (built here) or a Hugging Face chat model with tool calling"
    )
    ap.add_argument("--problems", default="toy", help="a problem-set spec (`toy`, `core:train`, …)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--runtime", default="embedded", help="embedded, native, or a leangym server's URL")
    args = ap.parse_args()

    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from leangym.agents.tiny import TACTICS, build_tiny_agent, tool_call
    from leangym.envs.agentic import ProofRevisionEnv, TacticAgentEnv
    from leangym.envs.problems import load_problems

    problems = load_problems(args.problems)
    rows = [
        {"prompt": [{"role": "user", "content": f"Prove in Lean 4:\n{p.formal_statement}"}],
         "formal_statement": p.formal_statement, "header": p.header, "name": p.name}
        for p in problems
    ]  # fmt: skip
    env_class = ProofRevisionEnv if args.mode == "proofs" else TacticAgentEnv

    def factory() -> ProofRevisionEnv | TacticAgentEnv:
        return env_class(args.runtime)

    if args.model == "tiny":
        if args.mode == "proofs":
            actions = [tool_call(tool, proof=t) for tool in ("check_proof", "submit_proof") for t in TACTICS]
        else:
            actions = [tool_call("run_tactic", tactic=t) for t in TACTICS]
        model, tokenizer = build_tiny_agent([r["prompt"][0]["content"] for r in rows], factory(), actions)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model, tokenizer = AutoModelForCausalLM.from_pretrained(args.model), AutoTokenizer.from_pretrained(args.model)
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="leangym-trl-multiturn-"),
        max_steps=args.steps,
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=64 if args.model == "tiny" else 2048,
        max_tool_calling_iterations=4,
        learning_rate=1e-3 if args.model == "tiny" else 1e-6,
        beta=0.0,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        args=config,
        train_dataset=Dataset.from_list(rows),
        environment_factory=factory,
    )
    trainer.train()
    key = f"rewards/{env_class.__name__}/mean"
    for row in trainer.state.log_history:
        if key in row:
            print(f"reward {row[key]:.3f}  tool calls per rollout {row['tools/call_frequency']:.2f}")


if __name__ == "__main__":
    main()
