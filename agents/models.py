"""Which weights a prover starts from, and loading them: the tokenizer, the policy (whole, or a
LoRA adapter on it), the frozen reference of GRPO's KL term.

`leangym train` (`load_models`) and the `hf:` agent of `leangym eval` (`load_causal_lm`) load
through here, so a model folder reads the same way in both. torch, transformers and peft are
imported inside the functions: `leangym --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leangym.agents.config import ConfigError, TrainConfig

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from leangym.rewards.problem import Problem


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a model name or folder, with a pad token (the EOS token when it has none).

    A folder saved with a generic tokenizer (`tokenizer_class` `TokenizersBackend`, e.g. the
    tiny model's word-level one) is loaded exactly as saved: transformers 5's `AutoTokenizer`
    would rebuild it as the architecture's class (`Qwen2Tokenizer`), which splits text its own way.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    config = Path(name_or_path) / "tokenizer_config.json"
    generic = config.is_file() and json.loads(config.read_text(encoding="utf-8")).get("tokenizer_class") in (
        "TokenizersBackend",
        "PreTrainedTokenizerFast",
    )
    tokenizer = (PreTrainedTokenizerFast if generic else AutoTokenizer).from_pretrained(name_or_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def pick_device(asked: str = "auto") -> str:
    """`cuda` when asked for or (`auto`) when torch sees a GPU, else `cpu`; a clear error for a missing GPU."""
    import torch

    if asked == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if asked.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {asked} asked for, but torch sees no CUDA GPU")
    return asked


def load_causal_lm(path: str, device: str, *, bfloat16: bool) -> Any:
    """A causal language model's weights on `device`, in bfloat16 or float32."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if bfloat16 else torch.float32
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)


def has_adapter(model: Any) -> bool:
    """Whether `model` is a policy with a LoRA adapter (a peft model): its base, with the adapter
    off, is GRPO's reference, and the adapter is merged in before its weights go to vLLM."""
    try:
        from peft import PeftModel
    except ImportError:  # the [lora] extra is not installed: no model has an adapter
        return False
    return isinstance(model, PeftModel)


def initial_model_path(cfg: TrainConfig, problems: list[Problem], out: Path) -> str:
    """Where the starting weights live: the hub name or folder, or for `tiny` a folder written now (once)."""
    if cfg.model != "tiny":
        return cfg.model
    folder = out / "initial_model"
    if not (folder / "config.json").is_file():
        from leangym.agents.prompts import render_prompt
        from leangym.agents.tiny import build_tiny

        prompts = [render_prompt(p, cfg.template) for p in problems]
        model, tokenizer = build_tiny(prompts, tactics=cfg.tiny_answers, seed=cfg.seed)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return str(folder)


def load_models(cfg: TrainConfig, model_path: str, checkpoint: Path | None) -> tuple[Any, Any, Any]:
    """(policy, reference or None, tokenizer). The policy resumes from `checkpoint/model` when given."""
    device = pick_device(cfg.device)
    bfloat16 = cfg.dtype == "bfloat16"
    tokenizer = load_tokenizer(model_path)
    if cfg.lora is not None:
        try:
            from peft import LoraConfig, PeftModel, get_peft_model
        except ImportError as e:
            raise ConfigError("lora needs peft: pip install 'lean-gym[lora]'") from e
        base = load_causal_lm(model_path, device, bfloat16=bfloat16)
        if checkpoint is not None:
            policy = PeftModel.from_pretrained(base, checkpoint / "model", is_trainable=True)
        else:
            options = {"r": 16, "lora_alpha": 32, "target_modules": "all-linear", **cfg.lora}
            policy = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", **options))
        return policy, None, tokenizer  # the reference is the base model with the adapter off
    start = str(checkpoint / "model") if checkpoint is not None else model_path
    policy = load_causal_lm(start, device, bfloat16=bfloat16)
    reference = None
    if cfg.grpo.beta > 0:
        reference = load_causal_lm(model_path, device, bfloat16=bfloat16).eval().requires_grad_(False)
    return policy, reference, tokenizer
