"""`LeanProof-v0` as a vector env: N whole-proof episodes, their N proofs checked in one Lean batch a step.

    envs = gym.make_vec("leangym/LeanProof-v0", num_envs=4, problems="core:test")
    obs, info = envs.reset(seed=0, options={"problem": "core_nt_mod3_square"})   # a GRPO group
    obs, rewards, terminated, truncated, info = envs.step(proofs)   # one verify_batch, one Lean run

A Lean run costs seconds of start-up and milliseconds a proof, so the N proofs of a step must
reach Lean together. Gymnasium's `SyncVectorEnv` steps its sub-envs one after another, which
means one Lean run each; so, like Gymnasium's own vectorised environments (`CartPoleVectorEnv`),
`LeanProofVectorEnv` holds all N episodes itself and sends the step's proofs to the verifier
in one `verify_batch`. It is the id's `vector_entry_point`: `gym.make_vec` uses it unless told
`vectorization_mode="sync"` or `"async"` (Gymnasium's classes over `LeanProofEnv`: same
verdicts, one Lean run per sub-env).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from leangym.envs.common import RENDER_MODES, EnvProblems, ProblemsArg, check_render_mode
from leangym.envs.proof_env import (
    OBSERVATION_LIMITS,
    check_action,
    observation,
    render_text,
    single_spaces,
    step_info,
)
from leangym.lean_project.runtime import LeanRuntime
from leangym.rewards.policy import Policy
from leangym.rewards.problem import Problem
from leangym.rewards.verdict import Verdict
from leangym.rewards.verifier import BaseVerifier

Observations = dict[str, tuple[str, ...]]


class LeanProofVectorEnv(VectorEnv[Observations, Sequence[str], np.ndarray]):
    """N `LeanProof-v0` episodes whose proofs go to Lean in one batch per step.

    Spaces, rewards and verdicts are `LeanProofEnv`'s, batched the Gymnasium way: the
    observation is a dict of N-tuples of text, the action N proofs, `info` a dict of arrays
    (with Gymnasium's `_key` masks). `reset(options={"problem": name})` gives every episode
    that problem (a GRPO group); else each is drawn with the env's seeded generator.

    Every step ends every episode that took a proof. `autoreset_mode` is Gymnasium's:
    `NEXT_STEP` (the default) resets them at the next step (reward 0, no Lean); `SAME_STEP`
    resets them at once (the verdict in `info["final_info"]`, the next problem in `obs`), which
    suits GRPO; `DISABLED` leaves it to `reset(options={"reset_mask": mask})`.

    The other arguments are `LeanProofEnv`'s; the N episodes share one verifier hold.
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": 1, "autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(
        self,
        num_envs: int = 1,
        problems: ProblemsArg = "core:test",
        runtime: LeanRuntime | str = "embedded",
        policy: Policy | Mapping[str, Any] | None = None,
        *,
        verifier: BaseVerifier | None = None,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, not {num_envs}")
        self.num_envs = num_envs
        self.render_mode = check_render_mode(render_mode)
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.single_observation_space, self.single_action_space = single_spaces()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        space, fields = self.single_observation_space, list(OBSERVATION_LIMITS)
        self._set = EnvProblems(problems, runtime, policy, verifier, space, fields)
        self.problems, self.verifier = self._set.problems, self._set.verifier
        self.episodes: list[Problem | None] = [None] * num_envs  # each env's problem
        self.verdicts: list[Verdict | None] = [None] * num_envs  # each env's last verdict
        self.done = np.zeros(num_envs, dtype=np.bool_)  # the episode is over: reset next

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observations, dict[str, Any]]:
        """Start new episodes: all of them, or those in `options["reset_mask"]`; `options["problem"]` names one."""
        super().reset(seed=seed)
        options = options or {}
        mask = np.asarray(options.get("reset_mask", np.ones(self.num_envs, dtype=np.bool_)), dtype=np.bool_)
        if mask.shape != (self.num_envs,):
            raise ValueError(f"reset_mask must be {self.num_envs} booleans, not shape {mask.shape}")
        infos: dict[str, Any] = {}
        for i in np.flatnonzero(mask):
            infos = self._add_info(infos, self._reset_one(i, options.get("problem")), i)
        return self._observations(), infos

    def step(self, actions: Sequence[str]) -> tuple[Observations, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Verify the proofs of the running episodes in one batch; autoreset the others (see the class)."""
        if None in self.episodes:
            raise gym.error.ResetNeeded("call reset() before step()")
        if isinstance(actions, str) or len(actions) != self.num_envs:
            raise ValueError(f"step takes {self.num_envs} proofs, one per env")
        if self.autoreset_mode == AutoresetMode.DISABLED and self.done.any():
            raise gym.error.ResetNeeded(f"episodes {np.flatnonzero(self.done).tolist()} are over: reset them")
        resetting = self.done.copy() if self.autoreset_mode == AutoresetMode.NEXT_STEP else np.zeros_like(self.done)
        stepping = np.flatnonzero(~resetting)
        for i in stepping:
            check_action(actions[i])
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=np.bool_)
        infos: dict[str, Any] = {}
        if stepping.size:
            batch = [(self.episodes[i], actions[i]) for i in stepping]
            for i, verdict in zip(stepping, self.verifier.verify_batch(batch), strict=True):
                problem = self.episodes[i]
                assert problem is not None
                self.verdicts[i], rewards[i], terminated[i] = verdict, verdict.reward, True
                info = step_info(problem, verdict)
                if self.autoreset_mode == AutoresetMode.SAME_STEP:
                    infos = self._add_info(infos, {"final_obs": observation(problem), "final_info": info}, i)
                    info = self._reset_one(i, None)
                infos = self._add_info(infos, info, i)
        for i in np.flatnonzero(resetting):
            infos = self._add_info(infos, self._reset_one(i, None), i)
        self.done = terminated.copy() if self.autoreset_mode != AutoresetMode.SAME_STEP else np.zeros_like(terminated)
        return self._observations(), rewards, terminated, np.zeros_like(terminated), infos

    def render(self) -> tuple[str, ...] | None:
        """`ansi`: each env's problem and last verdict."""
        if self.render_mode != "ansi":
            return None
        return tuple(render_text(p, v) for p, v in zip(self.episodes, self.verdicts, strict=True))

    def close_extras(self, **kwargs: Any) -> None:
        """Let go of the shared verifier's runtime: its Lean processes end with its last holder."""
        self._set.release()

    def _reset_one(self, i: int, name: str | None) -> dict[str, Any]:
        problem = self._set.pick(name, self.np_random)
        self.episodes[i], self.verdicts[i], self.done[i] = problem, None, False
        return {"problem": problem.name}

    def _observations(self) -> Observations:
        """Each observation key as an N-tuple (a not-yet-reset env, under `reset_mask`, shows empty text)."""
        single = [
            observation(p) if p is not None else dict.fromkeys(self.single_observation_space, "") for p in self.episodes
        ]
        return {key: tuple(o[key] for o in single) for key in self.single_observation_space}
