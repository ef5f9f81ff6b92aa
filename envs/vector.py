"""One Lean batch per vector step for `LeanProof-v0`, in `SyncVectorEnv` and in our own vector env.

`gym.make_vec(..., vectorization_mode="sync")` builds Gymnasium's `SyncVectorEnv`, which calls
each sub-env's `step` one after another: a sub-env alone would start one Lean run per proof.
The batch has to be made by something that sees all N actions first. `SyncVectorEnv.step`
starts with `iterate(self.action_space, actions)`, and `batch_space` and `iterate` are
`functools.singledispatch` functions that Gymnasium asks spaces to extend. So:

1. The action space of `LeanProofEnv` is `ProofAction`, a `LeanText` of its own type.
2. `batch_space(ProofAction, n)` (called by `SyncVectorEnv.__init__` right after it made its
   n sub-envs) returns a `ProofActionBatch` linked to those n envs: the last n `LeanProofEnv`s
   created in this thread, checked to be the right ones (the first one's action space must
   be the very object being batched).
3. `iterate(ProofActionBatch, actions)` first verifies every (problem, proof) pair of the
   linked envs that are waiting for a step, with one `verify_batch` per shared verifier,
   and leaves each verdict with its env; then it yields the actions as usual. Each sub-env's
   `step` finds its verdict there (same problem, same proof) and does not call Lean again.

Anything that does not line up (a wrapper that changes the actions or the action space, a
space made in another thread, pickled or copied, `AsyncVectorEnv`, whose sub-envs live in
other processes) leaves the space unlinked or the verdict unused: each sub-env then verifies
its own proof, correct but one Lean run each. `LeanProofVectorEnv` (the registered
`vector_entry_point`) links its envs directly and needs none of the guessing.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import batch_space, iterate

from leangym.envs.spaces import LeanText

if TYPE_CHECKING:
    from leangym.envs.proof_env import LeanProofEnv

_LOG_SIZE = 4096
_created = threading.local()  # .envs: weak references to the LeanProofEnvs made in this thread, in order


class ProofAction(LeanText):
    """The action space of `LeanProof-v0` (its own type, so that `batch_space` can batch it our way)."""


class ProofActionBatch(spaces.Tuple):
    """N `ProofAction`s, linked to the N envs that will take them (see the module docstring)."""

    def __init__(self, subspaces: Sequence[ProofAction], seed: Any = None, envs: Sequence[LeanProofEnv] = ()):
        super().__init__(subspaces, seed=seed)
        self._envs = [weakref.ref(e) for e in envs]

    @property
    def envs(self) -> list[LeanProofEnv]:
        """The linked envs still alive ([] when unlinked)."""
        alive = [r() for r in self._envs]
        return [e for e in alive if e is not None] if len(alive) == len(self.spaces) else []

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_envs"] = []  # envs do not travel with a pickled or copied space
        return state


def announce(env: LeanProofEnv) -> None:
    """Record a new env (called by `LeanProofEnv.__init__`) for the next `batch_space` in this thread."""
    log: list[weakref.ref] = getattr(_created, "envs", [])
    log = [r for r in log[-_LOG_SIZE:] if r() is not None]
    log.append(weakref.ref(env))
    _created.envs = log


def _recent(n: int, first_space: ProofAction) -> list[LeanProofEnv]:
    """The last n envs created in this thread, if the first of them owns `first_space`; else []."""
    alive = [e for e in (r() for r in getattr(_created, "envs", [])) if e is not None]
    group = alive[-n:] if n <= len(alive) else []
    if not group or group[0].action_space is not first_space:
        return []
    return group if all(e.action_space == first_space for e in group) else []


@batch_space.register(ProofAction)
def _batch_proof_action(space: ProofAction, n: int = 1) -> ProofActionBatch:
    plain = batch_space.dispatch(spaces.Space)(space, n)  # Gymnasium's own: n seeded copies
    return ProofActionBatch(plain.spaces, seed=plain.np_random, envs=_recent(n, space))


@iterate.register(ProofActionBatch)
def _iterate_proof_actions(space: ProofActionBatch, items: Sequence[str]) -> Any:
    prefetch(space.envs, items)
    return iter(items)


def prefetch(envs: Sequence[LeanProofEnv], actions: Sequence[Any]) -> int:
    """Verify the coming step of each env in `envs` (paired with `actions`): one batch per verifier.

    Envs that are not waiting for a step (episode over: the vector env resets them instead)
    are skipped. Returns how many proofs were verified.
    """
    groups: dict[int, tuple[Any, list[tuple[LeanProofEnv, str]]]] = {}
    for env, action in zip(envs, actions, strict=False):
        if env.awaiting_step and isinstance(action, str):
            groups.setdefault(id(env.verifier), (env.verifier, []))[1].append((env, action))
    for verifier, items in groups.values():
        verdicts = verifier.verify_batch([(env.problem, action) for env, action in items])
        for (env, action), verdict in zip(items, verdicts, strict=True):
            env.prefetched = (env.problem, action, verdict)
    return sum(len(items) for _, items in groups.values())


class LeanProofVectorEnv(SyncVectorEnv):
    """N `LeanProof-v0` envs whose proofs go to Lean in one batch per step (`vectorization_mode="vector_entry_point"`).

    `SyncVectorEnv` with the batch link made explicitly; keyword arguments are those of
    `LeanProofEnv` (and `autoreset_mode`).
    """

    def __init__(self, num_envs: int, autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP, **env_kwargs: Any):
        from leangym.envs.proof_env import LeanProofEnv

        make: Callable[[], LeanProofEnv] = partial(LeanProofEnv, **env_kwargs)
        super().__init__([make] * num_envs, autoreset_mode=autoreset_mode)
        self.action_space = ProofActionBatch(self.action_space.spaces, seed=self.action_space.np_random, envs=self.envs)
