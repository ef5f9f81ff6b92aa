"""GRPO with TRL's `GRPOTrainer`, the Lean kernel's verdict as the reward.

    pip install -e '.[trl]'                     # trl, datasets (CPU; no CUDA package)
    python docs/examples/trl_grpo.py            # CPU: a tiny model built here, the embedded Lean
    python docs/examples/trl_grpo.py --model deepseek-ai/DeepSeek-Prover-V1.5-RL --vllm \\
        --problems minif2f-core:valid --steps 100 --runtime native     # a GPU and `[gpu]`

What leangym brings is two lines: the problems as a `datasets.Dataset`
(`problems_dataset`: a `prompt` column plus `name`, `formal_statement`, `header`) and the
reward (`lean_reward`: every completion of a step verified in one Lean batch; 1.0 if the
kernel accepts the proof of exactly that statement, else 0.0). Everything else is TRL.

On the CPU the policy is a ~100k-parameter model built on the spot (no download) whose
answer is one of `omega`, `decide`, `simp`, `rfl`, `sorry`, uniformly at first (see
`leangym.agents.tiny`): TRL samples, Lean judges (a `sorry` always gets 0), TRL updates. It
prints TRL's logged mean reward per step and the samples of the last step with their reward.
"""

from __future__ import annotations

import argparse
import tempfile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="tiny", help="`tiny` (built here) or a Hugging Face model name or path")
    ap.add_argument("--problems", default="toy", help="`toy` (envs/data/toy.jsonl) or a problem-set spec")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--group", type=int, default=8, help="completions per prompt (TRL's num_generations)")
    ap.add_argument("--vllm", action="store_true", help="generate with vLLM (GPU, `pip install -e '.[gpu]'`)")
    ap.add_argument("--runtime", default="embedded", choices=["embedded", "native"])
    ap.add_argument("--output-dir", default=None)
    args = ap.parse_args()

    from trl import GRPOConfig, GRPOTrainer

    from leangym.agents.hf_dataset import problems_dataset
    from leangym.agents.tiny import TACTICS, build_tiny
    from leangym.envs.problems import load_problems
    from leangym.rewards import make_lean_reward
    from leangym.rewards.adapters import completion_text

    problems = load_problems(args.problems)
    dataset = problems_dataset(problems, style="plain")
    if args.model == "tiny":
        model, tokenizer = build_tiny(dataset["prompt"], tactics=(*TACTICS, "sorry"))
        max_completion_length = 2  # one word and <eos>
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model, tokenizer = AutoModelForCausalLM.from_pretrained(args.model), AutoTokenizer.from_pretrained(args.model)
        max_completion_length = 512
    verify = make_lean_reward(runtime=args.runtime)
    last: list[tuple[str, str, float | None]] = []  # the latest step's (problem, completion, reward)

    def lean_reward(completions: list, name: list[str], **columns: object) -> list[float | None]:
        rewards = verify(completions=completions, name=name, **columns)
        last[:] = zip(name, map(completion_text, completions), rewards, strict=True)
        return rewards

    config = GRPOConfig(
        output_dir=args.output_dir or tempfile.mkdtemp(prefix="trl-grpo-"),
        max_steps=args.steps,
        per_device_train_batch_size=2 * args.group,  # two prompts a step
        num_generations=args.group,
        max_completion_length=max_completion_length,
        temperature=1.0,
        learning_rate=1e-3 if args.model == "tiny" else 1e-6,
        beta=0.0,
        logging_steps=1,
        report_to="none",
        use_cpu=not args.vllm,
        use_vllm=args.vllm,
        vllm_mode="colocate",
        log_completions=False,
        save_strategy="no",
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model, processing_class=tokenizer, reward_funcs=[lean_reward], args=config, train_dataset=dataset
    )
    trainer.train()
    for row in trainer.state.log_history:
        if "rewards/lean_reward/mean" in row:
            print(f"step {row['step']:>3}  mean reward {row['rewards/lean_reward/mean']:.3f}  (logged by TRL)")
    print("last step's samples:")
    for problem, text, reward in last:
        print(f"  {reward}  {problem}: {text.strip()[:60]!r}")


if __name__ == "__main__":
    main()
