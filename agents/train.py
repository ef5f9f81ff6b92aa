"""`leangym train`: GRPO training of a prover against the Lean kernel, from a YAML config.

    leangym train --config agents/configs/demo.yaml [key=value ...] [--resume]

A config has top-level keys (the run) and two sections that are the algorithm's and the
sampler's own settings: `grpo:` (`GRPOConfig`, agents/grpo.py) and `sampling:`
(`SamplingConfig`, agents/generation.py). On the command line, `grpo.lr=1e-5` sets a key
of a section.

A run writes to `output_dir`: `config.yaml` (the resolved settings), `metrics.jsonl` (one
row per step), `samples.jsonl` (every sampled proof and its verdict), `checkpoint/`
(the latest; `--resume` continues from it), `reward_curve.png` at the end, and
TensorBoard logs under `tb/` when tensorboard is installed. Ctrl-C saves a checkpoint.
With `eval_problems`, the held-out pass@k (`eval_pass@1`, …) is measured before the first
step (a row of step 0) and every `eval_every` steps, in the same files and on the same curve.

Heavy libraries (torch, transformers, matplotlib) are imported inside functions so that
`leangym --help` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import json
import shutil
import sys
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leangym.agents.generation import SamplingConfig
from leangym.agents.grpo import GRPOConfig, LossNorm
from leangym.agents.prompts import DEFAULT_STOP, TEMPLATES
from leangym.agents.tiny import TACTICS
from leangym.envs.problems import ProblemSetError, load_problems

if TYPE_CHECKING:
    from leangym.agents.grpo import GRPOTrainer
    from leangym.rewards.problem import Problem


# The sections of a config: each is the named class's own settings, nested as they are.
SECTIONS: dict[str, type[GRPOConfig] | type[SamplingConfig]] = {"grpo": GRPOConfig, "sampling": SamplingConfig}
# Fields of a section that a run sets itself, and why.
NOT_SETTINGS = {
    "sampling.seed": "each step samples with a seed made from the run's `seed` (seed·1000003 + step)",
    "sampling.logprobs": "the trainer computes the log-probabilities it needs itself",
}


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
        norms = typing.get_args(LossNorm)
        checks = [
            (self.steps >= 1, "steps must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (g.group_size >= 2, "grpo.group_size must be >= 2: advantages compare samples of a group"),
            (self.template in TEMPLATES, f"template must be one of {', '.join(TEMPLATES)}"),
            (g.loss_norm in norms, f"grpo.loss_norm must be one of {', '.join(norms)}"),
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

    defaults = TrainConfig()
    top = {key: value for key, value in values.items() if key not in SECTIONS}
    _check_keys(top, None)
    top = {key: _coerce(key, value, getattr(defaults, key)) for key, value in top.items()}
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        given = values.get(name) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"section {name!r} must be a mapping of keys to values, got {given!r}")
        _check_keys(given, name)
        if name == "sampling" and given.get("stop") is None:  # unset: the template's stop strings
            given = {**given, "stop": DEFAULT_STOP.get(top.get("template", defaults.template), ())}
        default = getattr(defaults, name)
        sections[name] = cls(**{k: _coerce(f"{name}.{k}", v, getattr(default, k)) for k, v in given.items()})
    cfg = TrainConfig(**top, **sections)
    cfg.validate()
    return cfg


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


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check a value against its default's type; numbers written as strings (YAML reads `1e-6` so) are parsed."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)):
        try:
            number = float(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or (isinstance(default, int) and number != int(number)):
            kind = "an integer" if isinstance(default, int) else "a number"
            raise ConfigError(f"{key} must be {kind}, got {value!r}")
        return int(number) if isinstance(default, int) else number
    if isinstance(default, str):
        return str(value)
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list of strings, got {value!r}")
        return tuple(value)
    return value


# -- problems ---------------------------------------------------------------------------


def problems_for_step(problems: list[Problem], step: int, batch_size: int, seed: int) -> list[Problem]:
    """The batch of step `step`: epochs of seeded permutations, so a resumed run sees the same batches."""
    import numpy as np

    batch = []
    for k in range(step * batch_size, (step + 1) * batch_size):
        epoch, i = divmod(k, len(problems))
        order = np.random.default_rng([seed, epoch]).permutation(len(problems))
        batch.append(problems[int(order[i])])
    return batch


# -- models -----------------------------------------------------------------------------


def _device(cfg: TrainConfig) -> str:
    import torch

    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda asked for, but torch sees no CUDA GPU")
    return cfg.device


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
    import torch
    from transformers import AutoModelForCausalLM

    from leangym.agents.generation import load_tokenizer

    device = _device(cfg)
    dtype = torch.bfloat16 if cfg.dtype == "bfloat16" else torch.float32

    def load(path: str) -> Any:
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)

    tokenizer = load_tokenizer(model_path)
    if cfg.lora is not None:
        try:
            from peft import LoraConfig, PeftModel, get_peft_model
        except ImportError as e:
            raise ConfigError("lora needs peft: pip install 'lean-gym[lora]'") from e
        base = load(model_path)
        if checkpoint is not None:
            policy = PeftModel.from_pretrained(base, checkpoint / "model", is_trainable=True)
        else:
            options = {"r": 16, "lora_alpha": 32, "target_modules": "all-linear", **cfg.lora}
            policy = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", **options))
        return policy, None, tokenizer  # the reference is the base model with the adapter off
    policy = load(str(checkpoint / "model") if checkpoint is not None else model_path)
    reference = None
    if cfg.grpo.beta > 0:
        reference = load(model_path).eval().requires_grad_(False)
    return policy, reference, tokenizer


# -- checkpoints ------------------------------------------------------------------------


def save_checkpoint(trainer: GRPOTrainer, out: Path, step: int) -> Path:
    """Write `out/checkpoint` (model, tokenizer, optimiser, step, RNG) atomically: a crash keeps the previous one."""
    import torch

    tmp, final, old = out / "checkpoint.tmp", out / "checkpoint", out / "checkpoint.old"
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.policy.save_pretrained(tmp / "model")
    trainer.tokenizer.save_pretrained(tmp / "model")
    state = {
        "step": step,
        "optimizer": trainer.optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    torch.save(state, tmp / "trainer_state.pt")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def restore_checkpoint(trainer: GRPOTrainer, checkpoint: Path) -> int:
    """Load the optimiser and RNG state into `trainer` (the weights were loaded with the model); return the step."""
    import torch

    state = torch.load(checkpoint / "trainer_state.pt", map_location="cpu", weights_only=True)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.steps_done = int(state["step"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["step"])


# -- logging ----------------------------------------------------------------------------


class RunLog:
    """metrics.jsonl, samples.jsonl and TensorBoard (when installed) for one run."""

    def __init__(self, out: Path, resume_step: int | None):
        self.metrics_path = out / "metrics.jsonl"
        self.samples_path = out / "samples.jsonl"
        if resume_step is None:
            for p in (self.metrics_path, self.samples_path):
                p.unlink(missing_ok=True)
        else:  # keep what the checkpoint covers, drop steps it does not
            for p in (self.metrics_path, self.samples_path):
                if p.exists():
                    rows = [ln for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
                    p.write_text("".join(ln + "\n" for ln in rows if json.loads(ln)["step"] <= resume_step))
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tb"))
        except ImportError:  # tensorboard is optional
            pass

    def write(self, step: int, metrics: dict[str, Any], samples: list[Any]) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **_rounded(metrics)}) + "\n")
        with self.samples_path.open("a", encoding="utf-8") as f:
            for s in samples:
                f.write(json.dumps({"step": step, **dataclasses.asdict(s)}, ensure_ascii=False) + "\n")
        if self.tb is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)):
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _rounded(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}


def plot_rewards(metrics_path: Path, png: Path, held_out: str | None = None) -> Path | None:
    """Mean reward and pass rate per step, and the held-out pass@k when evaluated, as a PNG (None: nothing to plot)."""
    if not metrics_path.exists():
        return None
    rows = [json.loads(ln) for ln in metrics_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train_rows = [r for r in rows if "reward_mean" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [r["step"] for r in train_rows]
    ax.plot(steps, [r["reward_mean"] for r in train_rows], marker="o", label="mean reward")
    ax.plot(steps, [r["pass_rate"] for r in train_rows], marker=".", linestyle="--", label="pass rate (any of G)")
    for key in sorted({k for r in rows for k in r if k.startswith("eval_pass@")}, key=lambda k: int(k.split("@")[1])):
        evals = [r for r in rows if key in r]
        label = f"held-out {key.removeprefix('eval_')}" + (f" ({held_out})" if held_out else "")
        ax.plot([r["step"] for r in evals], [r[key] for r in evals], marker="s", linewidth=2, label=label)
    ax.set_xlabel("step")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("GRPO against the Lean kernel")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def _step_line(step: int, total: int, m: dict[str, Any]) -> str:
    kl = f"{m['kl']:.4f}" if m.get("kl") is not None else "  -   "
    loss = f"{m['loss']:+.4f}" if m.get("loss") is not None else "   -   "
    return (
        f"step {step:>3}/{total}  reward {m['reward_mean']:.3f}  pass {m['pass_rate']:.2f}  "
        f"zero-var {m['zero_variance_frac']:.2f}  kl {kl}  loss {loss}  "
        f"{m['tokens_per_s']:.0f} tok/s  verify {m['verify_s']:.1f}s  step {m['step_s']:.1f}s"
    )


# -- the run ----------------------------------------------------------------------------


def train(cfg: TrainConfig, *, resume: bool = False, echo: Any = print) -> dict[str, Any]:
    """Run GRPO as configured; return a summary (steps done, last metrics, paths). Ctrl-C saves a checkpoint."""
    import torch
    from tqdm import tqdm

    from leangym.agents.generation import make_generator
    from leangym.agents.grpo import GRPOTrainer
    from leangym.rewards.distributed import make_verifier

    out = Path(cfg.output_dir)
    checkpoint = out / "checkpoint"
    if resume and not (checkpoint / "trainer_state.pt").is_file():
        raise ConfigError(f"--resume: no checkpoint in {out}")
    if not resume and (out / "metrics.jsonl").exists() and not cfg.overwrite:
        raise ConfigError(f"{out} already holds a run: pass --resume to continue it, or overwrite=true to restart")
    if not resume and cfg.overwrite:
        for stale in ("checkpoint", "initial_model", "tb"):
            shutil.rmtree(out / stale, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    (out / "config.yaml").write_text(_yaml(cfg.settings()), encoding="utf-8")

    verifier = make_verifier(cfg.ray, cfg.runtime, server=cfg.server)
    verifier.prewarm()  # Lean starts (~7 s) while the models load
    echo(f"verifying with {verifier.describe()}")
    try:
        problems = load_problems(cfg.problems, runtime=verifier.runtime)
        held_out = load_problems(cfg.eval_problems, runtime=verifier.runtime) if cfg.eval_problems else []
    except (ProblemSetError, OSError) as e:
        raise ConfigError(str(e)) from e
    shared = {p.name for p in problems} & {p.name for p in held_out}
    if shared:
        echo(f"warning: {len(shared)} of the {len(held_out)} eval problems are training problems too: not held out")
    model_path = initial_model_path(cfg, problems + held_out, out)
    policy, reference, tokenizer = load_models(cfg, model_path, checkpoint if resume else None)
    generator = make_generator(
        policy,
        tokenizer,
        cfg.generator,
        model_path=model_path,
        gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        seed=cfg.seed,
    )
    trainer = GRPOTrainer(
        policy, tokenizer, generator, verifier, cfg.grpo, cfg.sampling, template=cfg.template, reference=reference
    )
    start = restore_checkpoint(trainer, checkpoint) if resume else 0
    n_params = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    echo(
        f"leangym train: {cfg.model} ({n_params:,} trainable parameters) on {trainer.device}, "
        f"generation: {generator.name}, {len(problems)} problems ({cfg.problems}), "
        f"{cfg.batch_size} x G={cfg.grpo.group_size} samples per step, beta={cfg.grpo.beta}"
        + (f", resuming after step {start}" if resume else "")
    )

    log = RunLog(out, start if resume else None)

    def evaluate(step: int) -> dict[str, float]:
        """Held-out pass@k now, with the same sampling seed every time (policies are compared, not luck)."""
        scores = trainer.evaluate(held_out, cfg.eval_samples, seed=cfg.seed * 1_000_003 + 999_983)
        shown = ", ".join(f"{k.removeprefix('eval_')} {v:.3f}" for k, v in scores.items())
        tqdm.write(f"held-out {cfg.eval_problems} after step {step}: {shown}", file=sys.stdout)
        return scores

    if held_out and not resume:  # the curve starts from the untrained policy
        log.write(0, evaluate(0), [])
    step = start
    last: dict[str, Any] = {}
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=start, desc="GRPO", unit="step", file=sys.stderr, dynamic_ncols=True)
    try:
        while step < cfg.steps:
            batch = problems_for_step(problems, step, cfg.batch_size, cfg.seed)
            result = trainer.step(batch, seed=cfg.seed * 1_000_003 + step)
            step += 1
            last = result.metrics
            if held_out and (step % cfg.eval_every == 0 or step == cfg.steps):
                last = {**last, **evaluate(step)}
            log.write(step, last, result.samples)
            bar.update(1)
            bar.set_postfix(reward=f"{last['reward_mean']:.2f}")
            tqdm.write(_step_line(step, cfg.steps, last), file=sys.stdout)
            if step % cfg.save_every == 0 or step == cfg.steps:
                save_checkpoint(trainer, out, step)
    except KeyboardInterrupt:
        bar.close()
        if step > start:
            save_checkpoint(trainer, out, step)
        echo(f"interrupted after step {step}: checkpoint in {checkpoint}; continue with --resume")
        raise
    finally:
        bar.close()
        log.close()
        plot_rewards(log.metrics_path, out / "reward_curve.png", held_out=cfg.eval_problems)
        generator.close()
    summary = {
        "steps": step,
        "seconds": round(time.perf_counter() - t0, 1),
        "last": _rounded(last),
        "output_dir": str(out),
        "reward_curve": str(out / "reward_curve.png"),
    }
    echo(f"done: {step} steps in {summary['seconds']} s; metrics {log.metrics_path}, curve {summary['reward_curve']}")
    return summary


def _yaml(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# -- the subcommand ---------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    defaults = TrainConfig()

    def default(key: str) -> str:
        if key == "sampling.stop":
            return "the template's"
        return repr(functools.reduce(getattr, key.split("."), defaults))

    keys = "\n".join(f"  {k} = {default(k)}" for k in TrainConfig.field_names())
    p = sub.add_parser(
        "train",
        help="train a prover with GRPO against the Lean kernel",
        description="GRPO: sample G proofs per problem, reward 1 when the Lean kernel accepts one, update the policy.",
        epilog=f"keys (YAML, sections grpo: and sampling:; or key=value, grpo.lr=...) and defaults:\n{keys}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="CONFIG.yaml", help="YAML file of settings (see agents/configs/demo.yaml)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="settings that replace the file's")
    p.add_argument("--resume", action="store_true", help="continue the run in output_dir from its checkpoint")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config, args.overrides)
        train(cfg, resume=args.resume)
    except ConfigError as e:
        print(f"leangym train: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
