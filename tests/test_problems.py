"""Problem sets: the loader, the shipped sets, LeanDojo files, `leangym problems`, the Mathlib refusal (no Lean run)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from leangym.cli import main
from leangym.envs.dojo import statement_from_goal
from leangym.envs.problems import (
    DATA,
    MINIF2F_CORE_PRELUDE,
    PORTFOLIO_TACTICS,
    ProblemSetError,
    list_sets,
    load_file,
    load_problems,
    require_runtime,
)
from leangym.lean_project import LeanRuntime


def test_shipped_sets_and_splits() -> None:
    assert [s.name for s in list_sets()] == ["minif2f", "minif2f-core", "core", "toy"]
    assert len(load_problems("toy")) == 15
    minif2f = load_problems("minif2f")
    assert len(minif2f) == 488
    assert len(load_problems("minif2f:test")) == len(load_problems("minif2f:valid")) == 244
    assert all(p.imports == ("Mathlib", "Aesop") for p in minif2f)
    assert minif2f[1].informal_statement.startswith("/--") and "goal" in minif2f[1].extra
    core = load_problems("core")
    assert len(core) >= 150
    assert {p.split for p in core} == {"valid", "test"}
    assert all(p.reference_proof and p.category and p.header.startswith("set_option autoImplicit false") for p in core)
    assert all(p.extra["difficulty"] in (*PORTFOLIO_TACTICS, None) for p in core)


def test_given_problems_are_checked_as_loaded_ones() -> None:
    core = load_problems("core:test")
    assert load_problems(core[:3]) == core[:3]
    with pytest.raises(ProblemSetError, match="empty"):
        load_problems([])
    with pytest.raises(TypeError, match=r"leangym\.rewards\.Problem"):
        load_problems([core[0], {"name": "not a Problem"}])  # type: ignore[list-item]


def test_core_rows_follow_the_documented_format() -> None:
    for p in load_problems("core"):
        assert re.fullmatch(r"core_(nt|alg|ineq|rec|list|logic|comb)_\w+", p.name), p.name
        assert p.formal_statement.startswith(f"theorem {p.name} ") and p.formal_statement.endswith(":= by")
        assert p.informal_statement.startswith("/--") and p.informal_statement.endswith("-/\n")
        assert p.header == "set_option autoImplicit false\n"
        assert (p.reference_proof or "").startswith("\n  ") and "goal" in p.extra


def test_minif2f_core_is_the_derived_subset_with_the_prelude() -> None:
    derived = json.loads((DATA / "minif2f_core.json").read_text(encoding="utf-8"))
    problems = load_problems("minif2f-core")
    assert [p.name for p in problems] == derived["names"] and derived["count"] == len(problems)
    assert derived["prelude"] == MINIF2F_CORE_PRELUDE
    assert all(p.header == MINIF2F_CORE_PRELUDE and not p.imports for p in problems)
    assert {p.split for p in problems} == {"valid", "test"}
    assert len(load_problems("minif2f-core:test")) + len(load_problems("minif2f-core:valid")) == len(problems)


def test_user_jsonl_file_and_split(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    rows = [
        {"name": "a", "split": "train", "formal_statement": "theorem a : 1 + 1 = 2 := by", "hint": 3},
        {"name": "b", "split": "eval", "formal_statement": "theorem b (n : Nat) : n + 0 = n := by",
         "informal_prefix": "/-- b -/\n", "goal": "n : Nat\n⊢ n + 0 = n"},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    problems = load_problems(str(path))
    assert [p.name for p in problems] == ["a", "b"]
    assert problems[0].extra == {"hint": 3} and problems[1].informal_statement == "/-- b -/\n"
    assert [p.name for p in load_problems(f"{path}:eval")] == ["b"]
    with pytest.raises(ProblemSetError, match="no split 'test': its splits are eval, train"):
        load_problems(f"{path}:test")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"name": "a", "formal_statement": "theorem a : True := by"}\n{"name": "b"', "line 2: not JSON"),
        ('{"name": "a"}', "line 1: missing formal_statement"),
        ("[1, 2]", "line 1: expected a JSON object"),
        ('{"name": "a", "formal_statement": "x"}\n{"name": "a", "formal_statement": "y"}', "repeated: a"),
    ],
)
def test_bad_files_get_errors_that_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProblemSetError, match=message):
        load_problems(str(path))


def test_binary_file_and_unknown_set(tmp_path: Path) -> None:
    blob = tmp_path / "blob.jsonl"
    blob.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ProblemSetError, match="not UTF-8"):
        load_problems(str(blob))
    with pytest.raises(ProblemSetError, match=r"unknown problem set 'minif2f_core'.*minif2f-core"):
        load_problems("minif2f_core")
    with pytest.raises(ProblemSetError, match="core has no split 'train'"):
        load_problems("core:train")


LEANDOJO_RECORDS = [
    {
        "url": "https://github.com/example/repo",
        "commit": "abc123",
        "file_path": "Example/Basic.lean",
        "full_name": "Example.add_le",
        "start": [3, 1],
        "end": [5, 10],
        "traced_tactics": [
            {
                "tactic": "omega",
                "annotated_tactic": ["omega", []],
                "state_before": "a b : Nat\nh : a ≤ b\n⊢ a + 1 ≤ b + 1",
                "state_after": "no goals",
            }
        ],
    },
    {
        "url": "https://github.com/example/repo",
        "commit": "abc123",
        "file_path": "Example/Basic.lean",
        "full_name": "Example.length_rev",
        "start": [7, 1],
        "end": [8, 10],
        "traced_tactics": [
            {
                "tactic": "simp",
                "annotated_tactic": ["simp", []],
                "state_before": "α : Type u_1\ninst✝ : DecidableEq α\nl : List α\nx✝ : α\n⊢ l.reverse.length =\n    l.length",
                "state_after": "no goals",
            }
        ],
    },
    {"url": "u", "commit": "c", "file_path": "f", "full_name": "Example.term_proof", "traced_tactics": []},
]


def test_leandojo_benchmark_file(tmp_path: Path) -> None:
    path = tmp_path / "test.json"
    path.write_text(json.dumps(LEANDOJO_RECORDS), encoding="utf-8")
    problems = load_file(path)
    assert [p.name for p in problems] == ["Example.add_le", "Example.length_rev"]  # the term proof is skipped
    first, second = problems
    assert first.formal_statement == "theorem Example_add_le (a b : Nat) (h : a ≤ b) : a + 1 ≤ b + 1 := by"
    assert second.formal_statement == (
        "theorem Example_length_rev (α : Type u_1) [DecidableEq α] (l : List α) (x_0 : α) : "
        "l.reverse.length = l.length := by"
    )
    assert first.split == "test" and first.header == "import Mathlib\n"
    assert first.extra["repo"] == "https://github.com/example/repo" and first.extra["file_path"] == "Example/Basic.lean"
    assert [p.name for p in load_problems(f"{path}:test")] == ["Example.add_le", "Example.length_rev"]


def test_goals_that_have_no_statement_form() -> None:
    assert statement_from_goal("t", "x : Nat := 3\n⊢ x = 3") is None  # a `let` value
    assert statement_from_goal("t", "⊢ True\n\n⊢ False") is None  # two goals
    assert statement_from_goal("t", "⊢ True") == "theorem t : True := by"


def test_mathlib_sets_are_refused_on_the_embedded_runtime_before_any_lean_run(lean: LeanRuntime) -> None:
    runs = lean.lean_batches
    with pytest.raises(ProblemSetError) as e:
        load_problems("minif2f:test", runtime=lean)
    assert "needs Mathlib" in str(e.value) and "native" in str(e.value) and "minif2f-core" in str(e.value)
    require_runtime(load_problems("core:test"), lean)  # no import: fine
    require_runtime(load_problems("minif2f-core"), lean)
    assert lean.lean_batches == runs


def test_list_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["problems", "list"]) == 0
    out = capsys.readouterr().out
    assert "minif2f " in out and "488 problems (test 244, valid 244)" in out and "core" in out


def test_show_command_prints_the_loader_s_problems(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["problems", "show", "core:test"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == [p.name for p in load_problems("core:test")]
