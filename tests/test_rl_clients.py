"""leangym's reward inside other RL stacks, run for real: TRL's GRPOTrainer, verl's reward calls,
and `leangym train` checkpoints read back by transformers and by `leangym eval`.

The TRL test trains two real `trl.GRPOTrainer` steps on the CPU (a tiny model built here,
answering one of omega / decide / simp / rfl / sorry) with `lean_reward` asking a real
`leangym serve` server, records what TRL handed the reward function, and checks that TRL's
logged rewards are this process's embedded Lean's verdicts on exactly those completions, a
`sorry` getting 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ServerProcess, train_two_trl_steps

from leangym.agents.hf_dataset import problems_dataset
from leangym.agents.tiny import TACTICS, build_tiny
from leangym.cli import main as leangym_main
from leangym.envs.problems import load_problems
from leangym.lean_project import LeanRuntime, SourceResult
from leangym.lean_project.types import InfraError
from leangym.rewards import Policy, Problem, Verifier, compute_score, compute_score_batch, get_verifier
from leangym.rewards.adapters import VerifierUnavailable, completion_text, make_lean_reward

TOY = load_problems("toy")


def test_problem_sets_become_trl_datasets() -> None:
    plain = problems_dataset(TOY[:3])
    assert plain.column_names == ["prompt", "name", "formal_statement", "header", "informal_statement", "split"]
    assert plain[0]["prompt"].endswith(TOY[0].formal_statement + "\n  ")  # the model continues the proof
    chat = problems_dataset(TOY[:3], style="conversational")
    [message] = chat[0]["prompt"]
    assert message["role"] == "user" and TOY[0].formal_statement in message["content"]
    with pytest.raises(ValueError, match="conversational"):
        problems_dataset(TOY[:1], style="fence")  # type: ignore[arg-type]


@pytest.mark.lean
def test_trl_grpo_trainer_logs_the_verifiers_verdicts(lean: LeanRuntime, server: ServerProcess, tmp_path: Path) -> None:
    """TRL's trainer with `lean_reward` pointed at a leangym server (as `LEANGYM_SERVER` would): its rewards
    are the verdicts this process's own Lean gives the same completions."""
    reward = make_lean_reward(runtime=server.url)
    calls: list[tuple[list[Problem], list[str], list[float | None]]] = []

    def lean_reward(completions: list, formal_statement: list[str], name: list[str], **columns: object) -> list:
        out = reward(completions=completions, formal_statement=formal_statement, name=name, **columns)
        problems = [Problem(n, s) for n, s in zip(name, formal_statement, strict=True)]
        calls.append((problems, [completion_text(c) for c in completions], out))
        return out

    dataset = problems_dataset(TOY)
    model, tokenizer = build_tiny(dataset["prompt"], tactics=(*TACTICS, "sorry"))
    trainer = train_two_trl_steps(
        tmp_path, model, tokenizer, dataset, reward_funcs=[lean_reward],
        config_per_device_train_batch_size=16, config_num_generations=8, config_max_completion_length=2,
    )  # fmt: skip

    logged = [row["rewards/lean_reward/mean"] for row in trainer.state.log_history if "rewards/lean_reward/mean" in row]
    assert len(calls) == 2 and len(logged) == 2
    fresh = Verifier(lean, cache_size=0)  # judged again, from scratch
    for (problems, texts, rewards), mean in zip(calls, logged, strict=True):
        assert len(texts) == 16
        verdicts = fresh.verify_batch(list(zip(problems, texts, strict=True)))
        assert rewards == [v.reward for v in verdicts]
        assert mean == pytest.approx(sum(rewards) / len(rewards))  # what TRL logged is what Lean said
    sorries = [r for _, texts, rewards in calls for t, r in zip(texts, rewards, strict=True) if "sorry" in t.split()]
    assert sorries and set(sorries) == {0.0}
    assert any(r == 1.0 for _, _, rewards in calls for r in rewards)


# -- verl: its reward managers call compute_score(data_source=, solution_str=, ground_truth=, extra_info=) --


class _Failing(LeanRuntime):
    """A runtime whose Lean cannot start for the first `failures` calls (fault injection), then `inner`."""

    def __init__(self, inner: LeanRuntime, failures: int, name: str):
        self.inner, self.failures, self.name = inner, failures, name

    @property
    def version(self) -> str:
        return self.inner.version

    def can_import(self, module: str) -> bool:
        return self.inner.can_import(module)

    def check(self, sources, *, timeout=None, export=False) -> list[SourceResult]:  # type: ignore[no-untyped-def]
        if self.failures > 0:
            self.failures -= 1
            return [SourceResult("error", error=InfraError("startup", "injected: Lean did not start"))] * len(sources)
        return self.inner.check(sources, timeout=timeout, export=export)

    def kernel_check(self, items, *, timeout=None):  # type: ignore[no-untyped-def]
        return self.inner.kernel_check(items, timeout=timeout)

    def has_judge(self) -> bool:
        return self.inner.has_judge()


@pytest.mark.lean
def test_verl_reward_calls(lean: LeanRuntime) -> None:
    get_verifier(lean, Policy())
    statement = "theorem two_two : (2 : Nat) + 2 = 4 := by"
    truth = {"formal_statement": statement, "name": "two_two"}
    assert (
        compute_score(data_source="lean", solution_str="  decide", ground_truth=truth, extra_info={"index": 0}) == 1.0
    )
    assert compute_score(data_source="lean", solution_str="  sorry", ground_truth=statement, extra_info=None) == 0.0
    scores = compute_score_batch(
        data_sources=["lean"] * 3,
        solution_strs=["```lean\n  decide\n```", "  rfl", "  exact?"],
        ground_truths=[truth, statement, statement],
        extra_infos=[{"header": ""}, None, {"name": "two_two"}],
    )
    assert scores == [1.0, 1.0, 1.0]

    flaky = _Failing(lean, failures=1, name="flaky-once")
    get_verifier(flaky, Policy())
    assert compute_score_batch(["lean"], ["  decide"], [statement], runtime="flaky-once") == [1.0]  # retried
    broken = _Failing(lean, failures=10**6, name="broken")
    get_verifier(broken, Policy())
    with pytest.raises(VerifierUnavailable, match="startup"):  # never a made-up 0
        compute_score(data_source="lean", solution_str="  decide", ground_truth=statement, runtime="broken")


# -- `leangym train` checkpoints in transformers and in `leangym eval` ------------------------


@pytest.mark.lean
def test_train_checkpoints_load_in_transformers_and_eval(lean: LeanRuntime, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    get_verifier(lean, Policy())
    out = tmp_path / "run"
    config = Path(__file__).resolve().parents[1] / "agents" / "configs" / "demo.yaml"
    assert leangym_main(["train", "--config", str(config), "steps=1", "save_every=1", f"output_dir={out}"]) == 0
    model = AutoModelForCausalLM.from_pretrained(out / "checkpoint" / "model")
    assert model.num_parameters() > 0
    agent = f"hf:{out / 'checkpoint' / 'model'}"
    args = ["eval", "--problems", "toy", "--agent", agent, "-k", "2", "--out", str(tmp_path / "eval")]
    assert leangym_main([*args, "--max-new-tokens", "1"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "eval" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == len(TOY) and all(r["n"] == 2 for r in rows)
    assert {s["verdict"] for r in rows for s in r["samples"]} <= {"proved", "rejected"}
