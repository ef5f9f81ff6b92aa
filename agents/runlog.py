"""What a training run leaves behind: checkpoints, metrics and samples, TensorBoard, the reward curve."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leangym.agents.config import ConfigError

if TYPE_CHECKING:
    from leangym.agents.grpo import GRPOTrainer


def prepare_output(out: Path, settings: dict[str, Any], *, resume: bool, overwrite: bool) -> Path:
    """Make `out` ready for a run (a new one, or `resume`), write `config.yaml`; the checkpoint folder.

    A folder that holds a run is kept unless `overwrite` (then its checkpoint, initial model and
    TensorBoard logs go) or `resume` (which needs a checkpoint)."""
    import yaml

    checkpoint = out / "checkpoint"
    if resume and not (checkpoint / "trainer_state.pt").is_file():
        raise ConfigError(f"--resume: no checkpoint in {out}")
    if not resume and (out / "metrics.jsonl").exists() and not overwrite:
        raise ConfigError(f"{out} already holds a run: pass --resume to continue it, or overwrite=true to restart")
    if not resume and overwrite:
        for stale in ("checkpoint", "initial_model", "tb"):
            shutil.rmtree(out / stale, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return checkpoint


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
            f.write(json.dumps({"step": step, **rounded(metrics)}) + "\n")
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


def rounded(metrics: dict[str, Any]) -> dict[str, Any]:
    """Floats to 6 places, as the metrics file keeps them."""
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
