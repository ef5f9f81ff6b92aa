"""`leangym train`: config parsing, batches, checkpoints, and short real runs (resume, Ctrl-C).

The runs use the demo config (tiny model, toy set, real embedded Lean through the shared
verifier): a few steps each, so most of their verdicts come from the verifier's cache once
the first run has checked them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml

from leangym.agents.config import ConfigError, TrainConfig, load_config
from leangym.agents.generation import SamplingConfig
from leangym.agents.grpo import GRPOConfig
from leangym.agents.prompts import DEFAULT_STOP
from leangym.agents.runlog import plot_rewards, restore_checkpoint, save_checkpoint
from leangym.agents.train import problems_for_step
from leangym.cli import main
from leangym.envs.problems import ProblemSetError, load_problems

DEMO = Path(__file__).resolve().parents[1] / "agents" / "configs" / "demo.yaml"


# -- config -----------------------------------------------------------------------------


def test_shipped_configs_load():
    cfg = load_config(str(DEMO), [])
    assert cfg.model == "tiny" and cfg.problems == "toy" and cfg.sampling.max_new_tokens == 1
    assert cfg.grpo.lr == 3e-3 and cfg.grpo.epochs == 2 and cfg.sampling.top_p == 0.95
    assert cfg.sampling.stop == DEFAULT_STOP["plain"]  # not set: the template's
    for path in DEMO.parent.glob("*.yaml"):
        load_config(str(path), [])  # every shipped config validates


def test_sections_are_the_trainers_own_configs(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("template: fence\ngrpo:\n  lr: 1e-5\n  loss_norm: constant\nsampling:\n  temperature: 0.7\n")
    cfg = load_config(str(path), ["grpo.group_size=4"])
    assert cfg.grpo == GRPOConfig(lr=1e-5, loss_norm="constant", group_size=4)
    assert cfg.sampling == SamplingConfig(temperature=0.7, stop=DEFAULT_STOP["fence"])
    assert load_config(None, ["sampling.stop=[]"]).sampling.stop == ()  # set empty: no stop strings


def test_overrides_replace_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "model: some/model\nsteps: 5\ngrpo: {lr: 1e-5, epochs: 3}\nlora: {r: 4}\n"
    )  # YAML reads 1e-5 as a string: it is parsed
    overrides = ["steps=7", "grpo.beta=0", "lora.lora_alpha=16", "sampling.stop=['```', \"\\n\\n\"]"]
    cfg = load_config(str(path), overrides)
    assert cfg.steps == 7 and cfg.grpo.lr == 1e-5 and cfg.grpo.beta == 0.0 and cfg.grpo.epochs == 3
    assert cfg.lora == {"r": 4, "lora_alpha": 16}
    assert cfg.sampling.stop == ("```", "\n\n")


def test_written_config_loads_back(tmp_path):
    """`config.yaml` of a run is a config file: the same settings come back from it."""
    cfg = load_config(str(DEMO), ["grpo.scale_rewards=false", "sampling.stop=['```']"])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg.settings(), sort_keys=False))
    assert load_config(str(tmp_path / "config.yaml"), []) == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["stpes=3"], "unknown key 'stpes' at the top level (did you mean 'steps'?)"),
        (["grpo.lrr=1"], "unknown key 'lrr' in section 'grpo' (did you mean 'lr'?)"),
        (["lr=1e-5"], "unknown key 'lr' at the top level: it belongs in section 'grpo' (grpo.lr)"),
        (["grpo.temperature=1"], "unknown key 'temperature' in section 'grpo': it belongs in section 'sampling'"),
        (["sampling.steps=3"], "unknown key 'steps' in section 'sampling': it belongs at the top level (steps)"),
        (["sampling.seed=3"], "sampling.seed is not a setting of a run"),
        (["grpo=3"], "section 'grpo' must be a mapping"),
        (["steps=3", "steps.x=1"], "'steps' holds no keys"),
        (["steps"], "not key=value"),
        (["steps=two"], "steps: Input should be a valid integer, unable to parse string as an integer (got 'two')"),
        (["steps=2.5"], "steps: Input should be a valid integer, got a number with a fractional part (got 2.5)"),
        (["grpo.scale_rewards=maybe"], "grpo.scale_rewards: Input should be a valid boolean"),
        (["sampling.stop=omega"], "sampling.stop: Input should be a valid tuple (got 'omega')"),
        (["lora=3"], "lora: Input should be a valid dictionary"),
        (["grpo.group_size=1"], "grpo.group_size must be >= 2"),
        (["template=alpaca"], "template must be one of"),
        (["grpo.loss_norm=mean"], "grpo.loss_norm: Input should be 'token', 'sequence' or 'constant' (got 'mean')"),
        (["sampling.temperature=0"], "sampling.temperature must be > 0"),
        (["lora.r=8"], "model 'tiny' is trained in full"),
    ],
)
def test_bad_settings_are_refused_clearly(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, overrides)


def test_unreadable_config_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(str(tmp_path / "missing.yaml"), [])
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(str(tmp_path / "list.yaml"), [])


def test_cli_reports_config_errors(capsys):
    assert main(["train", "stpes=3"]) == 2
    assert "did you mean 'steps'" in capsys.readouterr().err


# -- batches ----------------------------------------------------------------------------


def test_batches_cover_each_epoch_and_repeat_on_resume():
    problems = load_problems("toy")
    first_epoch = [p.name for s in range(3) for p in problems_for_step(problems, s, 5, seed=0)]
    assert sorted(first_epoch) == sorted(p.name for p in problems)  # 15 problems, 3 steps of 5
    assert problems_for_step(problems, 7, 5, seed=0) == problems_for_step(problems, 7, 5, seed=0)
    assert problems_for_step(problems, 0, 5, seed=0) != problems_for_step(problems, 0, 5, seed=1)


def test_problem_files_and_errors(tmp_path):
    with pytest.raises(ProblemSetError, match="unknown problem set"):
        load_problems(str(tmp_path / "none.jsonl"))
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ProblemSetError, match="empty"):
        load_problems(str(tmp_path / "empty.jsonl"))
    row = {"name": "t", "formal_statement": "theorem t : 1 = 1 := by"}
    (tmp_path / "one.jsonl").write_text(json.dumps(row) + "\n")
    assert [p.name for p in load_problems(str(tmp_path / "one.jsonl"))] == ["t"]


# -- checkpoints ------------------------------------------------------------------------


def test_checkpoint_round_trip(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from leangym.agents.generation import HFGenerator
    from leangym.agents.grpo import GRPOTrainer, RolloutBatch, update_policy
    from leangym.agents.tiny import build_tiny

    model, tokenizer = build_tiny(["theorem t (n : Nat) : n + 0 = n := by\n  "], seed=0)
    cfg = GRPOConfig(lr=1e-4, beta=0.0)
    trainer = GRPOTrainer(model, tokenizer, HFGenerator(model, tokenizer), None, cfg, SamplingConfig())  # type: ignore[arg-type]
    prompt = tokenizer("theorem t (n : Nat) : n + 0 = n := by\n  ")["input_ids"]
    batch = RolloutBatch.build([prompt, prompt], [[5, 2], [6, 2]], [1.0, -1.0], tokenizer.pad_token_id)
    update_policy(model, trainer.optimizer, batch, cfg, ref_logps=None, max_new_tokens=4)  # Adam state exists
    save_checkpoint(trainer, tmp_path, step=3)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    update_policy(model, trainer.optimizer, batch, cfg, ref_logps=None, max_new_tokens=4)  # move on

    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "checkpoint" / "model")
    assert all(torch.equal(saved[k], v) for k, v in loaded.state_dict().items())
    fresh = GRPOTrainer(loaded, tokenizer, HFGenerator(loaded, tokenizer), None, cfg, SamplingConfig())  # type: ignore[arg-type]
    assert restore_checkpoint(fresh, tmp_path / "checkpoint") == 3
    assert fresh.steps_done == 3  # the lr warm-up goes on where it stopped
    state = fresh.optimizer.state_dict()["state"]
    assert state and all(int(s["step"]) == 1 for s in state.values())  # Adam's moments came back
    save_checkpoint(fresh, tmp_path, step=4)  # replaces the previous one atomically
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_reward_curve_png(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    assert plot_rewards(metrics, tmp_path / "c.png") is None
    metrics.write_text(
        "".join(json.dumps({"step": i, "reward_mean": i / 4, "pass_rate": 0.5}) + "\n" for i in range(4))
    )
    png = plot_rewards(metrics, tmp_path / "c.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with metrics.open("a") as f:  # a held-out row of its own (step 0) and one beside a step's metrics
        f.write(json.dumps({"step": 0, "eval_pass@1": 0.1}) + "\n")
        f.write(json.dumps({"step": 4, "reward_mean": 1.0, "pass_rate": 1.0, "eval_pass@1": 0.4}) + "\n")
    assert plot_rewards(metrics, tmp_path / "d.png", held_out="core:valid") is not None


# -- short real runs --------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_verifier(lean):
    """Make the session's runtime the one `train` finds through `get_verifier("embedded")`."""
    from leangym.rewards import get_verifier

    return get_verifier(lean)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.lean
def test_train_resume_and_refuse_to_overwrite(shared_verifier, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--config", str(DEMO), "steps=2", "save_every=1", f"output_dir={out}", "overwrite=false"]
    evals = ["eval_problems=toy", "eval_every=2", "eval_samples=2"]  # the toy set again: the mechanism, not held out
    assert main(args + evals) == 0
    printed = capsys.readouterr().out
    assert "generation: transformers" in printed and "step   2/2  reward" in printed
    assert "15 of the 15 eval problems are training problems too" in printed
    assert "held-out toy after step 0: pass@1" in printed
    assert [r["step"] for r in _rows(out)] == [0, 1, 2]
    for key in ("reward_mean", "pass_rate", "zero_variance_frac", "kl", "loss", "tokens_per_s", "verify_s"):
        assert key in _rows(out)[1]
    scored = [r for r in _rows(out) if "eval_pass@1" in r]
    assert [r["step"] for r in scored] == [0, 2]  # before training, then every eval_every steps
    assert all(0 <= r["eval_pass@1"] <= r["eval_pass@2"] <= 1 for r in scored)
    assert (out / "reward_curve.png").is_file() and (out / "config.yaml").is_file()
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 * 15 * 8 and {s["verdict"] for s in samples} <= {"proved", "rejected"}

    assert main(args) == 2  # the run is there: not overwritten by accident
    assert "--resume" in capsys.readouterr().err

    assert main([*args[:3], "steps=3", *args[4:], *evals, "--resume"]) == 0
    assert "resuming after step 2" in capsys.readouterr().out
    assert [r["step"] for r in _rows(out)] == [0, 1, 2, 3]  # the curve is kept, and goes on
    assert [r["step"] for r in _rows(out) if "eval_pass@1" in r] == [0, 2, 3]  # and after the last step


@pytest.mark.lean
def test_ctrl_c_saves_a_checkpoint(shared_verifier, tmp_path, monkeypatch, capsys):
    from leangym.agents import grpo

    real_step = grpo.GRPOTrainer.step
    calls = []

    def step_then_interrupt(self, problems, seed=None):
        calls.append(seed)
        if len(calls) == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread
        return real_step(self, problems, seed)

    monkeypatch.setattr(grpo.GRPOTrainer, "step", step_then_interrupt)
    out = tmp_path / "run"
    assert main(["train", "--config", str(DEMO), "steps=5", f"output_dir={out}"]) == 130
    assert "interrupted after step 1" in capsys.readouterr().out
    assert (out / "checkpoint" / "trainer_state.pt").is_file()
    import torch

    assert torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=True)["step"] == 1


def test_config_defaults_are_documented():
    text = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text(encoding="utf-8")
    missing = [k for k in TrainConfig.field_names() if f"`{k}`" not in text]
    assert not missing, f"docs/training.md does not describe {missing}"


@pytest.mark.lean
def test_lora_run_and_resume(shared_verifier, tmp_path):
    pytest.importorskip("peft", reason="the [lora] extra (peft) is not installed")
    import torch

    from leangym.agents.prompts import render_prompt
    from leangym.agents.tiny import build_tiny
    from leangym.agents.train import train

    problems = load_problems("toy")
    model, tokenizer = build_tiny([render_prompt(p, "plain") for p in problems], seed=0)
    base = tmp_path / "base"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    settings = load_config(
        str(DEMO),
        [
            f"model={base}",
            "lora={r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj]}",
            "steps=2",
            f"output_dir={tmp_path / 'run'}",
            "grpo.lr=1e-3",
        ],
    )
    train(settings, echo=lambda _: None)
    adapter = tmp_path / "run" / "checkpoint" / "model"
    assert (adapter / "adapter_config.json").is_file() and not (adapter / "model.safetensors").exists()
    rows = _rows(tmp_path / "run")
    assert len(rows) == 2 and all(r["kl"] is None or r["kl"] >= 0 for r in rows)  # reference: adapter off

    train(dataclasses.replace(settings, steps=3), resume=True, echo=lambda _: None)
    assert [r["step"] for r in _rows(tmp_path / "run")] == [1, 2, 3]
    assert torch.load(adapter.parent / "trainer_state.pt", weights_only=True)["step"] == 3
