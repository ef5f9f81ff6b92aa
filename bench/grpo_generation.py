"""Generation speed and GRPO step time: vLLM (colocated) against transformers `generate`, in one run, on a GPU.

    python bench/grpo_generation.py [--model NAME_OR_FOLDER] [--prompts 16] [--group 8] [--new-tokens 256]

For each back-end: generation tokens per second (B prompts x G samples, `--new-tokens` each),
then seconds per GRPO step (generate, reward, update, and for vLLM the weight sync) over
`--steps` steps. Printed: both, and the ratio vLLM / transformers.

Without `--model` the model is a Qwen2 of ~0.5B parameters (24 layers, hidden 896, a
32k-word vocabulary) with random weights, built on the spot: the device reaches no model
hub, and speed does not depend on the weights' values. Rewards come from a fixed rule on
the completion (its token count's parity), not from Lean: this measures the GPU side of a
step; bench/verifier_throughput.py measures Lean's.

Needs a CUDA GPU and vLLM (`pip install 'lean-gym[gpu]'`); without them it says so and
measures nothing. It is never run by the tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from leangym.agents.generation import (
    Generator,
    HFGenerator,
    SamplingConfig,
    VLLMGenerator,
    vllm_available,
)
from leangym.agents.grpo import GRPOConfig, GRPOTrainer
from leangym.agents.models import load_tokenizer
from leangym.rewards import Problem, Verdict


class ParityReward:
    """A stand-in verifier for a speed benchmark: `proved` iff the completion has an even number of words."""

    def prewarm(self) -> None:
        return None

    def verify_batch(self, pairs: list[tuple[Problem, str]]) -> list[Verdict]:
        return [Verdict("proved" if len(proof.split()) % 2 == 0 else "rejected") for _, proof in pairs]


def random_model(folder: Path) -> str:
    """A ~0.5B-parameter Qwen2 with random weights and a 32k-word tokenizer, saved to `folder`."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    words = ["<pad>", "<unk>", "<eos>", *(f"w{i}" for i in range(32_765))]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>"
    )
    config = Qwen2Config(
        vocab_size=len(words),
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).to(torch.bfloat16).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def measure(name: str, generator: Generator, policy, tokenizer, args: argparse.Namespace) -> dict[str, float]:
    """Tokens/s of generation, then seconds per GRPO step, for one back-end."""
    problems = [Problem(f"p{i}", f"theorem p{i} : {i} = {i} := by") for i in range(args.prompts)]
    prompts = [" ".join(f"w{(7 * i + j) % 30_000}" for j in range(64)) for i in range(args.prompts)]
    sampling = SamplingConfig(temperature=1.0, top_p=1.0, max_new_tokens=args.new_tokens, seed=0)
    generator.generate(prompts[:2], 2, sampling)  # warm-up: compilation, CUDA graphs, caches
    walls, tokens = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        groups = generator.generate(prompts, args.group, sampling)
        walls.append(time.perf_counter() - t0)
        tokens.append(sum(len(c.token_ids) for g in groups for c in g))
    cfg = GRPOConfig(group_size=args.group, lr=1e-6, beta=0.0, micro_batch_size=args.micro_batch)
    trainer = GRPOTrainer(policy, tokenizer, generator, ParityReward(), cfg, sampling)  # type: ignore[arg-type]
    trainer.step(problems[:2], seed=0)  # warm-up
    steps = []
    for s in range(args.steps):
        t0 = time.perf_counter()
        trainer.step(problems, seed=s + 1)
        steps.append(time.perf_counter() - t0)
    result = {"tokens_per_s": sum(tokens) / sum(walls), "s_per_step": statistics.median(steps)}
    print(f"{name:13} {result['tokens_per_s']:12.0f} {result['s_per_step']:12.2f}", flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a model folder or hub name (default: a random ~0.5B Qwen2 built here)")
    ap.add_argument("--prompts", type=int, default=16, help="problems per step (B)")
    ap.add_argument("--group", type=int, default=8, help="samples per problem (G)")
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3, help="generation rounds timed per back-end")
    ap.add_argument("--steps", type=int, default=3, help="GRPO steps timed per back-end")
    ap.add_argument("--micro-batch", type=int, default=16)
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.35)
    args = ap.parse_args()
    if not vllm_available():
        print(
            "grpo_generation: needs a CUDA GPU and vLLM (pip install 'lean-gym[gpu]'); nothing measured",
            file=sys.stderr,
        )
        return 0

    import torch
    from transformers import AutoModelForCausalLM

    with tempfile.TemporaryDirectory() as tmp:
        path = args.model or random_model(Path(tmp) / "model")
        tokenizer = load_tokenizer(path)
        print(
            f"{torch.cuda.get_device_name()}; model {args.model or 'random Qwen2 ~0.5B'}; "
            f"B={args.prompts} G={args.group} new tokens={args.new_tokens}\n"
        )
        print(f"{'back-end':13} {'tokens/s':>12} {'s/step':>12}")

        policy = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to("cuda")
        hf = measure(
            "transformers",
            HFGenerator(policy, tokenizer, batch_size=args.prompts * args.group),
            policy,
            tokenizer,
            args,
        )
        del policy
        torch.cuda.empty_cache()

        policy = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to("cuda")
        vllm = VLLMGenerator(path, tokenizer, gpu_memory_utilization=args.gpu_memory_utilization)
        vllm.sync_weights(policy)
        fast = measure("vllm", vllm, policy, tokenizer, args)
        vllm.close()

    print(
        f"\nvLLM / transformers: generation {fast['tokens_per_s'] / hf['tokens_per_s']:.1f}x tokens/s, "
        f"GRPO step {hf['s_per_step'] / fast['s_per_step']:.1f}x faster"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
