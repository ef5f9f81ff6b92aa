"""The native runtime and its REPL on a real native Lean: skipped (with the reason) unless `leangym doctor` finds one.

Needs the toolchain and the REPL built in the Lake project (docs/native.md); the Mathlib test
also needs Mathlib. Everything sent to Lean goes in one batch per module fixture.
"""

from __future__ import annotations

import pytest

from leangym.lean_project import FileRuntime, get_runtime
from leangym.lean_project.doctor import native_status
from leangym.lean_project.native import find_native
from leangym.lean_project.repl_runtime import ReplRuntime, native_repl_runtime
from leangym.lean_project.tactics import ReplTactics
from leangym.rewards.audit import parse_axioms

STATUS = native_status()
pytestmark = [
    pytest.mark.native,
    pytest.mark.skipif(not STATUS["available"], reason=f"no native Lean: {STATUS.get('problem')}"),
    pytest.mark.skipif(
        str(STATUS.get("repl", "")).startswith("not built"), reason=f"native Lean found, REPL {STATUS.get('repl')}"
    ),
]

HEADER = "set_option maxHeartbeats 400000\nopen Nat\n"
PROVED = HEADER + "theorem t1 (n : Nat) : n + 0 = n := by simp"
REJECTED = HEADER + "theorem t2 (n : Nat) : n + 1 = n := by\n  omega"
SORRY = HEADER + "theorem t3 (a b : Nat) : a + b = b + a := by sorry"
SOLO = "instance : OfNat Nat 3 := ⟨2⟩\ntheorem t4 : (1 : Nat) + 1 = 3 := rfl"  # needs its own scope
MATHLIB = "import Mathlib\ntheorem t5 : Nat.gcd 180 168 = 12 := by norm_num"


@pytest.fixture(scope="module")
def repl_lean() -> ReplRuntime:
    lean = native_repl_runtime(timeout=120.0, workers=2)
    yield lean
    lean.close()


@pytest.fixture(scope="module")
def checked(repl_lean):
    return repl_lean.check([PROVED, REJECTED, SORRY, SOLO, PROVED, PROVED + "\n#print axioms t1"])


def test_verdicts(checked):
    proved, rejected, sorry, solo, again, _ = checked
    assert proved.error_free and again.error_free
    assert rejected.status == "ok" and rejected.has_errors and rejected.messages[0].pos.line in (3, 4)
    assert sorry.error_free and [m.kind for m in sorry.messages] == ["hasSorry"] and sorry.messages[0].pos.line == 3
    assert solo.status == "ok"  # Lean's own verdict on that file, whatever it is, with no leak to others


def test_axioms_of_a_checked_theorem(checked):
    [axioms] = [m for m in checked[5].messages if parse_axioms(m.text) is not None]
    names = parse_axioms(axioms.text)
    assert names is not None and "sorryAx" not in names


def test_same_verdicts_from_the_session_program(checked):
    """The native runtime's sessions and one-shot batches (the session program) say what the REPL says."""
    with get_runtime("native", timeout=120.0) as sessions, FileRuntime(find_native(), timeout=120.0) as batches:
        answers = [sessions.check([PROVED, REJECTED, SORRY]), batches.check([PROVED, REJECTED, SORRY])]
    for by_program in answers:
        for via_repl, other in zip(checked, by_program, strict=False):
            assert via_repl.result.error_free == other.error_free
            assert [m.severity for m in via_repl.result.messages] == [m.severity for m in other.messages]


def test_tactic_mode(repl_lean):
    tactics = repl_lean.proof_state_tactics(timeout=60.0, max_heartbeats=None)
    assert isinstance(tactics, ReplTactics)
    start = tactics.start("theorem t6 (a b : Nat) : a + b = b + a := by sorry", header="open Nat")
    assert start.state is not None and start.state.goals[0].endswith("⊢ a + b = b + a")
    assert tactics.apply(start.state, "exact foo_bar_unknown").failed
    done = tactics.apply(start.state, "omega")
    assert done.state is not None and done.state.goals == () and done.state.tactics == ("omega",)


@pytest.mark.skipif(not STATUS.get("mathlib"), reason="Mathlib is not built in the Lake project")
def test_mathlib(repl_lean):
    [result] = repl_lean.check([MATHLIB])
    assert result.error_free, result
