"""Batch planning and assembly (no Lean needed; the Lean-backed checks are in test_runtime.py)."""

from __future__ import annotations

import pytest

from leangym.lean.batch import assemble, plan, prepare, solo_reason
from leangym.lean.lexer import tokenize


@pytest.mark.parametrize(
    "src",
    [
        "theorem t : 1 = 1 := rfl",
        'local notation "ONE" => 1\ntheorem t : ONE = 1 := rfl',
        "set_option pp.all true\nopen Nat\ntheorem t : True := trivial",
        "attribute [local simp] Nat.add_comm\ntheorem t : True := trivial",
        "@[local simp] theorem aux : 1 = 1 := rfl",
        "scoped instance : Inhabited Nat := ⟨1⟩",
        "section\nvariable (n : Nat)\ntheorem t : n = n := rfl\nend",
        "namespace Foo\ntheorem t : True := trivial\nend Foo",
        "-- instance : OfNat Nat 9 := ⟨1⟩ (a comment)\ntheorem t : True := trivial",
        'theorem t : "instance" = "instance" := rfl',
    ],
)
def test_contained_sources_share_a_run(src: str) -> None:
    assert solo_reason(tokenize(src)) is None


@pytest.mark.parametrize(
    ("src", "why"),
    [
        ("instance : OfNat Nat 9 := ⟨1⟩", "global `instance`"),
        ('notation "ONE" => 1', "global `notation`"),
        ("attribute [simp] Nat.add_comm", "global attribute"),
        ("@[simp] theorem aux : 1 = 1 := rfl", "global attribute"),
        ("@[local simp, instance] def x : Inhabited Nat := ⟨1⟩", "global attribute"),
        ('macro "foo" : tactic => `(tactic| rfl)', "global `macro`"),
        ("theorem t : True := trivial\n#exit", "uses `#exit`"),
        ("end\ntheorem t : True := trivial", "closes a scope it did not open"),
        ("section\ntheorem t : True := trivial", "leaves a scope open"),
        ("theorem _root_.t : True := trivial", "declares a dotted name"),
        ("theorem Nat.my_lemma : True := trivial", "declares a dotted name"),
        ("theorem t : True := by\n  /- never closed", "unterminated comment, string or name"),
        ("theorem t : True := by run_tac pure ()", "uses `run_tac`"),
    ],
)
def test_sources_with_global_effects_run_alone(src: str, why: str) -> None:
    assert solo_reason(tokenize(src)) == why


def test_imports_are_hoisted_and_lines_kept() -> None:
    p = prepare(0, "import Std\n-- a comment\ntheorem t : True := trivial")
    assert p.imports == ("Std",)
    assert p.body.split("\n")[2] == "theorem t : True := trivial"  # line numbers unchanged
    assert "import" not in p.body


def test_plan_groups_by_imports_and_isolates_solo_sources() -> None:
    sources = [
        "theorem a : True := trivial",
        "import Std\ntheorem b : True := trivial",
        "instance : Inhabited Nat := ⟨1⟩",
        "theorem c : True := trivial",
    ]
    batches = plan([prepare(i, s) for i, s in enumerate(sources)], max_batch=10)
    assert sorted(sorted(p.index for p in b) for b in batches) == [[0, 3], [1], [2]]
    assert [len(b) for b in plan([prepare(i, "theorem x : True := trivial") for i in range(5)], max_batch=2)] == [
        2,
        2,
        1,
    ]


def test_assembled_file_wraps_each_source_in_its_own_scope() -> None:
    batch = [prepare(i, f"theorem t : {i} = {i} := rfl") for i in range(3)]
    asm = assemble(batch)
    lines = asm.text.split("\n")
    for span in asm.spans:
        assert lines[span.first_line - 1] == f"theorem t : {span.index} = {span.index} := rfl"
        assert lines[span.first_line - 2] == "section"
        assert lines[span.first_line - 3] == f"namespace {span.namespace}"
        assert lines[span.marker_line - 1] == f'#print "{asm.marker(span)}"'
    assert len({s.namespace for s in asm.spans}) == 3
    assert asm.nonce != assemble(batch).nonce  # fresh per run: a source cannot forge a marker
