"""The settings of a training run: `TrainConfig`, and reading it from YAML and `key=value` overrides.

A config has top-level keys (the run) and two sections that are the algorithm's and the
sampler's own settings: `grpo:` (`GRPOConfig`, agents/grpo.py) and `sampling:`
(`SamplingConfig`, agents/generation.py). On the command line, `grpo.lr=1e-5` sets a key
of a section. An unknown key is an error that says where the key belongs, or what it is
closest to; the values are checked against the dataclasses' types by pydantic (a number
YAML read as text, such as `1e-6`, is parsed), and an error names the key.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config

from leangym.agents.generation import SamplingConfig
from leangym.agents.grpo import GRPOConfig
from leangym.agents.prompts import DEFAULT_STOP, TEMPLATES
from leangym.agents.tiny import TACTICS

# The sections of a config: each is the named class's own settings, nested as they are.
SECTIONS: dict[str, type[GRPOConfig] | type[SamplingConfig]] = {"grpo": GRPOConfig, "sampling": SamplingConfig}
# Fields of a section that a run sets itself, and why.
NOT_SETTINGS = {
    "sampling.seed": "each step samples with a seed made from the run's `seed` (seed·1000003 + step)",
    "sampling.logprobs": "the trainer computes the log-probabilities it needs itself",
}


@with_config(ConfigDict(coerce_numbers_to_str=True))  # `output_dir: 2024` is a folder's name
@dataclass
class TrainConfig:
    """Every setting of a run; YAML keys and `key=value` overrides use these names.

    `grpo` and `sampling` are the trainer's and the sampler's own configs. `load_config`
    gives `sampling.stop` the template's stop strings (`DEFAULT_STOP`) when it is not set.
    """

    # what to train, on what
    model: str = "tiny"  # "tiny" (built locally, agents/tiny.py) or a transformers model name or folder
    tiny_answers: tuple[str, ...] = TACTICS  # model "tiny": the proofs its format prior answers with, uniformly
    problems: str = "toy"  # a problem-set spec (envs/problems.py): "toy", "core:valid", a .jsonl path
    template: str = "plain"  # prompt template: plain | fence | chat (agents/prompts.py)
    dtype: str = "float32"  # weights of the trained model: float32 | bfloat16 (bf16 autocast on GPU: grpo.bf16)
    lora: dict[str, Any] | None = None  # e.g. {r: 16, lora_alpha: 32, target_modules: all-linear}; needs [lora]
    # the loop: each step samples grpo.group_size proofs for each of batch_size problems
    steps: int = 20
    batch_size: int = 4  # problems per step
    # verification
    runtime: str = "embedded"  # Lean runtime: embedded | native
    ray: str | None = None  # verify on a Ray cluster: "local", "auto" or "ray://host:port" (needs [ray])
    # held-out evaluation: pass@k on another split before training and every `eval_every` steps
    eval_problems: str | None = None  # a problem-set spec, e.g. "core:valid"; unset: no evaluation
    eval_every: int = 10  # steps between evaluations (and one after the last step)
    eval_samples: int = 1  # proofs sampled per held-out problem: pass@1, and pass@k up to it
    server: str | None = None  # verify on a leangym server: its URL, or "auto" (default: $LEANGYM_SERVER)
    # the run
    output_dir: str = "runs/grpo"
    overwrite: bool = False  # start afresh in an output_dir that already holds a run
    save_every: int = 10  # steps between checkpoints (and one at the end)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    generator: str = "auto"  # auto | transformers | vllm
    vllm_gpu_memory_utilization: float = 0.3
    torch_threads: int = 0  # CPU threads for torch; 0 = torch's default
    grpo: GRPOConfig = field(default_factory=GRPOConfig)  # the algorithm (agents/grpo.py)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)  # how proofs are sampled (agents/generation.py)

    @classmethod
    def section_keys(cls, section: str | None = None) -> list[str]:
        """The keys a config may set at the top level (None) or in `section`."""
        if section is None:
            return [f.name for f in dataclasses.fields(cls) if f.name not in SECTIONS]
        return [f.name for f in dataclasses.fields(SECTIONS[section]) if f"{section}.{f.name}" not in NOT_SETTINGS]

    @classmethod
    def field_names(cls) -> list[str]:
        """Every setting: the top-level keys, then `section.key` for each section's."""
        return cls.section_keys() + [f"{s}.{k}" for s in SECTIONS for k in cls.section_keys(s)]

    def settings(self) -> dict[str, Any]:
        """The settings as a config file writes them (`config.yaml`, which `load_config` reads back)."""
        data = dataclasses.asdict(self)
        for key in NOT_SETTINGS:
            section, _, name = key.partition(".")
            del data[section][name]
        return data

    def validate(self) -> None:
        g, s = self.grpo, self.sampling
        checks = [
            (self.steps >= 1, "steps must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (g.group_size >= 2, "grpo.group_size must be >= 2: advantages compare samples of a group"),
            (self.template in TEMPLATES, f"template must be one of {', '.join(TEMPLATES)}"),
            (self.generator in ("auto", "transformers", "vllm"), "generator must be auto, transformers or vllm"),
            (self.device in ("auto", "cpu", "cuda"), "device must be auto, cpu or cuda"),
            (self.dtype in ("float32", "bfloat16"), "dtype must be float32 or bfloat16"),
            (g.beta >= 0 and g.clip_eps > 0 and g.lr > 0, "grpo.beta must be >= 0, grpo.clip_eps and grpo.lr > 0"),
            (s.max_new_tokens >= 1, "sampling.max_new_tokens must be >= 1"),
            (g.micro_batch_size >= 1, "grpo.micro_batch_size must be >= 1"),
            (s.temperature > 0, "sampling.temperature must be > 0: a group of greedy samples has nothing to compare"),
            (self.model != "tiny" or self.lora is None, "model 'tiny' is trained in full: leave lora unset"),
            (self.eval_every >= 1 and self.eval_samples >= 1, "eval_every and eval_samples must be >= 1"),
            (len(self.tiny_answers) >= 1, "tiny_answers needs at least one proof"),
        ]
        errors = [msg for ok, msg in checks if not ok]
        if errors:
            raise ConfigError("; ".join(errors))


class ConfigError(ValueError):
    """A config file or override the trainer cannot use."""


def load_config(path: str | None, overrides: list[str]) -> TrainConfig:
    """The YAML file's settings, then `key=value` overrides (values parsed as YAML).

    `grpo.lr=1e-5` sets a key of a section, `lora.r=8` one of the LoRA options.
    """
    import yaml

    values: dict[str, Any] = {}
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read config {path}: {e}") from e
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of keys to values")
        values.update(loaded)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value")
        value = yaml.safe_load(raw) if raw else None
        head, _, rest = key.partition(".")
        if rest:
            nested = values.get(head) or {}
            if not isinstance(nested, dict):
                raise ConfigError(f"override {item!r}: {head!r} holds no keys")
            values[head] = {**nested, rest: value}
        else:
            values[key] = value

    top = {key: value for key, value in values.items() if key not in SECTIONS}
    _check_keys(top, None)
    for name in SECTIONS:
        given = values.get(name) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"section {name!r} must be a mapping of keys to values, got {given!r}")
        _check_keys(given, name)
        values[name] = given
    if values["sampling"].get("stop") is None:  # unset: the template's stop strings
        values["sampling"]["stop"] = DEFAULT_STOP.get(values.get("template", TrainConfig.template), ())
    try:
        cfg = _TYPES.validate_python(values)
    except ValidationError as e:
        raise ConfigError("; ".join(_explain(error) for error in e.errors())) from None
    cfg.validate()
    return cfg


_TYPES = TypeAdapter(TrainConfig)  # checks and converts a dict of settings into a TrainConfig


def _explain(error: Any) -> str:
    """One of pydantic's errors as a config error: the key, what was wrong, the value given."""
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']} (got {error['input']!r})"


def _check_keys(given: dict[str, Any], section: str | None) -> None:
    """Refuse a key the top level (None) or `section` does not have, saying where it belongs if elsewhere."""
    known = TrainConfig.section_keys(section)
    where = f"in section {section!r}" if section else "at the top level"
    for key in given:
        if key in known:
            continue
        qualified = f"{section}.{key}" if section else key
        if qualified in NOT_SETTINGS:
            raise ConfigError(f"{qualified} is not a setting of a run: {NOT_SETTINGS[qualified]}")
        home = next((k for k in TrainConfig.field_names() if k.rpartition(".")[2] == key), None)
        if home is not None:
            place = f"in section {home.partition('.')[0]!r}" if "." in home else "at the top level"
            raise ConfigError(f"unknown key {key!r} {where}: it belongs {place} ({home})")
        near = difflib.get_close_matches(key, known, n=1)
        raise ConfigError(f"unknown key {key!r} {where}" + (f" (did you mean {near[0]!r}?)" if near else ""))
