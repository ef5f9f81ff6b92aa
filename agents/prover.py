"""The interface `leangym eval` speaks to an agent, and the helper for agents that only write text.

An agent is anything with a `name`, a `deterministic` flag and one method:

    attempt(problems, n, verifier) -> list[list[Attempt]]     # n attempts per problem, in order

Each `Attempt` carries the proof it submitted and the verifier's `Verdict` on it. The agent
calls the verifier itself, so agents that work step by step (tree search in `LeanTactic-v0`)
fit as well as agents that write whole proofs. An agent that only writes proofs subclasses
`ProofSampler` and implements `sample(problems, n) -> list[list[str]]`; the verification is
then done for it, all of a call's proofs in one `verify_batch`.

A `deterministic` agent gives the same attempt every time (the portfolio, the search): `eval`
asks it for one attempt per problem and reports that result for every k.

Plug in your own with `leangym eval --agent my_module:make_agent` (a class or function that
returns an agent, called with no argument), or in Python with `run_eval(agent=...)`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from leangym.rewards.problem import Problem
from leangym.rewards.verdict import Verdict
from leangym.rewards.verifier import BaseVerifier

_DETAIL_CHARS = 1000  # a results row keeps this much of a verdict's detail (grind's reports run long)


@dataclass(frozen=True)
class Attempt:
    """One proof an agent submitted for a problem, and what the verifier said about it."""

    proof: str
    verdict: Verdict
    seconds: float  # what the attempt cost: its share of generation or search, plus verification
    info: dict[str, Any] = field(default_factory=dict)  # agent-specific: tactics tried, nodes expanded, …

    def to_json(self) -> dict[str, Any]:
        v = self.verdict
        out: dict[str, Any] = {
            "proof": self.proof,
            "verdict": v.outcome,
            "reasons": list(v.reasons),
            "seconds": round(self.seconds, 3),
        }
        if v.detail:  # Lean's error for a rejection, the cause of an `error`
            out["detail"] = v.detail if len(v.detail) <= _DETAIL_CHARS else v.detail[:_DETAIL_CHARS] + " …"
        return {**out, **self.info}


@runtime_checkable
class Prover(Protocol):
    """What `leangym eval` runs (see the module docstring)."""

    name: str
    deterministic: bool

    def attempt(self, problems: Sequence[Problem], n: int, verifier: BaseVerifier) -> list[list[Attempt]]:
        """`n` attempts for each problem (one when `deterministic`), in the order of `problems`."""
        ...


class ProofSampler(ABC):
    """An agent that writes whole proofs; `attempt` verifies all of them in one batch."""

    name: str = "sampler"
    deterministic: bool = False

    @abstractmethod
    def sample(self, problems: Sequence[Problem], n: int) -> list[list[str]]:
        """`n` proof bodies (the text after `formal_statement`) per problem."""

    def attempt(self, problems: Sequence[Problem], n: int, verifier: BaseVerifier) -> list[list[Attempt]]:
        start = time.monotonic()
        proofs = self.sample(problems, n)
        if len(proofs) != len(problems):
            raise ValueError(f"{self.name}: sample() gave proofs for {len(proofs)} of {len(problems)} problems")
        flat = [(p, proof) for p, group in zip(problems, proofs, strict=True) for proof in group]
        share = (time.monotonic() - start) / max(1, len(flat))  # generation time, spread over the samples
        verdicts = iter(verifier.verify_batch(flat))
        return [[Attempt(proof, (v := next(verdicts)), share + v.seconds) for proof in group] for group in proofs]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release models or engines."""
