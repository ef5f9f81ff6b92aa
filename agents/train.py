"""`leangym train`: GRPO training of a prover against the Lean kernel, from a YAML config.

    leangym train --config agents/configs/demo.yaml [key=value ...] [--resume]

The run's settings are `config.TrainConfig` (read by `config.load_config`); what it writes
to `output_dir` is `runlog.py`'s: `config.yaml` (the resolved settings), `metrics.jsonl` (one
row per step), `samples.jsonl` (every sampled proof and its verdict), `checkpoint/` (the latest;
`--resume` continues from it), `reward_curve.png` at the end, and TensorBoard logs under `tb/`
when tensorboard is installed. Ctrl-C saves a checkpoint. With `eval_problems`, the held-out
pass@k (`eval_pass@1`, …) is measured before the first step (a row of step 0) and every
`eval_every` steps, in the same files and on the same curve.

Heavy libraries (torch, transformers, matplotlib) are imported inside functions so that
`leangym --help` stays fast.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leangym.agents.config import ConfigError, TrainConfig, load_config
from leangym.agents.models import initial_model_path, load_models
from leangym.agents.runlog import RunLog, plot_rewards, prepare_output, restore_checkpoint, rounded, save_checkpoint
from leangym.cli import CommandError
from leangym.envs.problems import ProblemSetError, load_problems

if TYPE_CHECKING:
    from leangym.rewards.problem import Problem


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
    from leangym.rewards.distributed import make_verifier

    out = Path(cfg.output_dir)
    checkpoint = prepare_output(out, cfg.settings(), resume=resume, overwrite=cfg.overwrite)
    verifier = make_verifier(cfg.ray, cfg.runtime, server=cfg.server)
    verifier.prewarm()  # Lean starts (~7 s) while torch, transformers and the models load

    import torch
    from tqdm import tqdm

    from leangym.agents.generation import make_generator
    from leangym.agents.grpo import GRPOTrainer

    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
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
        "last": rounded(last),
        "output_dir": str(out),
        "reward_curve": str(out / "reward_curve.png"),
    }
    echo(f"done: {step} steps in {summary['seconds']} s; metrics {log.metrics_path}, curve {summary['reward_curve']}")
    return summary


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
        raise CommandError(str(e)) from e
    except KeyboardInterrupt:
        return 130
    return 0
