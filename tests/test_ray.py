"""Verification on a local Ray cluster started by this module (`ray.init(num_cpus=2)`), real embedded Lean.

Two actors, each a `Verifier` with its own Lean session: a mixed batch gives the verdicts the
local verifier gives, in order; a repeated group is answered from the actors' caches; killing
an actor mid-batch loses no verdict (its shard runs again on the other actor, and it is
replaced).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import gymnasium as gym
import pytest

import leangym.envs  # noqa: F401 - registers the environments
from leangym.lean_project import LeanRuntime
from leangym.rewards import Policy, Problem, get_verifier

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")

from conftest import FORGED_ANSWER  # noqa: E402

from leangym.rewards.distributed import RayVerifier, make_verifier  # noqa: E402

pytestmark = pytest.mark.lean

ADD = Problem("add_comm_r", "theorem add_comm_r (a b : Nat) : a + b = b + a := by")
FALSE = Problem("two_five", "theorem two_five : (2 : Nat) + 2 = 5 := by")
MIXED = [
    (ADD, "  omega"),
    (ADD, "  sorry"),
    (FALSE, "  decide"),
    (ADD, "  exact Nat.add_comm a b"),
    (ADD, "  native_decide"),
    (FALSE, "  exact?"),
    (ADD, "  simp [Nat.add_comm]"),
    (ADD, "theorem add_comm_r (a b : Nat) : a + b = b + a := by\n  omega"),
    (FALSE, FORGED_ANSWER),
    (FALSE, "  omega"),
]
MANY = [
    (Problem(f"r{i}", f"theorem r{i} (a b : Nat) (h : a < b) : a + {i} < b + {i} := by"), "  omega") for i in range(40)
]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    verifier = RayVerifier("local", actors=2, shard_size=4)
    verifier.prewarm()
    yield verifier
    verifier.close()
    ray.shutdown()


def test_same_verdicts_as_the_local_verifier_in_order(cluster: RayVerifier, lean: LeanRuntime) -> None:
    remote = cluster.verify_batch(MIXED)
    local = get_verifier(lean, Policy()).verify_batch(MIXED)
    assert [(v.outcome, v.reasons) for v in remote] == [(v.outcome, v.reasons) for v in local]
    assert [v.outcome for v in remote][:3] == ["proved", "rejected", "rejected"]
    assert [v.outcome for v in remote][-2:] == ["rejected", "rejected"]  # the forged answer, then a false proof
    assert len(cluster.actor_pool.stats.per_actor) == 2  # both actors took a share


def test_a_repeated_group_is_served_from_the_actors_caches(cluster: RayVerifier) -> None:
    first = cluster.verify_batch(MIXED)
    again = cluster.verify_batch(MIXED)  # every proof goes to the actor that has its verdict
    assert all(v.cached for v in again)
    assert [(v.outcome, v.reasons) for v in again] == [(v.outcome, v.reasons) for v in first]


def test_killing_an_actor_mid_batch_loses_no_verdict(cluster: RayVerifier) -> None:
    victim = cluster.actor_pool.describe([])[2][0]

    def kill_soon() -> None:
        time.sleep(1.0)
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    verdicts = cluster.verify_batch(MANY)
    killer.join()
    assert [v.outcome for v in verdicts] == ["proved"] * len(MANY)
    assert cluster.actor_pool.stats.actors_replaced >= 1 and cluster.actor_pool.stats.retried_shards >= 1
    assert victim not in cluster.actor_pool.describe([])[2]  # replaced by a fresh actor


def test_the_runtime_checks_sources_on_the_actors(cluster: RayVerifier) -> None:
    ok, bad = cluster.runtime.check(["theorem t : 1 + 1 = 2 := rfl", "theorem u : 1 = 2 := rfl"])
    assert ok.error_free and bad.status == "ok" and not bad.error_free
    assert cluster.runtime.can_import("Std") and not cluster.runtime.can_import("Mathlib")


def test_the_tactic_env_runs_over_ray(cluster: RayVerifier) -> None:
    """A Ray runtime keeps no proof states: tactics are re-elaborated on the actors, and the final
    verdict is the actors' (judged) one."""
    problem = Problem("ray_tac", "theorem ray_tac (a b : Nat) (h : a < b) : a + 2 < b + 2 := by")
    env = gym.make("leangym/LeanTactic-v0", problems=[problem], verifier=cluster)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("omega")
    assert terminated and reward == 1.0, info
    env.close()


def test_without_ray_verification_stays_local(monkeypatch: pytest.MonkeyPatch, capsys, lean: LeanRuntime) -> None:
    import leangym.rewards.distributed as distributed

    def no_ray():
        raise distributed.RayUnavailable("Ray is not installed (pip install 'lean-gym[ray]')")

    monkeypatch.setattr(distributed, "_ray", no_ray)
    verifier = make_verifier("auto", "embedded")
    assert verifier is get_verifier("embedded")
    assert "verifying on this machine instead" in capsys.readouterr().err
