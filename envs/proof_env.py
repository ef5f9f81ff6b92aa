"""`leangym/LeanProof-v0`: one episode is one whole proof of one problem (the GRPO setting).

    env = gym.make("leangym/LeanProof-v0", problems="core:test")
    obs, info = env.reset(seed=0)                   # or options={"problem": "core_nt_mod3_square"}
    obs["formal_statement"]                         # 'theorem … := by'
    obs, reward, terminated, truncated, info = env.step("\\n  omega")
    reward, info["verdict"], info["reasons"]        # 1.0 / 0.0, and why

`gym.make_vec("leangym/LeanProof-v0", num_envs=N)` is `LeanProofVectorEnv` (`envs/vector.py`):
N episodes whose N proofs go to Lean in one batch a step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from leangym.envs.common import LeanEnv, ProblemsArg
from leangym.envs.spaces import LeanText, text_dict
from leangym.lean_project.runtime import LeanRuntime
from leangym.rewards.policy import Policy
from leangym.rewards.problem import Problem
from leangym.rewards.verdict import Verdict
from leangym.rewards.verifier import BaseVerifier

OBSERVATION_LIMITS = {"header": 4096, "formal_statement": 8192, "informal_statement": 8192}
MAX_PROOF_CHARS = 65536


class LeanProofEnv(LeanEnv):
    """Whole-proof episodes: observe a problem, submit a proof, get the Lean kernel's verdict as the reward.

    ## Description

    Each episode is one problem from a set (`problems`): the agent sees its statement and submits
    one proof. The verifier (`leangym.rewards`) checks it with Lean: the trusted header and
    statement are assembled around the submitted body, constructs a proof may not use are
    refused, and only a proof the kernel accepts from the standard axioms is proved.

    ## Action Space

    `LeanText(65536)`: the proof as text (any Unicode), either the body that continues
    `formal_statement` (`"\\n  omega"`) or a whole Lean file restating the header and statement,
    optionally in a Markdown fence.

    ## Observation Space

    `Dict` of `LeanText`: `header` (imports and options, up to 4096 characters),
    `formal_statement` (`theorem … := by`, up to 8192), `informal_statement` (up to 8192; may be
    empty). Problems longer than that are refused when the env is made.

    ## Rewards

    1.0 when the verdict is `proved`, else 0.0. `info` holds the whole verdict: `problem`,
    `verdict` (`proved` | `rejected` | `error`), `reward`, `reasons` (reason codes), `messages`
    (Lean's), `seconds`, and `detail` when there is one. `error` means the verifier could not
    decide (Lean crashed, no runtime): reward 0.0, but not a judgement.

    ## Starting State

    A problem drawn uniformly with the env's seeded generator, or the one named by
    `reset(options={"problem": name})`.

    ## Episode End

    Every step terminates the episode (one proof per episode); nothing truncates it.

    ## Arguments

    * `problems`: a set name (`"core:test"`), a JSONL path, or a list of `Problem`.
    * `runtime`: `"embedded"` (Lean in WebAssembly) or `"native"` (Mathlib possible), or a
      `LeanRuntime` (see docs/envs.md, "Lean processes").
    * `policy`: the verifier's `Policy` (or its fields as a dict); the default is strict.
    * `verifier`: a verifier of your own (any `BaseVerifier`: a `Verifier`, `RemoteVerifier`,
      `RayVerifier`), yours to close;
      else the process's shared one for (runtime, policy).
    * `render_mode`: `None` or `"ansi"`.
    """

    def __init__(
        self,
        problems: ProblemsArg = "core:test",
        runtime: LeanRuntime | str = "embedded",
        policy: Policy | Mapping[str, Any] | None = None,
        *,
        verifier: BaseVerifier | None = None,
        render_mode: str | None = None,
    ):
        observation_space, self.action_space = single_spaces()
        super().__init__(observation_space, list(OBSERVATION_LIMITS), problems, runtime, policy, verifier, render_mode)
        self.verdict: Verdict | None = None  # the last step's

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, str], dict]:
        super().reset(seed=seed)
        problem = self._next_problem(options)
        self.verdict = None
        return observation(problem), {"problem": problem.name}

    def step(self, action: str) -> tuple[dict[str, str], float, bool, bool, dict[str, Any]]:
        if self.problem is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self.verdict is not None:
            raise gym.error.ResetNeeded("the episode is over (one proof per episode): call reset()")
        check_action(action)
        self.verdict = self.verifier.verify(self.problem, action)
        return observation(self.problem), self.verdict.reward, True, False, step_info(self.problem, self.verdict)

    def render(self) -> str | None:
        return render_text(self.problem, self.verdict) if self.render_mode == "ansi" else None


# -- what LeanProofEnv and LeanProofVectorEnv share ----------------------------------------


def single_spaces() -> tuple[spaces.Dict, LeanText]:
    """One episode's observation and action spaces."""
    return text_dict(**OBSERVATION_LIMITS), LeanText(MAX_PROOF_CHARS)


def observation(problem: Problem) -> dict[str, str]:
    """What the agent sees of a problem: the trusted header and the statements, never a proof."""
    return {
        "header": problem.header,
        "formal_statement": problem.formal_statement,
        "informal_statement": problem.informal_statement,
    }


def check_action(action: Any) -> None:
    """Refuse a non-text action with a clear error (the verifier itself also takes bytes)."""
    if not isinstance(action, str):
        raise TypeError(f"the action is the proof text (str), not {type(action).__name__}")


def step_info(problem: Problem, verdict: Verdict) -> dict[str, Any]:
    """The step's `info`: the problem's name and the whole verdict, so a trainer can tell `error` from `rejected`."""
    return {"problem": problem.name, **verdict.to_json()}


def render_text(problem: Problem | None, verdict: Verdict | None) -> str:
    """The `ansi` rendering of one episode: the problem, and the verdict once there is one."""
    if problem is None:
        return "LeanProof-v0: not reset\n"
    lines = [f"problem {problem.name}", problem.formal_statement]
    if verdict is not None:
        why = f" ({', '.join(verdict.reasons)})" if verdict.reasons else ""
        lines.append(f"verdict: {verdict.outcome}{why}, reward {verdict.reward:.1f}, {verdict.seconds:.1f} s")
        lines += [f"  {m.severity} {m.pos.line}:{m.pos.column} {m.text}" for m in verdict.messages[:5]]
    return "\n".join(lines) + "\n"
