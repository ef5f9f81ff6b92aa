"""The verifier as a reward for other RL libraries: TRL's `GRPOTrainer` and verl.

TRL (no import of trl here; the signature is TRL's reward-function protocol):

    from leangym.rewards import lean_reward            # or make_lean_reward(runtime=..., policy=...)
    trainer = GRPOTrainer(..., reward_funcs=[lean_reward], train_dataset=ds)

The dataset needs a `formal_statement` column (and optionally `header` and `name`); TRL
passes each column as a keyword argument, one value per completion. Completions may be
strings or chat messages. All completions of a call are verified in one batch.

A verdict `error` (Lean crashed, the runtime is missing) is not a judgement of the proof:
it is retried `retries` times, and if it persists the sample gets `None` (with a warning).
TRL turns None into NaN: it is left out of this function's logged mean, and the weighted
sum over reward functions (`nansum`) skips it; when every reward function returned None
for a sample, TRL warns again and that sample's sum is 0. Give the trainer a second reward
function (or fix the runtime) if that matters for your run.

verl: `compute_score(data_source, solution_str, ground_truth, extra_info=None)` for its
default reward manager, `compute_score_batch(data_sources, solution_strs, ground_truths,
extra_infos)` for `reward_manager=batch`. `ground_truth` is the formal statement (or a dict
with `formal_statement`, `header`, `name`); `extra_info` may carry `header` and `name`. verl
has no way to leave a sample out, so a persistent `error` raises `VerifierUnavailable`
instead of training on a made-up 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from leangym.lean_project import LeanRuntime
from leangym.rewards.policy import Policy
from leangym.rewards.problem import Problem
from leangym.rewards.verifier import BaseVerifier, get_verifier, verify_with_retries


class VerifierUnavailable(RuntimeError):
    """The verifier could not decide (after retries): a fault of the set-up, not of the proof."""


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the content of the last chat message."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return str(completion.get("content", ""))
    if isinstance(completion, Sequence) and completion:
        return completion_text(completion[-1])
    return ""


def make_problem(formal_statement: str, header: str | None = None, name: str | None = None) -> Problem:
    """A `Problem` from a dataset row's columns (the name defaults to the statement's)."""
    from leangym.rewards.submission import parse_statement

    if name is None:
        try:
            name = parse_statement(formal_statement).name
        except ValueError:
            name = None
    return Problem(name=name or "theorem", formal_statement=formal_statement.rstrip(), header=header or "")


def make_lean_reward(
    runtime: LeanRuntime | str = "embedded",
    policy: Policy | None = None,
    *,
    retries: int = 1,
    verifier: BaseVerifier | None = None,
) -> Callable[..., list[float | None]]:
    """A TRL reward function (see the module docstring); the verifier is made on its first call."""

    def lean_reward(
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] = (),
        formal_statement: Sequence[str] = (),
        header: Sequence[str | None] | None = None,
        name: Sequence[str | None] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        if len(formal_statement) != len(completions):
            raise ValueError("lean_reward needs a `formal_statement` dataset column (one value per completion)")
        headers = header if header is not None else [None] * len(completions)
        names = name if name is not None else [None] * len(completions)
        pairs = [
            (make_problem(s, h, n), completion_text(c))
            for s, h, n, c in zip(formal_statement, headers, names, completions, strict=True)
        ]
        verdicts = verify_with_retries(verifier or get_verifier(runtime, policy), pairs, retries)
        failed = [v for v in verdicts if v.outcome == "error"]
        if failed:
            warnings.warn(
                f"lean_reward: {len(failed)} of {len(verdicts)} samples could not be verified "
                f"({failed[0].reasons[0]}: {failed[0].detail[:200]}); they get None",
                RuntimeWarning,
                stacklevel=2,
            )
        return [None if v.outcome == "error" else v.reward for v in verdicts]

    return lean_reward


lean_reward = make_lean_reward()


def _problem_from(ground_truth: Any, extra_info: Mapping[str, Any] | None) -> Problem:
    extra = dict(extra_info or {})
    if isinstance(ground_truth, Mapping):
        extra = {**extra, **ground_truth}
        statement = str(ground_truth["formal_statement"])
    else:
        statement = str(ground_truth)
    return make_problem(statement, extra.get("header"), extra.get("name"))


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    runtime: str = "embedded",
    policy: Policy | None = None,
    retries: int = 1,
) -> list[float]:
    """verl's batch reward manager: one verification batch for the lot."""
    infos = extra_infos if extra_infos is not None else [None] * len(solution_strs)
    pairs = [(_problem_from(g, e), s) for s, g, e in zip(solution_strs, ground_truths, infos, strict=True)]
    verdicts = verify_with_retries(get_verifier(runtime, policy), pairs, retries)
    failed = next((v for v in verdicts if v.outcome == "error"), None)
    if failed is not None:
        raise VerifierUnavailable(f"{failed.reasons[0]}: {failed.detail}")
    return [v.reward for v in verdicts]


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None, **kw: Any
) -> float:
    """verl's per-sample reward function (prefer `compute_score_batch`: Lean is run per call)."""
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **kw)[0]
