"""Verification: kernel-checked, hack-resistant proof checking and the binary reward.

    from leangym.rewards import Problem, get_verifier

    verifier = get_verifier("embedded")            # shared per (runtime, policy) in the process
    verdict = verifier.verify(problem, "  omega")   # a proof body, or a whole Lean file
    verdict.outcome, verdict.reasons, verdict.reward

`reward = 1.0` iff the verdict is `proved`: the Lean kernel accepted a proof of exactly the
problem's statement, from the trusted header, with nothing the policy forbids. See
docs/verification.md for the checks each runtime performs and the reason codes.
"""

from leangym.rewards.adapters import (
    VerifierUnavailable,
    compute_score,
    compute_score_batch,
    lean_reward,
    make_lean_reward,
)
from leangym.rewards.policy import STANDARD_AXIOMS, Policy
from leangym.rewards.problem import Problem
from leangym.rewards.verdict import Verdict
from leangym.rewards.verifier import BaseVerifier, Verifier, get_verifier, verify, verify_with_retries

__all__ = [
    "STANDARD_AXIOMS",
    "BaseVerifier",
    "Policy",
    "Problem",
    "Verdict",
    "Verifier",
    "VerifierUnavailable",
    "compute_score",
    "compute_score_batch",
    "get_verifier",
    "lean_reward",
    "make_lean_reward",
    "verify",
    "verify_with_retries",
]
