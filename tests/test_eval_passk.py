"""pass@k and the eval summary, against values computed by hand (no Lean)."""

from __future__ import annotations

from math import comb

import pytest

from leangym.agents.evaluate import format_table, summarize
from leangym.agents.passk import ks_up_to, mean_pass_at_k, pass_at_k, pass_at_k_table


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 1, 1, 1 / 5),  # one good sample in five
        (5, 1, 2, 1 - 6 / 10),  # 1 - C(4,2)/C(5,2)
        (5, 1, 5, 1.0),  # all five drawn
        (10, 3, 4, 1 - 35 / 210),  # 1 - C(7,4)/C(10,4)
        (8, 0, 8, 0.0),  # nothing correct
        (8, 2, 7, 1.0),  # n - c < k: any 7 of 8 contain a correct one
        (4, 4, 1, 1.0),
        (16, 1, 8, 0.5),  # 1 - C(15,8)/C(16,8) = 1 - 8/16
    ],
)
def test_pass_at_k_matches_hand_computed_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_equals_the_binomial_formula_everywhere() -> None:
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - comb(n - c, k) / comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12), (n, c, k)


def test_pass_at_k_refuses_impossible_inputs() -> None:
    with pytest.raises(ValueError, match="at least 4 samples"):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(3, 4, 1)


def test_mean_and_table() -> None:
    counts = [(4, 0), (4, 1), (4, 4)]
    assert mean_pass_at_k(counts, 1) == pytest.approx((0 + 0.25 + 1) / 3)
    assert mean_pass_at_k([], 1) == 0.0
    assert ks_up_to(8) == [1, 2, 4, 8]
    assert ks_up_to(6) == [1, 2, 4, 6]
    assert ks_up_to(1) == [1]
    table = pass_at_k_table(counts, ks_up_to(4))
    assert list(table) == [1, 2, 4]
    assert table[4] == pytest.approx(2 / 3)  # the two problems with a correct sample


def _row(name: str, split: str, verdicts: list[str], category: str = "algebra") -> dict:
    samples = [{"proof": "omega", "verdict": v, "reasons": [], "seconds": 1.0} for v in verdicts]
    return {"name": name, "split": split, "category": category, "n": len(samples),
            "correct": verdicts.count("proved"), "samples": samples}  # fmt: skip


def test_summary_per_split_and_category() -> None:
    rows = [
        _row("a", "test", ["proved", "rejected", "rejected", "rejected"]),
        _row("b", "test", ["rejected"] * 4, category="logic"),
        _row("c", "valid", ["proved"] * 4),
        _row("d", "valid", ["error", "rejected", "rejected", "rejected"], category="logic"),
    ]
    s = summarize(rows, 4, {"problems": "core", "agent": "x", "k": 4, "runtime": "embedded", "lean_version": "4"})
    assert list(s["splits"]) == ["test", "valid", "all"]
    assert s["splits"]["test"]["pass_at_k"] == {"1": 0.125, "2": 0.25, "4": 0.5}
    assert s["splits"]["valid"]["solved"] == 1 and s["splits"]["valid"]["undecided"] == 1
    assert s["splits"]["all"]["pass_at_k"]["1"] == pytest.approx((0.25 + 0 + 1 + 0) / 4, abs=1e-4)
    assert s["categories"] == {"algebra": {"problems": 2, "solved": 2}, "logic": {"problems": 2, "solved": 0}}
    assert not s["deterministic"]
    table = format_table(s)
    assert "pass@4" in table and "1 undecided" in table


def test_a_deterministic_agent_reports_its_one_attempt_for_every_k() -> None:
    rows = [_row("a", "test", ["proved"]), _row("b", "test", ["rejected"])]
    s = summarize(rows, 8, {"problems": "core:test", "agent": "portfolio", "k": 8})
    assert s["deterministic"]
    assert s["splits"]["test"]["pass_at_k"] == {"1": 0.5, "2": 0.5, "4": 0.5, "8": 0.5}
    at_one = summarize(rows, 1, {"problems": "core:test", "agent": "portfolio", "k": 1, "deterministic": True})
    assert at_one["deterministic"] and at_one["splits"]["test"]["pass_at_k"] == {"1": 0.5}
    sampled = summarize(rows, 1, {"problems": "core:test", "agent": "hf:m", "k": 1, "deterministic": False})
    assert not sampled["deterministic"]


def test_agents_by_name_and_plugged_in_by_module_path() -> None:
    from leangym.agents.baselines import PortfolioAgent, SearchAgent
    from leangym.agents.evaluate import EvalError, make_agent

    assert isinstance(make_agent("portfolio", tactics=["omega"]), PortfolioAgent)
    assert make_agent("search", max_expansions=3).max_expansions == 3
    plugged = make_agent("leangym.agents.baselines:SearchAgent")
    assert isinstance(plugged, SearchAgent) and plugged.deterministic
    with pytest.raises(EvalError, match="unknown agent 'best'"):
        make_agent("best")
    with pytest.raises(EvalError, match="cannot load nothing"):
        make_agent("leangym.agents.baselines:nothing")
    with pytest.raises(EvalError, match="lacks name, deterministic, attempt"):
        make_agent("os:getcwd")
