"""Sampling proofs from a causal language model: prompts in, k completions per prompt out.

One interface, two back-ends that take the same `SamplingConfig` and return the same
`Completion`s:

* `HFGenerator`: transformers `generate` (any device; the CPU path, tests, the demo);
* `VLLMGenerator`: vLLM, colocated with the trainer on one GPU (the `[gpu]` extra). The
  trainer pushes its weights into vLLM after each update (`sync_weights`).

Both tokenise prompts with `encode_prompts` (agents/prompts.py) and hand vLLM token ids,
so the two see the same input; both cut the text at the first stop string and keep the
sampled tokens up to and including the one that completed it (or `<eos>`), which is what
the trainer trains on. torch, transformers and vLLM are imported only when used: vLLM
only when a `VLLMGenerator` is made.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from leangym.agents.prompts import encode_prompts

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingConfig:
    """How to sample. The same values mean the same distribution in both back-ends."""

    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()  # the completion ends before the first of these
    seed: int | None = None  # makes one call reproducible
    logprobs: bool = False  # report each sampled token's log-probability (costs memory on transformers)


@dataclass(frozen=True)
class Completion:
    """One sample: its text (cut before any stop string) and the tokens that were sampled."""

    text: str
    token_ids: tuple[int, ...]  # sampled ids, up to and including <eos> or the token that completed a stop string
    finish_reason: Literal["stop", "length"]
    # log p(token) under the sampling distribution (after temperature and top-p), when asked for
    logprobs: tuple[float, ...] | None = None


def _cut_at_stop(
    tokenizer: PreTrainedTokenizerBase, ids: list[int], stop: Sequence[str]
) -> tuple[str, list[int], bool]:
    """Text before the first stop string, and the shortest prefix of `ids` whose text contains it."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    hits = [(text.find(s), s) for s in stop if s and s in text]
    if not hits:
        return text, ids, False
    pos, s = min(hits)
    lo, hi = 1, len(ids)  # binary search: decoding a longer prefix never yields a shorter text here
    while lo < hi:
        mid = (lo + hi) // 2
        if s in tokenizer.decode(ids[:mid], skip_special_tokens=True):
            hi = mid
        else:
            lo = mid + 1
    return text[:pos], ids[:lo], True


# -- back-ends --------------------------------------------------------------------------


class Generator(ABC):
    """Samples `n` completions for each prompt."""

    name: str

    @abstractmethod
    def generate(self, prompts: Sequence[str], n: int, sampling: SamplingConfig) -> list[list[Completion]]:
        """`n` completions per prompt, in prompt order."""

    def sync_weights(self, model: PreTrainedModel) -> None:  # noqa: B027 - only engines with their own copy override it
        """Make the next `generate` sample from `model`'s current weights."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine."""


class HFGenerator(Generator):
    """transformers `generate` on the trainer's own model: nothing to sync."""

    name = "transformers"

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, batch_size: int = 64):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size  # sequences generated at once (prompts x n)

    def generate(self, prompts: Sequence[str], n: int, sampling: SamplingConfig) -> list[list[Completion]]:
        import torch

        encoded = encode_prompts(self.tokenizer, prompts)
        per_call = max(1, self.batch_size // n)
        out: list[list[Completion]] = []
        with torch.random.fork_rng(devices=_cuda_devices(self.model), enabled=sampling.seed is not None):
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            for start in range(0, len(encoded), per_call):
                out.extend(self._generate(encoded[start : start + per_call], n, sampling))
        return out

    def _generate(self, encoded: list[list[int]], n: int, sampling: SamplingConfig) -> list[list[Completion]]:
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        width = max(map(len, encoded))
        device = self.model.device
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)  # [B, P], left-padded
        attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)  # [B, P]
        for i, ids in enumerate(encoded):
            input_ids[i, width - len(ids) :] = torch.tensor(ids)
            attention_mask[i, width - len(ids) :] = 1
        greedy = sampling.temperature <= 0
        per_prompt = 1 if greedy else n  # greedy samples are all the same: decode once, repeat
        config = GenerationConfig(
            do_sample=not greedy,
            temperature=None if greedy else sampling.temperature,
            top_p=None if greedy else sampling.top_p,
            top_k=None,  # vLLM's default: no top-k (a model's own generation_config may set one)
            max_new_tokens=sampling.max_new_tokens,
            num_return_sequences=per_prompt,
            pad_token_id=pad,
            eos_token_id=tok.eos_token_id,
            return_dict_in_generate=True,
            output_scores=sampling.logprobs,
        )
        stopping = StoppingCriteriaList([_StopStrings(tok, sampling.stop, width)] if sampling.stop else [])
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            result = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                generation_config=config,
                stopping_criteria=stopping,
            )
        self.model.train(was_training)
        sampled = result.sequences[:, width:].tolist()  # [B*per_prompt, C]
        if sampling.logprobs:
            scores = torch.stack(result.scores, dim=1).float().log_softmax(-1)  # [B*n, C, V] after warpers
            chosen = torch.tensor([row + [pad] * (scores.shape[1] - len(row)) for row in sampled], device=scores.device)
            token_logps = scores.gather(-1, chosen[:, : scores.shape[1], None]).squeeze(-1).tolist()  # [B*n, C]
        done = [
            self._finish(row, sampling, token_logps[i] if sampling.logprobs else None) for i, row in enumerate(sampled)
        ]
        if greedy:
            return [[c] * n for c in done]
        return [done[i : i + n] for i in range(0, len(done), n)]

    def _finish(self, row: list[int], sampling: SamplingConfig, logps: list[float] | None) -> Completion:
        """Trim one generated row to what was sampled and cut it at <eos> or a stop string."""
        tok = self.tokenizer
        eos = tok.eos_token_id
        if eos in row:
            ids, stopped = row[: row.index(eos) + 1], True
        else:
            ids, stopped = list(row), False
            if tok.pad_token_id is not None:  # rows that stopped early are padded to the longest
                while ids and ids[-1] == tok.pad_token_id:
                    ids.pop()
        text, ids, hit = _cut_at_stop(tok, ids, sampling.stop)
        finished = stopped or hit or len(ids) < sampling.max_new_tokens
        return Completion(
            text=text,
            token_ids=tuple(ids),
            finish_reason="stop" if finished else "length",
            logprobs=tuple(logps[: len(ids)]) if logps is not None else None,
        )


class _StopStrings:
    """A transformers stopping criterion: a row is done once its completion's text holds a stop string.

    It decodes the last tokens instead of matching token strings, so it works with any
    tokenizer (transformers' own `stop_strings` needs a BPE-like vocabulary).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stop: Sequence[str], prompt_width: int):
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.prompt_width = prompt_width
        self.window = 2 * max(map(len, self.stop), default=1) + 4  # tokens: enough to hold any stop string

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        import torch

        tails = input_ids[:, self.prompt_width :][:, -self.window :]  # [rows, <= window]
        texts = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop) for t in texts], device=input_ids.device)


class VLLMGenerator(Generator):
    """vLLM colocated with the trainer on one GPU; `sync_weights` loads the trainer's weights in place.

    The engine runs in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`), so `LLM.apply_model`
    hands the weights over by reference, not through a pipe. Needs vLLM >= 0.10.2
    (`logprobs_mode`).
    """

    name = "vllm"

    def __init__(
        self,
        model_path: str,
        tokenizer: PreTrainedTokenizerBase,
        *,
        gpu_memory_utilization: float = 0.3,
        max_model_len: int | None = None,
        seed: int = 0,
        dtype: str = "bfloat16",
    ):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        self.tokenizer = tokenizer
        self.llm = LLM(
            model=model_path,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            seed=seed,
            dtype=dtype,
            enable_prefix_caching=True,  # the G samples of a group share their prompt
            logprobs_mode="processed_logprobs",  # after temperature and top-p, like HFGenerator's
        )

    def generate(self, prompts: Sequence[str], n: int, sampling: SamplingConfig) -> list[list[Completion]]:
        from vllm import SamplingParams

        params = SamplingParams(
            n=n,
            temperature=max(0.0, sampling.temperature),
            top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
            max_tokens=sampling.max_new_tokens,
            stop=list(sampling.stop) or None,
            seed=sampling.seed,
            logprobs=0 if sampling.logprobs else None,  # 0 = only the sampled token's
            skip_special_tokens=True,
        )
        requests = [{"prompt_token_ids": ids} for ids in encode_prompts(self.tokenizer, prompts)]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [[self._completion(o, sampling.logprobs) for o in req.outputs] for req in outputs]

    @staticmethod
    def _completion(out: Any, want_logprobs: bool) -> Completion:
        ids = tuple(out.token_ids)
        logps = None
        if want_logprobs and out.logprobs is not None:
            logps = tuple(step[tok].logprob for step, tok in zip(out.logprobs, ids, strict=True))
        return Completion(out.text, ids, "length" if out.finish_reason == "length" else "stop", logps)

    def sync_weights(self, model: PreTrainedModel) -> None:
        weights = list(inference_state_dict(model).items())
        self.llm.apply_model(lambda inner: inner.load_weights(weights))
        self.llm.reset_prefix_cache()  # cached prompt states were computed with the old weights

    def close(self) -> None:
        del self.llm


def inference_state_dict(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The model's weights under the base model's names; LoRA adapters are merged in for the copy."""
    from leangym.agents.models import has_adapter

    if not has_adapter(model):
        return {name: t.detach() for name, t in model.state_dict().items()}
    model.merge_adapter()
    try:
        state = {}
        for name, t in model.state_dict().items():
            if "lora_" in name:
                continue
            clean = name.removeprefix("base_model.model.").replace(".base_layer", "")
            state[clean] = t.detach().clone()
        return state
    finally:
        model.unmerge_adapter()


def vllm_available() -> bool:
    """vLLM installed and a CUDA GPU present (checked without importing vLLM)."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def pick_backend(backend: str, model_path: str | None) -> Literal["vllm", "transformers"]:
    """`vllm` when asked, or for `auto` when it is installed, a GPU is present and the model has a
    name or folder vLLM can load (`model_path`); `transformers` otherwise. Raises for an unknown
    back-end, or `vllm` asked for where it cannot run."""
    if backend not in ("auto", "vllm", "transformers"):
        raise ValueError(f"unknown generation backend {backend!r}: choose auto, vllm or transformers")
    if not (backend == "vllm" or (backend == "auto" and vllm_available() and model_path is not None)):
        return "transformers"
    if not vllm_available():
        raise RuntimeError("backend 'vllm' needs a CUDA GPU and the [gpu] extra: pip install 'lean-gym[gpu]'")
    if model_path is None:
        raise ValueError("backend 'vllm' needs the model saved to a folder or a hub name (model_path)")
    return "vllm"


def make_generator(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    backend: str = "auto",
    *,
    model_path: str | None = None,
    **vllm_options: Any,
) -> Generator:
    """`vllm` when asked, or for `auto` when it is installed and a GPU is present; `transformers` otherwise.

    vLLM loads the model from `model_path` (a hub name or a saved folder), then receives the
    trainer's weights through `sync_weights`. The choice is logged.
    """
    if pick_backend(backend, model_path) == "vllm":
        assert model_path is not None
        log.info("generation: vLLM (colocated, weights synced after each update)")
        generator: Generator = VLLMGenerator(model_path, tokenizer, **vllm_options)
        generator.sync_weights(model)
        return generator
    why = "asked for" if backend == "transformers" else "vLLM not installed or no GPU"
    log.info("generation: transformers generate on %s (%s)", model.device, why)
    return HFGenerator(model, tokenizer)


def _cuda_devices(model: PreTrainedModel) -> list[int]:
    return [model.device.index or 0] if model.device.type == "cuda" else []
