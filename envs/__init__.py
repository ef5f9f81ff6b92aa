"""Gymnasium environments for proof in Lean 4 (docs/envs.md).

* `leangym/LeanProof-v0`  — one episode, one whole proof: the GRPO setting (`proof_env.py`);
* `leangym/LeanTactic-v0` — one tactic per step, with backtracking and a search graph (`tactic_env.py`).

Importing this package registers both ids with Gymnasium and does nothing else (no Lean, no
torch): the environment classes load on first use. So `import leangym.envs` before
`gym.make("leangym/LeanProof-v0")`, or let Gymnasium import it: `gym.make("leangym.envs:leangym/LeanProof-v0")`.
"""

from __future__ import annotations

from typing import Any

ENV_IDS = ("leangym/LeanProof-v0", "leangym/LeanTactic-v0")

_LAZY = {
    "LeanProofEnv": "leangym.envs.proof_env",
    "LeanProofVectorEnv": "leangym.envs.vector",
    "LeanTacticEnv": "leangym.envs.tactic_env",
    "TacticResult": "leangym.lean_project.tactics",
    "TacticStep": "leangym.envs.tactic_env",
}


def register_envs() -> None:
    """Register `leangym/LeanProof-v0` and `leangym/LeanTactic-v0` (idempotent, cheap)."""
    from gymnasium.envs.registration import register, registry

    if "leangym/LeanProof-v0" not in registry:
        register(
            id="leangym/LeanProof-v0",
            entry_point="leangym.envs.proof_env:LeanProofEnv",
            vector_entry_point="leangym.envs.vector:LeanProofVectorEnv",
        )
    if "leangym/LeanTactic-v0" not in registry:
        register(id="leangym/LeanTactic-v0", entry_point="leangym.envs.tactic_env:LeanTacticEnv")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'leangym.envs' has no attribute {name!r}")


register_envs()

__all__ = [
    "ENV_IDS",
    "LeanProofEnv",
    "LeanProofVectorEnv",
    "LeanTacticEnv",
    "TacticResult",
    "TacticStep",
    "register_envs",
]
