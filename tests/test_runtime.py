"""The runtime API against the real embedded Lean.

One mixed batch of sources goes through `check` once (module fixture); the tests then read
their own source's result. Isolation probes come in pairs: a source that tries to change
the elaboration of later sources, then a source that would behave differently if it had.
"""

from __future__ import annotations

import pytest

from leangym.lean_project import LeanRuntime, SourceResult

MIXED: dict[str, str] = {
    "true_simp": "theorem t (n : Nat) : n + 0 = n := by simp",
    "true_omega": "theorem t (a b : Nat) (h : a < b) : a + 1 ≤ b := by omega",
    "false_decide": "theorem t : 2 + 2 = 5 := by decide",
    "false_multiline": "theorem t (n : Nat) : n * 2 = n + n := by\n  induction n with\n  | zero => rfl\n  | succ k ih => exact no_such_lemma",
    "sorry": "theorem t : 1 = 2 := by sorry",
    "unknown_ident": "theorem t : True := foo_bar_baz",
    "parse_error": "theorem t : True := by\n  exact (",
    "term_proof": "theorem t : ∀ n : Nat, n = n := fun _ => rfl",
    "same_name_1": "theorem twin : 1 + 1 = 2 := rfl",
    "same_name_2": "theorem twin : 2 + 2 = 4 := rfl",
    # long enough that stdin reads cut multi-byte characters (`∨` is 3 bytes)
    "long_unicode": "theorem t (n : Nat) (h : " + " ∨ ".join(f"n = {i}" for i in range(80)) + ") : n < 80 := by omega",
    # local notation and set_option stay inside their source
    "local_notation": 'local notation "ONE" => (1 : Nat)\ntheorem t : ONE + ONE = 2 := rfl',
    "after_local_notation": "theorem t : ONE + ONE = 2 := rfl",
    "set_option_pp": "set_option pp.all true\ntheorem t : True := trivial",
    "after_set_option": "#check (1 + 1 : Nat)",
    "open_ns": "open Nat in\ntheorem t (n : Nat) : succ n = n + 1 := rfl",
    "after_open": "theorem t (n : Nat) : succ n = n + 1 := rfl",
    # global effects: these run alone, and must not reach the probes after them
    "global_instance": "instance : OfNat Nat 99 := ⟨3⟩\ntheorem t : (99 : Nat) = 3 := rfl",
    "after_instance": "theorem t : (99 : Nat) = 3 := rfl",
    "global_simp": "def myConst : Nat := 7\n@[simp] theorem myConst_eq : myConst = 7 := rfl\ntheorem t : myConst = 7 := by simp",
    "global_simp_attribute": "attribute [simp] Nat.mul_comm\ntheorem t (a b : Nat) : a * b = b * a := by simp",
    "after_global_simp_attribute": "theorem t (a b : Nat) : a * b = b * a := by simp",
    "unterminated": "theorem t : True := by\n  /- this comment never ends\n  trivial",
    "after_unterminated": "theorem t : 3 = 3 := rfl",
    "exit": "theorem t : True := trivial\n#exit\ntheorem u : False := trivial",
    "after_exit": "theorem t : 4 = 4 := rfl",
    "std_import": "import Std.Data.HashMap\n\ntheorem t : (Std.HashMap.emptyWithCapacity 4 : Std.HashMap Nat Nat).size = 0 := by\n  simp",
    "mathlib": "import Mathlib\ntheorem t : 1 = 1 := rfl",
}


@pytest.fixture(scope="module")
def mixed(lean: LeanRuntime) -> dict[str, SourceResult]:
    results = lean.check(list(MIXED.values()))
    return dict(zip(MIXED, results, strict=True))


def errors(res: SourceResult) -> list[str]:
    return [m.text for m in res.messages if m.severity == "error"]


@pytest.mark.parametrize(
    "name", ["true_simp", "true_omega", "term_proof", "open_ns", "same_name_1", "same_name_2", "long_unicode"]
)
def test_true_theorems_are_accepted(mixed: dict[str, SourceResult], name: str) -> None:
    assert mixed[name].status == "ok"
    assert mixed[name].error_free, mixed[name].messages


def test_false_theorem_error_is_at_the_failing_tactic(mixed: dict[str, SourceResult]) -> None:
    res = mixed["false_decide"]
    assert res.status == "ok" and not res.error_free
    [err] = [m for m in res.messages if m.is_error]
    assert (err.pos.line, err.pos.column) == (1, MIXED["false_decide"].index("decide"))
    assert "2 + 2 = 5" in err.text


def test_error_on_a_later_line_maps_to_that_line(mixed: dict[str, SourceResult]) -> None:
    [err] = [m for m in mixed["false_multiline"].messages if m.is_error]
    assert err.pos.line == 4
    assert err.pos.column == MIXED["false_multiline"].split("\n")[3].index("no_such_lemma")


def test_sorry_is_a_warning_of_kind_has_sorry(mixed: dict[str, SourceResult]) -> None:
    res = mixed["sorry"]
    assert res.status == "ok" and res.error_free  # Lean accepts it with a warning: the verifier rejects it
    [warn] = res.messages
    assert (warn.severity, warn.kind, warn.text) == ("warning", "hasSorry", "declaration uses `sorry`")
    assert (warn.pos.line, warn.pos.column) == (1, MIXED["sorry"].index("t :"))


def test_every_message_belongs_to_its_own_source(mixed: dict[str, SourceResult]) -> None:
    assert len(MIXED) >= 20
    assert any("foo_bar_baz" in e for e in errors(mixed["unknown_ident"]))
    assert errors(mixed["parse_error"])
    for name, res in mixed.items():
        n_lines = MIXED[name].count("\n") + 1
        for m in res.messages:
            assert 1 <= m.pos.line <= n_lines, (name, m)
        if name not in ("unknown_ident",):
            assert not any("foo_bar_baz" in e for e in errors(res)), name


def test_namespaces_do_not_leak_into_messages(mixed: dict[str, SourceResult]) -> None:
    for res in mixed.values():
        assert not any("LG" in m.text and ".S" in m.text for m in res.messages)


def test_local_notation_and_options_stay_in_their_source(mixed: dict[str, SourceResult]) -> None:
    assert mixed["local_notation"].error_free
    assert errors(mixed["after_local_notation"])
    assert mixed["set_option_pp"].error_free
    [info] = mixed["after_set_option"].messages
    assert info.text == "1 + 1 : Nat"  # with pp.all leaked it would print `@HAdd.hAdd Nat Nat Nat …`
    assert errors(mixed["after_open"])  # `succ` unknown without `open Nat`


def test_global_instance_and_attribute_do_not_reach_neighbours(mixed: dict[str, SourceResult]) -> None:
    assert mixed["global_instance"].error_free
    assert errors(mixed["after_instance"])  # 99 is 99 again
    assert mixed["global_simp"].error_free
    assert mixed["global_simp_attribute"].error_free  # with `Nat.mul_comm` a simp lemma, simp proves it
    assert errors(mixed["after_global_simp_attribute"])  # and without it, not: the attribute stayed behind


def test_unterminated_comment_and_exit_spoil_nothing_else(mixed: dict[str, SourceResult]) -> None:
    assert any("unterminated comment" in e for e in errors(mixed["unterminated"]))
    assert mixed["after_unterminated"].error_free
    exit_messages = mixed["exit"].messages
    assert mixed["exit"].status == "ok" and any("exit" in m.text for m in exit_messages)
    assert not any("False" in m.text for m in exit_messages)  # `theorem u : False` after it was never checked
    assert mixed["after_exit"].error_free


def test_other_imports_are_checked_in_their_own_group(mixed: dict[str, SourceResult]) -> None:
    res = mixed["std_import"]
    assert res.error_free, res.messages


def test_an_import_the_runtime_lacks_is_an_infrastructure_error(mixed: dict[str, SourceResult]) -> None:
    res = mixed["mathlib"]
    assert res.status == "error" and res.error is not None
    assert res.error.kind == "unsupported_import"
    assert "native" in res.error.detail


def test_a_looping_source_times_out_and_its_neighbours_keep_their_verdicts(lean: LeanRuntime) -> None:
    slow = "theorem slow : True := by\n  sleep 600000\n  trivial"
    before, looping, after, bad = lean.check(
        ["theorem a : 1 + 1 = 2 := rfl", slow, "theorem b : 2 + 1 = 3 := rfl", "theorem c : 1 = 2 := by decide"],
        timeout=8,
    )
    assert looping.status == "timeout" and looping.error is not None and looping.error.kind == "timeout"
    assert before.error_free and after.error_free
    assert bad.status == "ok" and errors(bad)
