"""`leangym/LeanProof-v0` with the real embedded Lean: registration, spaces, rewards, vector batching, lifetimes.

Lean runs are few and counted: each vector step below sends its proofs in one batch
(asserted on `lean_batches`), and `check_env` takes three more (its random proofs).
Submissions that the verifier refuses before Lean (`sorry`, `native_decide`, an extra
axiom) cost no run, which is what lets the async test run without starting Lean; the sync
vector env's proofs are the vector env's, answered by the verifier's cache. The lifetime
test starts one one-shot Lean process of its own.
"""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

import leangym.envs
from leangym.envs.proof_env import LeanProofEnv
from leangym.envs.spaces import LeanText
from leangym.envs.vector import LeanProofVectorEnv
from leangym.lean_project import LeanRuntime, shared
from leangym.rewards import Problem, get_verifier

HEADER = "set_option autoImplicit false\n"
ADD = Problem(
    "lg_env_add_comm",
    "theorem lg_env_add_comm (a b : Nat) : a + b = b + a := by",
    HEADER,
    informal_statement="/-- Addition of natural numbers commutes. -/\n",
)
MOD = Problem("lg_env_mod_two", "theorem lg_env_mod_two (n : Nat) (h : n % 4 = 3) : n % 2 = 1 := by", HEADER)
PROBLEMS = [ADD, MOD]

WHOLE_FILE = f"```lean\n{HEADER}{ADD.formal_statement}\n  exact Nat.add_comm a b\n```"
AXIOM_FILE = f"{HEADER}axiom cheat : False\n{ADD.formal_statement}\n  exact cheat.elim"
# What each env of the GRPO-style group submits for ADD: right twice (body, whole file), wrong, hacked.
GROUP = ("\n  omega", WHOLE_FILE, "\n  rfl", "\n  sorry")


@pytest.fixture(scope="module", autouse=True)
def session_lean(lean: LeanRuntime) -> LeanRuntime:
    """Make the session's runtime the one `runtime="embedded"` envs share (`rewards.get_verifier`)."""
    get_verifier(lean)
    return lean


# -- registration and spaces (no Lean) ----------------------------------------------------


def test_registration_registers_both_ids_once() -> None:
    leangym.envs.register_envs()  # idempotent: a second registration changes nothing
    assert set(leangym.envs.ENV_IDS) <= set(gym.registry)
    assert gym.spec("leangym/LeanProof-v0").vector_entry_point == "leangym.envs.vector:LeanProofVectorEnv"


def test_make_from_a_fresh_interpreter_without_importing_leangym(tmp_path) -> None:
    rows = tmp_path / "set.jsonl"
    rows.write_text(json.dumps({"name": ADD.name, "formal_statement": ADD.formal_statement, "header": HEADER}) + "\n")
    code = (
        "import sys, gymnasium as gym\n"
        f"env = gym.make('leangym.envs:leangym/LeanProof-v0', problems={str(rows)!r})\n"
        "obs, info = env.reset(seed=0)\n"
        "print(info['problem'], 'torch' in sys.modules, 'leangym.envs.tactic_env' in sys.modules)\n"
        "env.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == [ADD.name, "False", "False"]  # no torch, and only what was asked for


def test_lean_text_holds_unicode_and_samples_short_strings() -> None:
    space = LeanText(100, seed=0)
    assert space.contains("∀ n : ℕ, ⟨n, rfl⟩ ⊢ x⁻¹")
    assert not space.contains("x" * 101) and not space.contains(b"bytes")
    samples = [space.sample() for _ in range(20)]
    assert all(space.contains(s) and len(s) <= space.sample_length for s in samples)


def test_vector_env_has_gymnasiums_vector_attributes() -> None:
    envs = gym.make_vec("leangym/LeanProof-v0", num_envs=3, problems=PROBLEMS)
    assert isinstance(envs, LeanProofVectorEnv) and envs.num_envs == 3
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert isinstance(envs.single_observation_space, gym.spaces.Dict)
    assert isinstance(envs.single_action_space, LeanText)
    assert envs.observation_space == batch_space(envs.single_observation_space, 3)
    assert envs.action_space == batch_space(envs.single_action_space, 3)
    for twin in (pickle.loads(pickle.dumps(envs.action_space)), copy.deepcopy(envs.action_space)):
        assert twin == envs.action_space
    with pytest.raises(gym.error.ResetNeeded):
        envs.step(("\n  omega",) * 3)
    envs.close()


def test_reset_is_seeded_and_takes_a_problem_by_name() -> None:
    a, b = LeanProofEnv(PROBLEMS), LeanProofEnv(PROBLEMS)
    picks = [a.reset(seed=s)[1]["problem"] for s in range(8)]
    assert picks == [b.reset(seed=s)[1]["problem"] for s in range(8)]
    assert set(picks) == {ADD.name, MOD.name}
    obs, _ = a.reset(options={"problem": ADD.name})
    assert obs == {
        "header": HEADER,
        "formal_statement": ADD.formal_statement,
        "informal_statement": ADD.informal_statement,
    }
    assert a.observation_space.contains(obs)
    with pytest.raises(KeyError, match="no problem named"):
        a.reset(options={"problem": "nope"})
    with pytest.raises(gym.error.ResetNeeded):
        LeanProofEnv(PROBLEMS).step("\n  omega")
    a.close(), b.close()


# -- rewards through a vector env: one Lean batch per step -------------------------------------


def group_step(mode: str) -> dict:
    """Four envs on one problem (a GRPO group), one step, vectorised by `mode`: what came back."""
    envs = gym.make_vec("leangym/LeanProof-v0", num_envs=4, vectorization_mode=mode, problems=PROBLEMS)
    envs.reset(seed=0, options={"problem": ADD.name})
    obs, rewards, terminated, truncated, info = envs.step(GROUP)
    envs.close()
    return {"obs": obs, "rewards": rewards, "terminated": terminated, "truncated": truncated, "info": info}


@pytest.fixture(scope="module")
def grpo_step(lean: LeanRuntime) -> dict:
    """The group through `LeanProofVectorEnv` (the vector entry point), with what it cost."""
    runs = lean.lean_batches
    out = group_step("vector_entry_point")
    out["runs"] = lean.lean_batches - runs
    return out


def test_vector_step_sends_the_group_to_lean_in_one_run(grpo_step: dict) -> None:
    assert grpo_step["runs"] == 1


def test_sync_vector_env_gives_the_same_step(grpo_step: dict) -> None:
    """Gymnasium's `SyncVectorEnv` over `LeanProofEnv` (one verify per sub-env) agrees with the batch."""
    sync = group_step("sync")
    assert sync["obs"] == grpo_step["obs"]
    for key in ("rewards", "terminated", "truncated"):
        assert sync[key].tolist() == grpo_step[key].tolist()
    for key in ("problem", "verdict", "reward", "reasons", "messages"):
        assert sync["info"][key].tolist() == grpo_step["info"][key].tolist()


def test_right_proofs_get_1_and_wrong_or_hacked_ones_0(grpo_step: dict) -> None:
    assert grpo_step["rewards"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert grpo_step["info"]["verdict"].tolist() == ["proved", "proved", "rejected", "rejected"]
    assert "lean_error" in grpo_step["info"]["reasons"][2]
    assert grpo_step["info"]["reasons"][3] == ["sorry"]
    assert grpo_step["terminated"].all() and not grpo_step["truncated"].any()


def test_info_holds_the_full_verdict(grpo_step: dict) -> None:
    info = grpo_step["info"]
    assert {"problem", "verdict", "reward", "reasons", "messages", "seconds"} <= set(info)
    wrong = info["messages"][2]
    assert wrong and wrong[0]["severity"] == "error" and wrong[0]["pos"]["line"] >= 1
    assert all(s >= 0 for s in info["seconds"])


def test_vector_entry_point_batches_and_autoresets(lean: LeanRuntime) -> None:
    envs = gym.make_vec("leangym/LeanProof-v0", num_envs=4, problems=PROBLEMS, render_mode="ansi")
    assert isinstance(envs, LeanProofVectorEnv)
    obs, _ = envs.reset(seed=3)
    assert envs.observation_space.contains(obs)
    right = {ADD.name: "\n  exact Nat.add_comm a b", MOD.name: "\n  omega"}
    hacks = {ADD.name: AXIOM_FILE, MOD.name: "\n  native_decide"}
    names = [s.split()[1] for s in obs["formal_statement"]]
    actions = tuple((right if i % 2 else hacks)[n] for i, n in enumerate(names))
    assert envs.action_space.contains(actions)
    runs = lean.lean_batches
    _, rewards, terminated, _, info = envs.step(actions)
    assert lean.lean_batches - runs == 1  # the two right proofs, together; the hacks never reach Lean
    assert rewards.tolist() == [0.0, 1.0, 0.0, 1.0]
    hack_reasons = {ADD.name: "extra_declarations", MOD.name: "forbidden_construct:native_decide"}
    assert all(hack_reasons[names[i]] in info["reasons"][i] for i in (0, 2))
    assert "verdict: proved" in envs.render()[1]
    runs = lean.lean_batches
    obs, rewards, terminated, _, info = envs.step(actions)  # NEXT_STEP autoreset: every env resets, no Lean
    assert lean.lean_batches == runs and not terminated.any() and not rewards.any()
    assert envs.observation_space.contains(obs) and list(info["problem"]) == [
        s.split()[1] for s in obs["formal_statement"]
    ]
    envs.close()


def test_same_step_autoreset_returns_the_verdicts_and_the_next_problems() -> None:
    envs = gym.make_vec("leangym/LeanProof-v0", num_envs=2, problems=PROBLEMS, autoreset_mode=AutoresetMode.SAME_STEP)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    envs.reset(seed=1, options={"problem": ADD.name})
    obs, rewards, terminated, _, info = envs.step((GROUP[0], GROUP[3]))
    assert rewards.tolist() == [1.0, 0.0] and terminated.all()
    assert info["final_info"]["verdict"].tolist() == ["proved", "rejected"]
    assert [o["formal_statement"] for o in info["final_obs"]] == [ADD.formal_statement] * 2
    assert list(info["problem"]) == [s.split()[1] for s in obs["formal_statement"]]
    _, rewards, _, _, _ = envs.step(("\n  sorry", "\n  sorry"))  # the new episodes take proofs at once
    assert rewards.tolist() == [0.0, 0.0]
    envs.close()


def test_async_vector_env_steps_in_worker_processes(tmp_path) -> None:
    rows = tmp_path / "set.jsonl"
    rows.write_text(
        "".join(json.dumps({"name": p.name, "formal_statement": p.formal_statement}) + "\n" for p in PROBLEMS)
    )
    envs = gym.make_vec(
        "leangym/LeanProof-v0",
        num_envs=2,
        vectorization_mode="async",
        vector_kwargs={"context": "spawn"},
        problems=str(rows),
    )
    envs.reset(seed=0)
    _, rewards, terminated, _, info = envs.step(("\n  sorry", "\n  decide +native"))
    assert rewards.tolist() == [0.0, 0.0] and terminated.all()
    assert info["reasons"][0] == ["sorry"] and info["reasons"][1] == ["forbidden_construct:native_decide"]
    envs.close()


def test_check_env_passes() -> None:
    env = gym.make("leangym/LeanProof-v0", problems=PROBLEMS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []
    env.close()


def test_disabled_autoreset_waits_for_a_masked_reset() -> None:
    envs = gym.make_vec("leangym/LeanProof-v0", num_envs=2, problems=PROBLEMS, autoreset_mode=AutoresetMode.DISABLED)
    envs.reset(seed=0, options={"problem": MOD.name})
    _, rewards, terminated, _, info = envs.step(("\n  sorry", "\n  native_decide"))  # refused before Lean
    assert rewards.tolist() == [0.0, 0.0] and terminated.all() and info["reasons"][0] == ["sorry"]
    with pytest.raises(gym.error.ResetNeeded):
        envs.step(("\n  sorry", "\n  sorry"))
    obs, info = envs.reset(options={"reset_mask": np.array([False, True]), "problem": ADD.name})
    assert info["_problem"].tolist() == [False, True] and obs["formal_statement"][1] == ADD.formal_statement
    with pytest.raises(gym.error.ResetNeeded):  # the first episode is still over
        envs.step(("\n  sorry", "\n  sorry"))
    envs.close()


def test_closing_every_env_leaves_the_runtime_to_a_user_that_still_holds_it(monkeypatch) -> None:
    """The shared-runtime rule (lean_project/shared.py) on runtimes the registry makes itself:
    the last env to close ends Lean nobody else uses, and leaves Lean the trainer still uses."""
    monkeypatch.setenv("LEANGYM_EMBEDDED_MODE", "oneshot")  # the check below: one Lean process, started for it
    alone = shared.RuntimeSlot("embedded")
    monkeypatch.setitem(shared._SHARED, "embedded", alone)
    envs, env = gym.make_vec("leangym/LeanProof-v0", num_envs=2, problems=PROBLEMS), gym.make("leangym/LeanProof-v0")
    runtime = alone.get()  # the one the envs' verifier made
    assert alone.holds == 2
    envs.close(), env.close()
    assert not alone.wraps(runtime) and alone.holds == 0  # closed and let go: the next `get` makes another

    kept = shared.RuntimeSlot("embedded")
    monkeypatch.setitem(shared._SHARED, "embedded", kept)
    trainer = get_verifier("embedded")  # what agents/train.py and agents/evaluate.py do (`make_verifier`)
    runtime = trainer.runtime
    envs = gym.make_vec("leangym/LeanProof-v0", num_envs=2, problems=PROBLEMS)
    assert envs.unwrapped.verifier is trainer
    envs.close()
    assert kept.wraps(runtime) and trainer.runtime is runtime
    [verdict] = trainer.verify_batch([(MOD, "\n  omega")])
    assert verdict.proved and runtime.lean_batches == 1
    kept.close()
