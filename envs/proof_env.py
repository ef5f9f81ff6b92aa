"""`leangym/LeanProof-v0`: one episode is one whole proof of one problem (the GRPO setting).

    env = gym.make("leangym/LeanProof-v0", problems="core:test")
    obs, info = env.reset(seed=0)                   # or options={"problem": "core_nt_mod3_square"}
    obs["formal_statement"]                         # 'theorem … := by'
    obs, reward, terminated, truncated, info = env.step("\\n  omega")
    reward, info["verdict"], info["reasons"]        # 1.0 / 0.0, and why

The action is the proof as `leangym.rewards` accepts it (the body after the statement, or a
whole file); the reward is the verifier's verdict, and nothing else. Every step ends the
episode. A vector env of N copies checks the N proofs in one Lean batch (`envs/vector.py`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from leangym.envs import vector
from leangym.envs.common import ProblemsArg, SharedVerifier, check_fits, load_problem_list, pick_problem
from leangym.envs.spaces import text_dict
from leangym.rewards.problem import Problem
from leangym.rewards.verdict import Verdict

OBSERVATION_LIMITS = {"header": 4096, "formal_statement": 8192, "informal_statement": 8192}
MAX_PROOF_CHARS = 65536


class LeanProofEnv(gym.Env[dict[str, str], str]):
    """Whole-proof episodes: observe a problem, submit a proof, get the verifier's reward (see the module docstring)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 1}  # noqa: RUF012 - Gymnasium's convention (fps: for check_env)

    def __init__(
        self,
        problems: ProblemsArg = "core:test",
        runtime: Any = "embedded",
        policy: Any = None,
        *,
        verifier: Any = None,
        render_mode: str | None = None,
    ):
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', not {render_mode!r}")
        self.render_mode = render_mode
        self.observation_space = text_dict(**OBSERVATION_LIMITS)
        self.action_space = vector.ProofAction(MAX_PROOF_CHARS)
        self._hold = SharedVerifier(runtime, policy, verifier)
        self.verifier = self._hold.verifier
        try:
            self.problems = load_problem_list(problems, self.verifier.runtime)
            check_fits(self.problems, self.observation_space, list(OBSERVATION_LIMITS))
        except Exception:
            self._hold.release()
            raise
        self._by_name = {p.name: p for p in self.problems}
        self.problem: Problem | None = None
        self.verdict: Verdict | None = None  # the last step's
        self.prefetched: tuple[Problem, str, Verdict] | None = None  # set by a vector env's batch (vector.py)
        vector.announce(self)

    @property
    def awaiting_step(self) -> bool:
        """Reset and not yet stepped: the next `step` will verify a proof."""
        return self.problem is not None and self.verdict is None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, str], dict]:
        super().reset(seed=seed)
        self.problem = pick_problem(self.problems, self._by_name, (options or {}).get("problem"), self.np_random)
        self.verdict = None
        self.prefetched = None
        return self._observation(), {"problem": self.problem.name}

    def step(self, action: str) -> tuple[dict[str, str], float, bool, bool, dict[str, Any]]:
        if self.problem is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self.verdict is not None:
            raise gym.error.ResetNeeded("the episode is over (one proof per episode): call reset()")
        if not isinstance(action, str):
            raise TypeError(f"the action is the proof text (str), not {type(action).__name__}")
        self.verdict = self._prefetched_verdict(action) or self.verifier.verify(self.problem, action)
        info = {"problem": self.problem.name, **self.verdict.to_json()}
        return self._observation(), self.verdict.reward, True, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self.problem is None:
            return "LeanProof-v0: not reset\n"
        lines = [f"problem {self.problem.name}", self.problem.formal_statement]
        if self.verdict is not None:
            v = self.verdict
            why = f" ({', '.join(v.reasons)})" if v.reasons else ""
            lines.append(f"verdict: {v.outcome}{why}, reward {v.reward:.1f}, {v.seconds:.1f} s")
            lines += [f"  {m.severity} {m.pos.line}:{m.pos.column} {m.text}" for m in v.messages[:5]]
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        """Let go of the shared verifier: its Lean processes end when its last env closes."""
        self._hold.release()

    def _observation(self) -> dict[str, str]:
        p = self.problem
        assert p is not None
        return {"header": p.header, "formal_statement": p.formal_statement, "informal_statement": p.informal_statement}

    def _prefetched_verdict(self, action: str) -> Verdict | None:
        """The verdict a vector env's batch already computed for exactly this problem and proof."""
        got, self.prefetched = self.prefetched, None
        if got is not None and got[0] is self.problem and got[1] == action:
            return got[2]
        return None
