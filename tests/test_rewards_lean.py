"""The verifier against the real embedded Lean: red team, controls, mixed batches, adapters, CLI.

Every submission of the red-team, control and mixed suites goes through ONE `verify_batch`
(one `runtime.check` call, module-scoped); each test then asserts on one precomputed verdict.
The wall-clock timeout case needs another policy, so it is a second, small batch. The TRL
and verl adapters and the CLI are called on submissions of the first batch: they must be
answered from the shared verifier's cache, without a new Lean run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import verify_in_one_batch  # pytest puts tests/ on sys.path

from leangym.cli import main as leangym_main
from leangym.lean_project import LeanRuntime
from leangym.rewards import Policy, Problem, Verdict, compute_score_batch, get_verifier, make_lean_reward
from leangym.rewards.audit import AUDIT_PROGRAM, judge_audit, parse_axioms

pytestmark = pytest.mark.lean

F2F_HEADER = "set_option maxHeartbeats 0\n\nopen Nat\n\n"  # miniF2F's header shape, core Lean only
F2F_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "minif2f.jsonl"  # rows as they are

P = {
    "add_zero": Problem("add_zero'", "theorem add_zero' (n : Nat) : n + 0 = n := by"),
    "add_comm": Problem("add_comm'", "theorem add_comm' (a b : Nat) : a + b = b + a := by", header=F2F_HEADER),
    "two_two": Problem("two_two", "theorem two_two : (2 : Nat) + 2 = 4 := by"),
    "one_one": Problem("one_one_three", "theorem one_one_three : (1 : Nat) + 1 = 3 := by"),  # false
    "false": Problem("false_thm", "theorem false_thm : False := by"),
    "lt_succ": Problem("lt_succ'", "theorem lt_succ' (n : Nat) : n < n + 1 :="),
    "and_swap": Problem("and_swap'", "theorem and_swap' (p q : Prop) (h : p ∧ q) : q ∧ p :="),
    "zero_add": Problem("zero_add'", "theorem zero_add' (n : Nat) : 0 + n = n := by"),
    "trans": Problem("eq_trans'", "theorem eq_trans' (a b c : Nat) (h₁ : a = b) (h₂ : b = c) : a = c := by"),
    "or_comm": Problem("or_comm'", "theorem or_comm' (p q : Prop) : p ∨ q → q ∨ p := by"),
    "rev_rev": Problem("rev_rev", "theorem rev_rev (l : List Nat) : l.reverse.reverse = l := by"),
    "small_sq": Problem("small_sq", "theorem small_sq : ∀ n < 10, n * n ≠ 2 := by"),
    "mathlib": Problem("needs_mathlib", "theorem needs_mathlib (x : Nat) : x = x := by", header="import Mathlib\n"),
}

ADD_COMM_FILE = F2F_HEADER + "theorem add_comm' (a b : Nat) : a + b = b + a := by\n  omega\n"


@dataclass(frozen=True)
class Case:
    id: str
    problem: str
    submission: str | bytes
    outcome: str = "rejected"
    reasons: tuple[str, ...] = ()  # each must be among the verdict's reasons


def omega_split(n: int) -> Problem:
    """A true statement on which `omega` splits 2^n cases: slow for n = 16, heartbeat-hungry for n = 8."""
    xs = " ".join(f"x{i}" for i in range(n))
    hs = " ".join(f"(h{i} : x{i} = 0 ∨ x{i} = 1)" for i in range(n))
    total = " + ".join(f"x{i}" for i in range(n))
    return Problem(f"split{n}", f"theorem split{n} ({xs} : Nat) {hs} (h : {total} = 100) : False := by", F2F_HEADER)


# --- red team: every class of docs/verification.md, each with the reason code it must earn ---
RED_TEAM = [
    # sorry and its variants
    Case("sorry", "add_zero", "  sorry", reasons=("sorry",)),
    Case("admit", "add_zero", "  admit", reasons=("sorry",)),
    Case("sorryAx", "add_zero", "  exact sorryAx _ true", reasons=("sorry",)),
    Case("sorry-escaped-name", "add_zero", "  exact «sorry»", reasons=("sorry",)),
    Case("sorry-in-first", "add_zero", "  first | sorry | simp", reasons=("sorry",)),
    Case("sorry-after-comment", "add_zero", "  /- fine -/ sorry", reasons=("sorry",)),
    Case("sorry-in-interpolation", "add_zero", '  have : s!"{sorry}" = "" := rfl\n  simp', reasons=("sorry",)),
    Case("stop-tactic", "add_zero", "  stop\n  simp", reasons=("sorry",)),  # only Lean can tell
    Case(
        "decreasing-by-sorry",
        "add_zero",
        "  exact f n\nwhere\n  f (m : Nat) : m + 0 = m := by simp\n  decreasing_by sorry",
        reasons=("sorry",),
    ),
    # code the kernel does not check
    Case("native_decide", "two_two", "  native_decide", reasons=("forbidden_construct:native_decide",)),
    Case("decide-native", "two_two", "  decide +native", reasons=("forbidden_construct:native_decide",)),
    Case(
        "decide-config-native",
        "two_two",
        "  decide (config := { native := true })",
        reasons=("forbidden_construct:native_decide",),
    ),
    Case("ofReduceBool", "two_two", "  exact Lean.ofReduceBool _ _ rfl", reasons=("forbidden_construct:ofReduceBool",)),
    Case(
        "ofReduceBool-opened",
        "two_two",
        "  open Lean in exact of_decide_eq_true (ofReduceBool _ _ rfl)",
        reasons=("forbidden_construct:ofReduceBool",),
    ),
    Case(
        "trustCompiler",
        "two_two",
        "  have := Lean.trustCompiler\n  decide",
        reasons=("forbidden_construct:trustCompiler",),
    ),
    Case("bv_decide", "two_two", "  bv_decide", reasons=("forbidden_construct:bv_decide",)),
    Case("unsafe", "two_two", "  exact unsafe (rfl)", reasons=("forbidden_construct:unsafe",)),
    Case(
        "implemented_by",
        "two_two",
        "  decide\n@[implemented_by id] def f (n : Nat) := n",
        reasons=("extra_declarations", "forbidden_construct:implemented_by"),
    ),
    # axioms and other declarations in whole files or bodies
    Case(
        "axiom-file",
        "false",
        "axiom cheat : False\ntheorem false_thm : False := cheat",
        reasons=("extra_declarations",),
    ),
    Case(
        "axiom-file-fenced",
        "false",
        "```lean4\naxiom cheat : False\n\ntheorem false_thm : False := by\n  exact cheat\n```",
        reasons=("extra_declarations",),
    ),
    Case("axiom-after-body", "false", "  exact cheat\naxiom cheat : False", reasons=("extra_declarations",)),
    Case(
        "second-theorem", "add_zero", "  simp\ntheorem extra : False := sorry", reasons=("extra_declarations", "sorry")
    ),
    Case(
        "close-comment-then-command",
        "add_zero",
        "  simp -/\ntheorem x : True := trivial",
        reasons=("extra_declarations",),
    ),
    # a different statement under the same name
    Case(
        "statement-changed",
        "one_one",
        "theorem one_one_three : (1 : Nat) + 1 = 2 := rfl",
        reasons=("statement_modified",),
    ),
    Case(
        "hypothesis-added",
        "false",
        "theorem false_thm (h : False) : False := by\n  exact h",
        reasons=("statement_modified",),
    ),
    Case(
        "name-homoglyph",
        "add_zero",
        "theorem аdd_zero' (n : Nat) : n + 0 = n := by\n  simp",
        reasons=("statement_modified",),
    ),  # Cyrillic а
    Case("header-changed", "add_comm", ADD_COMM_FILE.replace("open Nat", "open Nat Int"), reasons=("header_modified",)),
    # instances, notations, macros and attributes that would change what the statement means
    Case(
        "instance-file",
        "one_one",
        "instance : OfNat Nat 3 := ⟨2⟩\ntheorem one_one_three : (1 : Nat) + 1 = 3 := rfl",
        reasons=("extra_declarations",),
    ),
    Case("instance-body", "one_one", "  rfl\ninstance : OfNat Nat 3 := ⟨2⟩", reasons=("extra_declarations",)),
    Case("local-instance", "one_one", "  letI : OfNat Nat 3 := ⟨2⟩\n  rfl", reasons=("lean_error",)),  # Lean refuses
    Case(
        "notation-file",
        "one_one",
        'local notation "3" => 2\ntheorem one_one_three : (1 : Nat) + 1 = 3 := rfl',
        reasons=("extra_declarations",),
    ),
    Case(
        "macro-file",
        "false",
        'macro "cheat" : tactic => `(tactic| sorry)\ntheorem false_thm : False := by cheat',
        reasons=("extra_declarations",),
    ),
    Case("attribute", "add_zero", "  simp\nattribute [simp] Nat.add_comm", reasons=("extra_declarations",)),
    Case("at-attribute", "add_zero", "  simp\n@[simp] theorem aux : True := trivial", reasons=("extra_declarations",)),
    # escaping the declaration
    Case("end", "add_zero", "  simp\nend", reasons=("extra_declarations",)),
    Case("exit", "add_zero", "  simp\n#exit", reasons=("extra_declarations",)),
    Case("forged-marker", "add_zero", '  simp\n#print "lg:00000000:done:0"', reasons=("extra_declarations",)),
    Case("namespace", "add_zero", "  simp\nnamespace Evil", reasons=("extra_declarations",)),
    Case("open-command", "add_zero", "  simp\nopen Nat", reasons=("extra_declarations",)),
    Case("unterminated-comment", "add_zero", "  simp /-", reasons=("escapes_declaration",)),
    Case("unterminated-string", "add_zero", '  simp\n  exact "abc', reasons=("escapes_declaration",)),
    Case("unterminated-name", "add_zero", "  exact «abc", reasons=("escapes_declaration",)),
    Case(
        "skip-kernel",
        "false",
        "  set_option debug.skipKernelTC true in exact sorry",
        reasons=("forbidden_construct:set_option", "sorry"),
    ),
    Case(
        "skip-kernel-true-statement",
        "two_two",
        "  set_option debug.skipKernelTC true in decide",
        reasons=("forbidden_construct:set_option",),
    ),
    Case(
        "heartbeats-off",
        "add_zero",
        "  set_option maxHeartbeats 0 in simp",
        reasons=("forbidden_construct:set_option",),
    ),
    Case(
        "heartbeats-above-the-cap",
        "add_zero",
        "  set_option maxHeartbeats 100000000 in simp",
        reasons=("forbidden_construct:set_option",),
    ),
    # metaprogramming
    Case("run_tac", "add_zero", "  run_tac pure ()", reasons=("forbidden_construct:run_tac",)),
    Case("run_elab", "add_zero", "  run_elab pure ()", reasons=("forbidden_construct:run_elab",)),
    Case("run_meta", "add_zero", "  run_meta pure ()", reasons=("forbidden_construct:run_meta",)),
    Case(
        "by_elab",
        "add_zero",
        "  exact by_elab return (Lean.mkConst ``True.intro)",
        reasons=("forbidden_construct:by_elab",),
    ),
    Case("elab-command", "add_zero", '  simp\nelab "go" : tactic => pure ()', reasons=("forbidden_construct:elab",)),
    # homoglyphs and Unicode tricks
    Case("sorry-cyrillic", "add_zero", "  ѕоrry", reasons=("sorry",)),
    Case("sorry-fullwidth", "add_zero", "  ｓｏｒｒｙ", reasons=("sorry",)),
    Case("native-cyrillic", "two_two", "  nativе_decide", reasons=("forbidden_construct:native_decide",)),
    Case(
        "ofReduceBool-greek",
        "two_two",
        "  exact Lean.οfReduceBool _ _ rfl",
        reasons=("forbidden_construct:ofReduceBool",),
    ),
    Case("zero-width", "add_zero", "  sor\u200bry", reasons=("bad_encoding",)),
    Case("bidi-override", "add_zero", "  simp -- \u202e", reasons=("bad_encoding",)),
    # fences
    Case(
        "fence-sorry",
        "add_zero",
        "```lean\ntheorem add_zero' (n : Nat) : n + 0 = n := by\n  sorry\n```",
        reasons=("sorry",),
    ),
    Case("last-fence-wins", "add_zero", "```lean\n  simp\n```\nor better:\n```lean4\n  admit\n```", reasons=("sorry",)),
    # limits, encoding, emptiness, wrong proofs, and a runtime that cannot load the header
    Case("too-large", "add_zero", "  simp" + " " * 70_000, reasons=("too_large",)),
    Case("invalid-utf8", "add_zero", b"  simp \xff\xfe", reasons=("bad_encoding",)),
    Case("empty", "add_zero", "", reasons=("empty_proof",)),
    Case("comment-only", "add_zero", "  -- omega", reasons=("empty_proof",)),
    Case("wrong-proof", "one_one", "  rfl", reasons=("lean_error",)),
    Case("wrong-tactic", "add_comm", "  simp only []", reasons=("lean_error",)),
    Case("omega-fails", "false", "  exact (by omega : False)", reasons=("lean_error",)),
    Case("mathlib-header", "mathlib", "  rfl", outcome="error", reasons=("unsupported_import", "needs_runtime:native")),
]

# --- controls: correct proofs in every style a prover writes; all must be accepted ---
CONTROLS = [
    Case("omega", "add_comm", "  omega", "proved"),
    # options that only bound search or printing are allowed in a proof
    Case("option-maxRecDepth", "add_comm", "  set_option maxRecDepth 2000 in omega", "proved"),
    Case("option-heartbeats-under-cap", "two_two", "  set_option maxHeartbeats 100000 in decide", "proved"),
    Case("option-pp", "add_zero", "  set_option pp.all true in simp", "proved"),
    Case("simp", "add_zero", "  simp", "proved"),
    Case("decide", "two_two", "  decide", "proved"),
    Case("rfl-tactic", "two_two", "  rfl", "proved"),
    Case("term", "lt_succ", " Nat.lt_succ_self n", "proved"),
    Case("anonymous-constructor", "and_swap", " ⟨h.2, h.1⟩", "proved"),
    Case("by-after-assign", "lt_succ", " by omega", "proved"),
    Case(
        "induction", "zero_add", "  induction n with\n  | zero => rfl\n  | succ k ih => rw [Nat.add_succ, ih]", "proved"
    ),
    Case("calc", "trans", "  calc a = b := h₁\n    _ = c := h₂", "proved"),
    Case("where", "add_zero", "  exact aux n\nwhere\n  aux (m : Nat) : m + 0 = m := by simp", "proved"),
    Case("have", "add_zero", "  have h : n + 0 = n := by simp\n  exact h", "proved"),
    Case("rcases", "or_comm", "  intro h\n  rcases h with h | h\n  · exact Or.inr h\n  · exact Or.inl h", "proved"),
    Case(
        "match",
        "or_comm",
        "  intro h\n  match h with\n  | .inl hp => exact .inr hp\n  | .inr hq => exact .inl hq",
        "proved",
    ),
    Case("fun-term", "and_swap", " match h with\n  | ⟨hp, hq⟩ => ⟨hq, hp⟩", "proved"),
    Case("simp-lemma", "rev_rev", "  simp [List.reverse_reverse]", "proved"),
    Case("decide-bounded", "small_sq", "  decide", "proved"),
    Case("constructor", "and_swap", " by\n  constructor\n  · exact h.2\n  · exact h.1", "proved"),
    Case("simp_all", "trans", "  simp_all", "proved"),
    Case("subst", "trans", "  subst h₁\n  subst h₂\n  rfl", "proved"),
    Case("exact-question-mark", "add_comm", "  exact?", "proved"),  # succeeds: a suggestion, not a sorry
    Case("open-in", "add_comm", "  open Nat in omega", "proved"),
    Case("open-renaming-in", "zero_add", "  open Nat renaming zero_add → za in\n  exact za n", "proved"),
    Case("no-indent", "add_zero", "simp", "proved"),
    Case("leading-newline", "add_zero", "\n  simp", "proved"),
    Case("comment-mentions-sorry", "add_zero", "  simp -- sorry, admit and native_decide are refused", "proved"),
    Case("block-comment-nested", "add_zero", "  /- /- sorry -/ native_decide -/\n  simp", "proved"),
    Case("string-mentions-sorry", "add_zero", '  have : "sorry".length = 5 := rfl\n  simp', "proved"),
    Case("fenced-body", "add_zero", "Here is the proof:\n```lean4\n  simp\n```\nDone.", "proved"),
    Case("text-outside-fence-ignored", "add_zero", "```lean\n  simp\n```\naxiom cheat : False", "proved"),
    Case("whole-file", "add_comm", ADD_COMM_FILE, "proved"),
    Case(
        "whole-file-fenced-doc",
        "add_comm",
        "```lean4\n" + F2F_HEADER + "/-- The informal statement. -/\n"
        "theorem add_comm' (a b : Nat) : a + b = b + a := by\n  omega\n```",
        "proved",
    ),
    Case(
        "whole-file-no-header", "add_comm", "theorem add_comm'  (a b : Nat) :\n    a + b = b + a := by omega", "proved"
    ),
    Case("whole-file-crlf", "add_zero", "theorem add_zero' (n : Nat) : n + 0 = n := by\r\n  simp\r\n", "proved"),
    Case(
        "whole-file-tactic-on-by-line",
        "zero_add",
        "theorem zero_add' (n : Nat) : 0 + n = n := by induction n with\n"
        "  | zero => rfl\n  | succ k ih => rw [Nat.add_succ, ih]",
        "proved",
    ),
    Case("whole-file-term", "lt_succ", "theorem lt_succ' (n : Nat) : n < n + 1 := Nat.lt_succ_self n", "proved"),
]


def _mixed() -> list[Case]:
    """Bad submissions that reach Lean, each between two good ones told apart by a comment."""
    cases: list[Case] = []
    bad = [c for c in RED_TEAM if c.id in ("wrong-proof", "stop-tactic", "local-instance", "omega-fails")]
    for k, b in enumerate(bad):
        cases.append(Case(f"mixed-good-{k}a", "add_comm", f"  omega -- {k}a", "proved"))
        cases.append(Case(f"mixed-bad-{k}", b.problem, str(b.submission) + f"\n  -- {k}", b.outcome, b.reasons))
        cases.append(Case(f"mixed-good-{k}b", "two_two", f"  decide -- {k}b", "proved"))
    return cases


MIXED = _mixed()
ALL = RED_TEAM + CONTROLS + MIXED


@pytest.fixture(scope="module")
def verdicts(lean: LeanRuntime) -> dict[str, Verdict]:
    """Every case of the three suites, verified in one batch by the shared verifier."""
    out = verify_in_one_batch(lean, [(P[c.problem], c.submission) for c in ALL])
    return dict(zip([c.id for c in ALL], out, strict=True))


def test_suite_sizes() -> None:
    assert len(RED_TEAM) >= 40 and len(CONTROLS) >= 30
    assert len({c.id for c in ALL}) == len(ALL)


@pytest.mark.parametrize("case", RED_TEAM, ids=lambda c: c.id)
def test_red_team_is_refused(case: Case, verdicts: dict[str, Verdict]) -> None:
    v = verdicts[case.id]
    assert v.outcome == case.outcome, (v.reasons, v.detail)
    assert set(case.reasons) <= set(v.reasons), (v.reasons, v.detail)
    assert v.reward == 0.0


@pytest.mark.parametrize("case", CONTROLS, ids=lambda c: c.id)
def test_control_is_accepted(case: Case, verdicts: dict[str, Verdict]) -> None:
    v = verdicts[case.id]
    assert v.outcome == "proved", (v.reasons, v.detail, [m.text for m in v.messages])
    assert v.reasons == () and v.reward == 1.0


@pytest.mark.parametrize("case", MIXED, ids=lambda c: c.id)
def test_mixed_batch_neighbours_keep_their_verdicts(case: Case, verdicts: dict[str, Verdict]) -> None:
    v = verdicts[case.id]
    assert v.outcome == case.outcome, (v.reasons, v.detail)
    assert set(case.reasons) <= set(v.reasons)


# --- limits: heartbeats (overriding the header's `maxHeartbeats 0`) and the wall clock ---


CRASH = Problem("long_range", "theorem long_range : (List.range 20000).length = 20000 := by")


@pytest.fixture(scope="module")
def limit_verdicts(lean: LeanRuntime) -> dict[str, list[Verdict]]:
    """Two small batches under other policies: a low heartbeat limit; no heartbeat limit and a 3 s wall clock."""
    good = (P["add_comm"], "  exact Nat.add_comm a b")
    # The kernel does not count heartbeats: its deep recursion on a long list brings the embedded Lean down.
    crash = (CRASH, "  decide +kernel")
    beats = get_verifier(lean, Policy(max_heartbeats=1000))
    beats_batch = [(omega_split(8), "  omega"), good, (P["two_two"], "  decide"), crash]  # last: no Lean restart
    clock = get_verifier(lean, Policy(max_heartbeats=0, timeout=3.0))
    clock_batch = [good, (omega_split(16), "  omega"), (P["two_two"], "  decide")]  # 2^16 cases: minutes
    return {"heartbeats": beats.verify_batch(beats_batch), "clock": clock.verify_batch(clock_batch)}


def test_heartbeat_limit_overrides_the_header(limit_verdicts: dict[str, list[Verdict]]) -> None:
    hungry, good, _, _ = limit_verdicts["heartbeats"]
    assert hungry.outcome == "rejected" and "heartbeats" in hungry.reasons, hungry
    assert good.proved


def test_a_proof_that_crashes_lean_is_rejected_and_spares_its_neighbours(
    limit_verdicts: dict[str, list[Verdict]],
) -> None:
    _, first, second, crash = limit_verdicts["heartbeats"]
    # Checked again alone and crashing again: rejected, not an `error` a policy could hide behind.
    assert crash.outcome == "rejected" and crash.reasons == ("lean_crash",), crash
    assert first.proved and second.proved, (first, second)  # a crash must not be blamed on them


def test_wall_clock_timeout_spares_its_neighbours(limit_verdicts: dict[str, list[Verdict]]) -> None:
    before, spin, after = limit_verdicts["clock"]
    assert spin.outcome == "rejected" and spin.reasons == ("timeout",), spin
    assert before.proved and after.proved, (before, after)


# --- the cache, message positions, adapters and the CLI (answered from the cache) ---


def test_repeats_are_served_from_the_cache(lean: LeanRuntime, verdicts: dict[str, Verdict]) -> None:
    verifier = get_verifier(lean, Policy())
    runs = lean.lean_batches
    group = [(P["add_comm"], "  omega")] * 4 + [(P["add_zero"], "  sorry")] * 2  # a GRPO group repeats samples
    again = verifier.verify_batch(group)
    assert lean.lean_batches == runs
    assert all(v.cached for v in again)
    assert [v.outcome for v in again] == ["proved"] * 4 + ["rejected"] * 2
    assert again[0] == verdicts["omega"]  # equal verdicts; `cached` is not part of equality


def test_messages_point_into_the_submitted_text(verdicts: dict[str, Verdict]) -> None:
    wrong = verdicts["wrong-tactic"]  # "  simp only []": the error is on line 1 of the body
    assert wrong.messages and all(m.pos.line == 1 for m in wrong.messages if m.is_error)
    assert any(m.pos.column == 2 for m in wrong.messages if m.is_error)
    local = verdicts["local-instance"]  # "  letI …\n  rfl": `rfl` fails on line 2
    assert any(m.pos.line == 2 and m.is_error for m in local.messages), local.messages


def test_trl_reward_function(lean: LeanRuntime, verdicts: dict[str, Verdict]) -> None:
    reward_fn = make_lean_reward(lean)
    runs = lean.lean_batches
    fenced = next(c for c in CONTROLS if c.id == "fenced-body").submission
    completions = [[{"role": "assistant", "content": fenced}], "  sorry", "  rfl", "  rfl"]  # chat and plain
    keys = ("add_zero", "add_zero", "two_two", "mathlib")
    with pytest.warns(RuntimeWarning, match="1 of 4 samples could not be verified"):
        scores = reward_fn(
            prompts=["p"] * 4,
            completions=completions,
            formal_statement=[P[k].formal_statement for k in keys],
            header=[P[k].header for k in keys],
            trainer_state=None,
        )
    assert scores[:3] == [1.0, 0.0, 1.0]
    assert scores[3] is None  # `import Mathlib` on the embedded runtime: an error, not a 0
    assert lean.lean_batches == runs
    assert reward_fn.__name__ == "lean_reward"


def test_verl_compute_score(lean: LeanRuntime, verdicts: dict[str, Verdict]) -> None:
    get_verifier(lean, Policy())
    runs = lean.lean_batches
    truths = [P["two_two"].formal_statement, {"formal_statement": P["add_comm"].formal_statement, "header": F2F_HEADER}]
    scores = compute_score_batch(["lean", "lean"], ["  decide", "  omega -- 0a"], truths, [None, None])
    assert scores == [1.0, 1.0]
    assert lean.lean_batches == runs


def minif2f_row() -> dict:
    """The first miniF2F row of the shared data (its header imports Mathlib), or one shaped like it."""
    if F2F_DATA.exists():
        return json.loads(F2F_DATA.read_text().splitlines()[0])
    header = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\nopen BigOperators Real Nat Topology Rat\n\n"
    return {"name": "p", "split": "test", "formal_statement": "theorem p (x : ℝ) : x = x := by\n", "header": header}


def test_cli_verify(lean: LeanRuntime, verdicts: dict[str, Verdict], tmp_path: Path) -> None:
    get_verifier(lean, Policy())  # the CLI's `get_verifier("embedded")` then shares this session's Lean
    lines = [
        json.dumps({"name": "add_comm'", "formal_statement": P["add_comm"].formal_statement,
                    "header": F2F_HEADER, "proof": "  omega", "split": "test", "id": 7}),
        json.dumps({"name": "two_two", "formal_statement": P["two_two"].formal_statement,
                    "code": "theorem two_two : (2 : Nat) + 2 = 3 := by decide"}),
        "{not json",
        json.dumps({"name": "both", "formal_statement": "theorem both : True := by", "proof": "trivial", "code": "x"}),
        json.dumps({**minif2f_row(), "proof": "  nlinarith [sq_nonneg (x - y)]"}),  # a miniF2F row as it is
    ]  # fmt: skip
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines) + "\n")
    runs = lean.lean_batches
    assert leangym_main(["verify", str(src), "--out", str(out)]) == 0
    assert lean.lean_batches == runs
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["verdict"] for g in got] == ["proved", "rejected", "error", "error", "error"]
    assert got[0]["name"] == "add_comm'" and got[0]["reward"] == 1.0 and got[0]["split"] == "test" and got[0]["id"] == 7
    assert set(got[0]) >= {"name", "verdict", "reward", "reasons", "messages", "seconds"}
    assert got[1]["reasons"] == ["statement_modified"]
    assert got[2]["reasons"] == ["bad_input"] and got[3]["reasons"] == ["bad_input"]
    assert got[4]["reasons"] == ["unsupported_import", "needs_runtime:native"] and "native" in got[4]["detail"]


def test_audit_program_elaborates(lean: LeanRuntime) -> None:
    """The native audit program type-checks against this Lean's API (it cannot run on the embedded runtime).

    In the same batch, real Lean output that names `#print axioms` without answering it (the
    embedded Lean refuses the command in a `module`) goes through the audit's parser: no pass.
    """
    text = AUDIT_PROGRAM.read_text()
    # The embedded runtime cannot compile code (every file is a `module`): check the definitions only.
    text = text.replace("open Lean\n", "open Lean\nnoncomputable section\n", 1)
    refused = "theorem two : 2 + 2 = 4 := by decide\n#print axioms two"
    result, refusal = lean.check([text, refused], timeout=300)
    assert result.status == "ok", result.error
    assert not result.has_errors, [m.text for m in result.messages if m.is_error]
    [message] = refusal.messages
    assert message.is_error and "#print axioms" in message.text
    output = f"lg-audit: replay ok (1 constants)\nlg-audit: type ok\n{message.text}\n"
    assert parse_axioms(output) is None
    verdict = judge_audit(output, 0, "two", Policy())
    assert verdict is not None and (verdict.outcome, verdict.reasons) == ("error", ("audit_failed",))
