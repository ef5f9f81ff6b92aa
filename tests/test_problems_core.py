"""The `core` set against the real kernel: reference proofs, non-triviality, difficulty; LeanDojo statements.

One module-scoped batch sends everything to Lean at once: every reference proof, `rfl` and
`trivial` on every statement, each recorded difficulty tactic, and two statements rebuilt
from LeanDojo goals. `check_core` (the re-measuring script) runs on a few problems.
"""

from __future__ import annotations

import pytest
from test_problems import LEANDOJO_RECORDS  # pytest puts tests/ on sys.path

from leangym.envs.cli import check_core
from leangym.envs.dojo import load_leandojo
from leangym.envs.problems import PORTFOLIO_TACTICS, load_problems
from leangym.lean_project import LeanRuntime
from leangym.rewards import Problem, Verdict, Verifier

pytestmark = pytest.mark.lean

CORE = load_problems("core")
DOJO = load_leandojo(LEANDOJO_RECORDS, header="")  # core-only goals: no Mathlib header
DOJO_PROOFS = {"Example.add_le": "\n  omega", "Example.length_rev": "\n  simp"}


@pytest.fixture(scope="module")
def verdicts(lean: LeanRuntime) -> dict[tuple[str, str], Verdict]:
    """(problem, what) -> verdict, `what` being "reference", "rfl", "trivial", "difficulty" or "dojo"."""
    jobs: list[tuple[str, Problem, str]] = []
    for p in CORE:
        jobs += [("reference", p, p.reference_proof or ""), ("rfl", p, "\n  rfl"), ("trivial", p, "\n  trivial")]
        if p.extra["difficulty"] is not None:
            jobs.append(("difficulty", p, "\n  " + p.extra["difficulty"]))
    jobs += [("dojo", p, DOJO_PROOFS[p.name]) for p in DOJO]
    with Verifier(lean) as verifier:
        out = verifier.verify_batch([(p, proof) for _, p, proof in jobs])
    return {(p.name, what): v for (what, p, _), v in zip(jobs, out, strict=True)}


def test_the_set_is_large_enough_and_split() -> None:
    assert len(CORE) >= 150
    assert {p.split for p in CORE} == {"valid", "test"}
    assert len({p.name for p in CORE}) == len(CORE)
    assert {"number_theory", "algebra", "inequality", "recursion", "lists", "logic"} <= {p.category for p in CORE}


def test_every_reference_proof_is_accepted_by_the_kernel(verdicts: dict[tuple[str, str], Verdict]) -> None:
    failed = {
        p.name: (v.outcome, v.reasons, v.detail[:200]) for p in CORE if not (v := verdicts[p.name, "reference"]).proved
    }
    assert not failed


def test_no_statement_is_closed_by_rfl_or_trivial(verdicts: dict[tuple[str, str], Verdict]) -> None:
    for tactic in ("rfl", "trivial"):
        outcomes = {p.name: verdicts[p.name, tactic].outcome for p in CORE}
        assert set(outcomes.values()) == {"rejected"}, {n: o for n, o in outcomes.items() if o != "rejected"}


def test_each_recorded_difficulty_tactic_proves_its_problem(verdicts: dict[tuple[str, str], Verdict]) -> None:
    rated = [p for p in CORE if p.extra["difficulty"] is not None]
    assert rated and all(p.extra["difficulty"] in PORTFOLIO_TACTICS for p in rated)
    assert [p.name for p in rated if not verdicts[p.name, "difficulty"].proved] == []


def test_difficulty_is_remeasured_by_check_core(lean: LeanRuntime) -> None:
    by_difficulty = {p.extra["difficulty"]: p for p in CORE}  # one problem per recorded difficulty
    sample = [by_difficulty[d] for d in ("omega", "simp", "grind", None)]
    report = check_core(lean, problems=sample)
    assert report.difficulty == {p.name: p.extra["difficulty"] for p in sample}
    assert report.ok, (report.reference_failures, report.trivial, report.mismatches, report.undecided)


def test_statements_rebuilt_from_leandojo_goals_elaborate(verdicts: dict[tuple[str, str], Verdict]) -> None:
    assert {p.name: verdicts[p.name, "dojo"].outcome for p in DOJO} == dict.fromkeys(DOJO_PROOFS, "proved")
