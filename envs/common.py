"""What the environments share: their problems and their hold on the verifier (`EnvProblems`), the
base of the two single environments (`LeanEnv`), observation limits."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym
from gymnasium import spaces

from leangym.envs.problems import load_problems
from leangym.lean_project.runtime import LeanRuntime
from leangym.rewards.problem import Problem

if TYPE_CHECKING:
    from leangym.rewards.policy import Policy
    from leangym.rewards.verifier import BaseVerifier

ProblemsArg = str | os.PathLike[str] | Sequence[Problem]
RENDER_MODES = ["ansi"]  # both envs render their state as text


def check_fits(problems: Sequence[Problem], space: spaces.Dict, fields: Sequence[str]) -> None:
    """Refuse problems whose text is longer than the observation space allows (a clear error, not a cut)."""
    for p in problems:
        for field in fields:
            limit, size = space[field].max_length, len(getattr(p, field))  # type: ignore[attr-defined]
            if size > limit:
                raise ValueError(f"problem {p.name!r}: `{field}` has {size} characters (limit {limit})")


def check_render_mode(render_mode: str | None) -> str | None:
    """The render mode, refused at construction when it is not one the env has."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be None or 'ansi', not {render_mode!r}")
    return render_mode


class EnvProblems:
    """An env's problem set and its verifier: loaded and checked to fit the observations at
    construction, one problem per episode (`pick`). All three environments keep one.

    The verifier is the given one (the caller's to close), or the shared one from
    `rewards.get_verifier`, one per (runtime, policy) in the process, on the runtime name's one
    shared runtime: that is what lets the N episodes of a vector env go to Lean in one batch, on
    warm Lean processes. The env holds that runtime (`lean_project/shared.py`) until `release`
    (and gives it back at once if the problems cannot be loaded); the last hold released ends its
    Lean processes, unless the trainer or another long-lived user pinned it.
    """

    def __init__(
        self,
        problems: ProblemsArg,
        runtime: LeanRuntime | str,
        policy: Policy | Mapping[str, Any] | None,
        verifier: BaseVerifier | None,
        observation_space: spaces.Dict,
        fields: Sequence[str],
    ):
        self.held = verifier is None  # the shared verifier's runtime, held until `release`
        if verifier is None:
            from leangym.rewards import Policy, get_verifier

            if isinstance(policy, Mapping):
                policy = Policy(**policy)
            verifier = get_verifier(runtime=runtime, policy=policy, hold=True)
        self.verifier = verifier
        try:
            self.problems = load_problems(problems, runtime=verifier.runtime)
            check_fits(self.problems, observation_space, fields)
        except Exception:
            self.release()
            raise
        self._by_name = {p.name: p for p in self.problems}

    def pick(self, name: Any, rng: Any) -> Problem:
        """`options={"problem": name}` when given, else one drawn with the env's seeded generator."""
        if name is None:
            return self.problems[int(rng.integers(len(self.problems)))]
        if name not in self._by_name:
            some = ", ".join(list(self._by_name)[:5])
            raise KeyError(f"no problem named {name!r} in this set ({len(self._by_name)} problems: {some}, …)")
        return self._by_name[name]

    def release(self) -> None:
        """Let go of the shared verifier (idempotent): the last hold on its runtime ends its Lean processes."""
        if self.held:
            self.held = False
            self.verifier.release()


class LeanEnv(gym.Env[dict[str, str], str]):
    """What `LeanProof-v0` and `LeanTactic-v0` are both made of: a problem set and a verifier
    (`EnvProblems`), text observations, `ansi` rendering, and a `close` that lets go of the
    shared verifier (and so of the runtime a default tactic backend uses)."""

    metadata = {"render_modes": RENDER_MODES, "render_fps": 1}  # noqa: RUF012 - Gymnasium's convention (fps: for check_env)

    def __init__(
        self,
        observation_space: spaces.Dict,
        fields: Sequence[str],  # the problem's fields it shows (each must fit its space)
        problems: ProblemsArg,
        runtime: LeanRuntime | str,
        policy: Policy | Mapping[str, Any] | None,
        verifier: BaseVerifier | None,
        render_mode: str | None,
    ) -> None:
        self.render_mode = check_render_mode(render_mode)
        self.observation_space = observation_space
        self._set = EnvProblems(problems, runtime, policy, verifier, observation_space, fields)
        self.problems, self.verifier = self._set.problems, self._set.verifier
        self.problem: Problem | None = None

    def _next_problem(self, options: dict[str, Any] | None) -> Problem:
        """The episode's problem: `options={"problem": name}` when given, else one drawn with the seeded generator."""
        self.problem = self._set.pick((options or {}).get("problem"), self.np_random)
        return self.problem

    def close(self) -> None:
        """Let go of the shared verifier: the last hold on its runtime ends its Lean processes."""
        self._set.release()
