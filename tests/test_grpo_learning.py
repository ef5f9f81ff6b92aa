"""The honest learning test: GRPO with rewards from the real embedded Lean kernel makes a tiny policy better.

The toy set (envs/data/toy.jsonl) has 15 problems, each closed by exactly one tactic of the
tiny model's vocabulary (omega, decide or simp; rfl closes none). The model starts out
choosing among the tactics uniformly (agents/tiny.py's format prior), so its mean reward is
about 0.25; only the kernel's verdicts can teach it which tactic fits which problem.

Cost: the policy emits one word, so every proof it can produce is one word of its
vocabulary. The module verifies all of them for every problem in ONE batch first (which
also checks the task's premise below); training then finds every verdict in the verifier's
cache, and its run is short and deterministic.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from leangym.agents.config import load_config
from leangym.agents.train import train
from leangym.envs.problems import DATA, load_problems
from leangym.rewards import get_verifier

pytestmark = pytest.mark.lean

DEMO = Path(__file__).resolve().parents[1] / "agents" / "configs" / "demo.yaml"


@pytest.fixture(scope="module")
def toy():
    return load_problems("toy")


@pytest.fixture(scope="module")
def table(lean, toy, tmp_path_factory):
    """Verdicts for every (problem, one-word proof) the tiny policy can emit: one Lean batch."""
    from leangym.agents.prompts import render_prompt
    from leangym.agents.tiny import build_tokenizer

    tokenizer = build_tokenizer([render_prompt(p, "plain") for p in toy])
    words = sorted({tokenizer.decode([i], skip_special_tokens=True) for i in range(len(tokenizer))})
    verifier = get_verifier(lean)  # the shared verifier: `train` below gets this one, cache included
    pairs = [(p, w) for p in toy for w in words]
    verdicts = verifier.verify_batch(pairs)
    return {(p.name, w): v for (p, w), v in zip(pairs, verdicts, strict=True)}


def test_toy_set_premise_each_problem_has_exactly_one_closing_word(toy, table):
    assert all(v.outcome != "error" for v in table.values()), "the verifier could not decide some proofs"
    for p in toy:
        closing = sorted(w for (name, w), v in table.items() if name == p.name and v.proved)
        assert closing == [p.category], p.name
    assert {p.category for p in toy} == {"omega", "decide", "simp"}
    assert len(toy) == sum(1 for _ in (DATA / "toy.jsonl").open(encoding="utf-8"))


def test_grpo_raises_the_mean_reward(table, tmp_path):
    """The demo's own config (agents/configs/demo.yaml), seeded: the reward must rise well above chance."""
    cfg = load_config(str(DEMO), [f"output_dir={tmp_path / 'run'}", "save_every=100"])
    summary = train(cfg, echo=print)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    curve = [r["reward_mean"] for r in rows]
    print("reward per step:", [round(r, 2) for r in curve])
    assert summary["steps"] == cfg.steps == len(curve)
    first, last = statistics.mean(curve[:3]), statistics.mean(curve[-5:])
    assert first < 0.5  # the start: about one tactic in four
    assert last >= first + 0.4, curve
    assert last >= 0.8, curve
    assert all(r["verifier_errors"] == 0 for r in rows)
    # the KL to the reference starts near 0 (the policy starts as the reference) and grows as it learns;
    # once every group is all proved, nothing is left to learn from: no update, no KL measured
    kls = [r["kl"] for r in rows if r["kl"] is not None]
    assert len(kls) >= 5 and all(k >= 0 for k in kls)
    assert kls[0] < 0.05 < max(kls)
    # the trained policy, decoding greedily, now picks the closing tactic for most problems
    from transformers import AutoModelForCausalLM

    from leangym.agents.generation import HFGenerator, SamplingConfig
    from leangym.agents.models import load_tokenizer
    from leangym.agents.prompts import render_prompt

    folder = tmp_path / "run" / "checkpoint" / "model"
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), load_tokenizer(str(folder))
    greedy = SamplingConfig(temperature=0, max_new_tokens=1)
    toy = load_problems("toy")
    picks = [
        g[0].text for g in HFGenerator(model, tokenizer).generate([render_prompt(p, "plain") for p in toy], 1, greedy)
    ]
    right = sum(table[(p.name, pick)].proved for p, pick in zip(toy, picks, strict=True))
    print("greedy picks:", dict(zip([p.name for p in toy], picks, strict=True)), f"{right}/{len(toy)} proved")
    assert right >= 11
