"""What both environments need: their problems, their shared verifier, observation limits."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from gymnasium import spaces

from leangym.lean_project.runtime import LeanRuntime
from leangym.rewards.problem import Problem

ProblemsArg = str | os.PathLike[str] | Sequence[Problem]


def load_problem_list(problems: ProblemsArg, runtime: LeanRuntime) -> list[Problem]:
    """A set name (`core:test`), a JSONL path, or `Problem`s, as a non-empty list with unique names.

    Problems whose imports `runtime` cannot load (miniF2F's Mathlib on the embedded runtime)
    are refused here, before any episode, with the runtime that can.
    """
    from leangym.envs.problems import load_problems, require_runtime

    named = isinstance(problems, str | os.PathLike)
    loaded = load_problems(os.fspath(problems)) if named else list(problems)  # type: ignore[arg-type]
    if not loaded:
        raise ValueError(f"no problems in {problems!r}")
    if not all(isinstance(p, Problem) for p in loaded):
        raise TypeError("problems= takes a set name, a JSONL path, or a list of leangym.rewards.Problem")
    names = [p.name for p in loaded]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"problem names must be unique: {dup!r} appears twice")
    require_runtime(loaded, runtime, str(problems) if named else "these problems")
    return loaded


class SharedVerifier:
    """An env's hold on its verifier: the given one (the caller's to close), or a shared one.

    A shared verifier comes from `rewards.get_verifier`, one per (runtime, policy) in the process:
    that is what lets the N sub-environments of a vector env send their proofs to Lean in one
    batch and use the same warm Lean processes. The last env to `release` it closes it, which
    ends its Lean processes.
    """

    _users: ClassVar[dict[int, int]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, runtime: Any, policy: Any, verifier: Any):
        self.owned = verifier is None
        if verifier is None:
            from leangym.rewards import Policy, get_verifier

            if isinstance(policy, Mapping):
                policy = Policy(**policy)
            verifier = get_verifier(runtime=runtime, policy=policy)
            with self._lock:
                self._users[id(verifier)] = self._users.get(id(verifier), 0) + 1
        self.verifier = verifier

    def release(self) -> None:
        """Let go (idempotent); close the verifier when this was its last env."""
        if not self.owned:
            return
        self.owned = False
        with self._lock:
            left = self._users.get(id(self.verifier), 1) - 1
            if left:
                self._users[id(self.verifier)] = left
            else:
                self._users.pop(id(self.verifier), None)
        if not left:
            self.verifier.close()


def check_fits(problems: Sequence[Problem], space: spaces.Dict, fields: Sequence[str]) -> None:
    """Refuse problems whose text is longer than the observation space allows (a clear error, not a cut)."""
    for p in problems:
        for field in fields:
            limit, size = space[field].max_length, len(getattr(p, field))  # type: ignore[attr-defined]
            if size > limit:
                raise ValueError(f"problem {p.name!r}: `{field}` has {size} characters (limit {limit})")


def pick_problem(problems: Sequence[Problem], by_name: Mapping[str, Problem], name: Any, rng: Any) -> Problem:
    """`options={"problem": name}` when given, else one drawn with the env's seeded generator."""
    if name is None:
        return problems[int(rng.integers(len(problems)))]
    if name not in by_name:
        some = ", ".join(list(by_name)[:5])
        raise KeyError(f"no problem named {name!r} in this set ({len(by_name)} problems: {some}, …)")
    return by_name[name]
