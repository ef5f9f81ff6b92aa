"""`leangym eval` with the real embedded kernel: portfolio, search, an `hf:` model, resume, Mathlib refusal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from leangym.agents.baselines import PortfolioAgent, SearchAgent
from leangym.agents.evaluate import run_eval
from leangym.agents.prover import Attempt
from leangym.cli import main
from leangym.envs.problems import ProblemSetError, load_problems
from leangym.lean_project import LeanRuntime
from leangym.rewards import Problem, Verifier

pytestmark = pytest.mark.lean

BY_NAME = {p.name: p for p in load_problems("core")}
# Three the portfolio proves (by omega, simp, simp_all: their recorded difficulty) and two it cannot.
PORTFOLIO_SET = [
    BY_NAME[n]
    for n in (
        "core_nt_linear_congruence",
        "core_list_sum_reverse",
        "core_ineq_am_gm_two_nat",
        "core_logic_modus_tollens",
        "core_nt_mod4_square",
    )
]
SEARCH_SET = [BY_NAME[n] for n in ("core_nt_linear_congruence", "core_ineq_cauchy_schwarz_two")]


def rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]


class Recording:
    """The portfolio, recording which problems it is asked about; it can stop a run after some calls."""

    def __init__(self, stop_after: int | None = None):
        self.inner = PortfolioAgent()
        self.name, self.deterministic = self.inner.name, True
        self.asked: list[str] = []
        self.stop_after = stop_after

    def attempt(self, problems: Sequence[Problem], n: int, verifier: Any) -> list[list[Attempt]]:
        if self.stop_after is not None and len(self.asked) >= self.stop_after:
            raise KeyboardInterrupt  # what Ctrl-C does between two batches
        self.asked += [p.name for p in problems]
        return self.inner.attempt(problems, n, verifier)


@pytest.fixture(scope="module")
def verifier(lean: LeanRuntime) -> Verifier:
    return Verifier(lean)


@pytest.fixture(scope="module")
def portfolio_run(tmp_path_factory: pytest.TempPathFactory, verifier: Verifier) -> dict[str, Any]:
    """A run stopped after its first batch of two problems, then resumed in the same directory."""
    out = tmp_path_factory.mktemp("eval") / "portfolio"
    first = Recording(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_eval(PORTFOLIO_SET, first, k=4, out=out, verifier=verifier, batch=2, progress=False)
    before = rows(out)
    second = Recording()  # the batch size is not part of a run's settings: the rest goes in one batch
    summary = run_eval(PORTFOLIO_SET, second, k=4, out=out, verifier=verifier, batch=3, progress=False)
    return {"out": out, "before": before, "first": first, "second": second, "summary": summary, "rows": rows(out)}


def test_portfolio_solves_with_the_cheapest_tactic_and_reports_the_rest(portfolio_run: dict[str, Any]) -> None:
    by_name = {r["name"]: r for r in portfolio_run["rows"]}
    for name, tactic in [
        ("core_nt_linear_congruence", "omega"),
        ("core_list_sum_reverse", "simp"),
        ("core_logic_modus_tollens", "simp_all"),
    ]:
        [sample] = by_name[name]["samples"]
        assert (sample["verdict"], sample["proof"].strip()) == ("proved", tactic)
        assert tactic == BY_NAME[name].extra["difficulty"]
    for name in ("core_ineq_am_gm_two_nat", "core_nt_mod4_square"):
        [sample] = by_name[name]["samples"]
        assert sample["verdict"] == "rejected" and sample["reasons"] and sample["detail"]
        assert set(sample["tried"].values()) == {"rejected"} and len(sample["tried"]) == 8


def test_resumed_run_does_no_work_twice(portfolio_run: dict[str, Any]) -> None:
    names = [p.name for p in PORTFOLIO_SET]
    assert portfolio_run["first"].asked == names[:2]
    assert [r["name"] for r in portfolio_run["before"]] == names[:2]
    assert portfolio_run["second"].asked == names[2:]  # the first two were not asked again
    assert [r["name"] for r in portfolio_run["rows"]] == names


def test_outputs_summary_and_plot(portfolio_run: dict[str, Any]) -> None:
    out, summary = portfolio_run["out"], portfolio_run["summary"]
    assert json.loads((out / "summary.json").read_text(encoding="utf-8")) == summary
    assert summary["deterministic"] and summary["samples_per_problem"] == 1
    assert summary["splits"]["test"]["pass_at_k"] == {"1": 0.6, "2": 0.6, "4": 0.6}
    assert list(summary["splits"]) == ["test", "all"]
    assert summary["categories"]["lists"] == {"problems": 1, "solved": 1}
    assert (out / "pass_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["agent"] == "portfolio"


def test_a_run_directory_holds_one_run(portfolio_run: dict[str, Any], verifier: Verifier) -> None:
    from leangym.agents.evaluate import EvalError

    with pytest.raises(EvalError, match=r"holds another run.*k: 4 there, 8 now"):
        run_eval(PORTFOLIO_SET, Recording(), k=8, out=portfolio_run["out"], verifier=verifier, progress=False)


@pytest.fixture(scope="module")
def search_run(tmp_path_factory: pytest.TempPathFactory, verifier: Verifier) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("eval") / "search"
    agent = SearchAgent(max_expansions=1)
    summary = run_eval(SEARCH_SET, agent, out=out, verifier=verifier, progress=False)
    found = {r["name"]: r["samples"][0] for r in rows(out)}
    proofs = [(BY_NAME[n], s["proof"]) for n, s in found.items() if s["verdict"] == "proved"]
    with Verifier(verifier.runtime) as fresh:  # no cache shared with the search: the kernel checks again
        recheck = fresh.verify_batch(proofs)
    return {"summary": summary, "found": found, "recheck": recheck}


def test_search_proves_what_it_can_and_the_kernel_agrees(search_run: dict[str, Any]) -> None:
    solved = search_run["found"]["core_nt_linear_congruence"]
    assert solved["verdict"] == "proved" and solved["tactics"] == ["omega"] and solved["expansions"] == 1
    assert [v.outcome for v in search_run["recheck"]] == ["proved"]


def test_search_reports_unsolved_problems_as_such(search_run: dict[str, Any]) -> None:
    hard = search_run["found"]["core_ineq_cauchy_schwarz_two"]
    assert hard["verdict"] == "rejected" and hard["reasons"] == ["search_exhausted"] and hard["proof"] == ""
    assert hard["expansions"] == 1 and hard["nodes"] >= 2  # the root and the states its tactics reached
    assert search_run["summary"]["splits"]["test"]["solved"] == 1


def test_hf_agent_samples_k_proofs_end_to_end(tmp_path: Path, verifier: Verifier) -> None:
    """A tiny random model (built here, nothing downloaded) goes through the whole `hf:` path."""
    from leangym.agents.prompts import render_prompt
    from leangym.agents.tiny import build_model, build_tokenizer

    problems = PORTFOLIO_SET[:2]
    tokenizer = build_tokenizer([render_prompt(p, "plain") for p in problems])
    build_model(tokenizer).save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    # a word-level tokenizer has no byte-level vocabulary for transformers' stop-string matcher: no stop strings
    options = {"max_new_tokens": 6, "seed": 0, "stop": ()}
    agent = f"hf:{tmp_path / 'tiny'}"
    summary = run_eval(problems, agent, k=2, out=tmp_path / "run", verifier=verifier, agent_options=options)
    assert summary["samples_per_problem"] == 2 and not summary["deterministic"]
    for row in rows(tmp_path / "run"):
        assert row["n"] == 2 and row["correct"] == sum(s["verdict"] == "proved" for s in row["samples"])
        assert all(s["verdict"] in ("proved", "rejected") and s["seconds"] > 0 for s in row["samples"])


def test_minif2f_on_the_embedded_runtime_fails_fast(
    tmp_path: Path, lean: LeanRuntime, verifier: Verifier, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = lean.lean_batches
    with pytest.raises(ProblemSetError, match="needs Mathlib"):
        run_eval("minif2f:test", "portfolio", out=tmp_path / "a", verifier=verifier)
    assert lean.lean_batches == runs and not (tmp_path / "a").exists()
    code = main(["eval", "--problems", "minif2f:test", "--agent", "search", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "needs Mathlib" in err and "--runtime native" in err
    assert not (tmp_path / "b").exists()
