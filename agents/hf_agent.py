"""`--agent hf:PATH_OR_NAME`: a causal language model that samples k whole proofs per problem.

The prompt is the problem's header, informal statement and formal statement (`render_prompt`);
the completion is cut where the proof ends (`extract_proof`) and verified in one batch per
call. Generation goes through `leangym.agents.generation`, the back-end GRPO trains with:
vLLM when it is installed and a GPU is present (the `[gpu]` extra), transformers otherwise.
torch, transformers and vLLM are imported only when the agent is built.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from leangym.agents.prover import ProofSampler
from leangym.rewards.problem import Problem

log = logging.getLogger(__name__)


class HFAgent(ProofSampler):
    """Samples proofs from a model folder or hub name (see the module docstring)."""

    def __init__(
        self,
        model: str,
        *,
        template: str = "plain",
        temperature: float = 1.0,
        top_p: float = 0.95,
        max_new_tokens: int = 512,
        stop: Sequence[str] | None = None,
        backend: str = "auto",
        batch_size: int = 32,
        seed: int | None = 0,
        device: str | None = None,
    ):
        from leangym.agents.generation import SamplingConfig
        from leangym.agents.prompts import DEFAULT_STOP, TEMPLATES

        if template not in TEMPLATES:
            raise ValueError(f"unknown template {template!r}: choose one of {', '.join(TEMPLATES)}")
        self.name = f"hf:{model}"
        self.template = template
        self.sampling = SamplingConfig(
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            stop=DEFAULT_STOP[template] if stop is None else tuple(stop),  # where a completion ends
            seed=seed,
        )
        self.deterministic = temperature <= 0  # greedy decoding: one sample stands for every k
        self.tokenizer, self.generator = _load(model, backend, batch_size, device)

    def sample(self, problems: Sequence[Problem], n: int) -> list[list[str]]:
        from leangym.agents.prompts import extract_proof, render_prompt

        prompts = [render_prompt(p, self.template, self.tokenizer) for p in problems]
        groups = self.generator.generate(prompts, n, self.sampling)
        return [[extract_proof(c.text, self.template) for c in group] for group in groups]

    def close(self) -> None:
        self.generator.close()


def _load(model: str, backend: str, batch_size: int, device: str | None) -> tuple:
    """The tokenizer and a generator: vLLM loads the weights itself; transformers gets a model."""
    from leangym.agents.generation import HFGenerator, VLLMGenerator, pick_backend
    from leangym.agents.models import load_causal_lm, load_tokenizer, pick_device

    use = pick_backend(backend, model)  # an unknown back-end is an error before anything loads
    tokenizer = load_tokenizer(model)
    if use == "vllm":
        log.info("generation: vLLM")
        return tokenizer, VLLMGenerator(model, tokenizer, gpu_memory_utilization=0.85)  # no trainer beside it
    device = pick_device(device or "auto")
    log.info("generation: transformers on %s", device)
    lm = load_causal_lm(model, device, bfloat16=device.startswith("cuda"))
    return tokenizer, HFGenerator(lm, tokenizer, batch_size=batch_size)
