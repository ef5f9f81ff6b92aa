"""The verifier's parts that need no Lean: reading, screening, assembling, policy, audit parsing.

Verdicts themselves are only ever judged by the real Lean (tests/test_rewards_lean.py); the
tests here cover the text handling around it, and the native audit's file generation and
output parsing (a native Lean, when one is installed, runs the real audit at the end).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from leangym.lean_project import InfraError, LeanRuntimeError, Message, Position, SourceResult
from leangym.lean_project.kernel import dependency_order, reference_source
from leangym.lean_project.source import Token
from leangym.rewards import BaseVerifier, Policy, Problem, Verifier, get_verifier
from leangym.rewards.assembly import assemble, judge
from leangym.rewards.audit import NativeAudit, judge_audit, parse_axioms
from leangym.rewards.screen import reasons_of, screen
from leangym.rewards.submission import Rejection, Submission, decode, parse_statement, read_submission, strip_fence

HEADER = "set_option maxHeartbeats 0\n\nopen Nat\n"
PROBLEM = Problem("t", "theorem t (n : Nat) : n + 0 = n := by", header=HEADER)
STATEMENT = parse_statement(PROBLEM.formal_statement)


def read(text: str) -> Submission | Rejection:
    return read_submission(PROBLEM, STATEMENT, text)


# --- decoding ---


def test_decode_normalises_line_endings_and_bom() -> None:
    assert decode("\ufeff  simp\r\n  rfl\r", Policy()) == "  simp\n  rfl\n"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"  simp \xff", "bad_encoding"),
        ("  simp \udcff", "bad_encoding"),  # a lone surrogate: not UTF-8
        ("  sim\u200bp", "bad_encoding"),  # zero-width space
        ("  simp -- \u202e", "bad_encoding"),  # right-to-left override
        ("  simp\x00", "bad_encoding"),
        ("x" * 65_537, "too_large"),
        ("é" * 40_000, "too_large"),  # counted in UTF-8 bytes, not characters
    ],
)
def test_decode_refuses(raw: str | bytes, reason: str) -> None:
    out = decode(raw, Policy())
    assert isinstance(out, Rejection) and out.reasons == (reason,)


def test_max_bytes_is_a_policy_knob() -> None:
    assert isinstance(decode("x" * 100, Policy(max_bytes=10)), Rejection)
    assert decode(b"  simp", Policy()) == "  simp"


# --- fences ---


@pytest.mark.parametrize(
    ("text", "content"),
    [
        ("  simp", "  simp"),
        ("```lean4\n  simp\n```", "  simp\n"),
        ("Proof:\n```lean\n  simp\n```\nThat's it.", "  simp\n"),
        ("```\n  a\n```\n```lean4\n  b\n```", "  b\n"),  # the last Lean block
        ("```lean4\n  a\n```\n```python\nprint()\n```", "  a\n"),  # not a Lean block
        ("~~~lean\n  simp\n~~~", "  simp\n"),
        ("```lean4\n  simp\n  omega", "  simp\n  omega"),  # cut off before the closing fence
    ],
)
def test_strip_fence(text: str, content: str) -> None:
    got, offset = strip_fence(text)
    assert got == content
    assert text[offset : offset + len(got)] == got


# --- statements and whole files ---


def test_parse_statement() -> None:
    assert STATEMENT.name == "t"
    assert STATEMENT.head == "theorem t (n : Nat) : n + 0 = n :="
    assert parse_statement("example : True :=").name is None
    assert parse_statement("theorem u : let x := 1; x = 1 := by").head.endswith("x = 1 :=")
    for bad in ("theorem t : True", "theorem t : True := trivial", "def f := by simp"):
        with pytest.raises(ValueError):
            parse_statement(bad)


def test_body_and_its_position() -> None:
    sub = read("Proof:\n```lean4\n  simp\n```")
    assert sub == Submission("  simp\n", "body", 3, 0, (Token("ident", "simp", 2, 6),))


def test_whole_file_position_and_body() -> None:
    sub = read(HEADER + "\ntheorem t (n : Nat) :\n    n + 0 = n := by simp")
    assert isinstance(sub, Submission) and sub.form == "file"
    assert sub.body == " by simp" and (sub.line, sub.column) == (6, 16)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("theorem t (n : Nat) : n + 1 = n := by simp", "statement_modified"),
        ("theorem t (n : Int) : n + 0 = n := by simp", "statement_modified"),
        ("theorem t : ∀ n : Nat, n + 0 = n := by simp", "statement_modified"),
        ("theorem t (n : Nat) : n + 0 = n := by simp".replace("t (", "τ ("), "statement_modified"),  # Greek τ
        ("open Nat Int\ntheorem t (n : Nat) : n + 0 = n := by simp", "header_modified"),
        ("axiom ax : False\ntheorem t (n : Nat) : n + 0 = n := ax.elim", "extra_declarations"),
        (HEADER + "instance : OfNat Nat 3 := ⟨2⟩\ntheorem t (n : Nat) : n + 0 = n := by simp", "extra_declarations"),
        (
            HEADER + "@[simp] lemma l : True := trivial\ntheorem t (n : Nat) : n + 0 = n := by simp",
            "extra_declarations",
        ),
    ],
)
def test_whole_file_must_restate_exactly(text: str, reason: str) -> None:
    out = read(text)
    assert isinstance(out, Rejection) and out.reasons == (reason,), out


def test_statement_difference_is_explained() -> None:
    out = read("theorem t (n : Nat) : n + 1 = n := by simp")
    assert isinstance(out, Rejection) and "expected `0`, found `1`" in out.detail


@pytest.mark.parametrize(
    "text",
    [
        "theorem t (n : Nat) : n + 0 = n := by simp",  # header left out
        HEADER + "theorem t (n : Nat) : n + 0 = n := by simp",
        "-- a comment\n" + HEADER.replace("\n\n", "\n") + "/-- doc -/\ntheorem  t (n : Nat)\n: n + 0 = n := by simp",
    ],
)
def test_whole_file_accepted_forms(text: str) -> None:
    sub = read(text)
    assert isinstance(sub, Submission) and sub.form == "file" and sub.body.strip() == "by simp"


# --- screening ---


@pytest.mark.parametrize(
    ("body", "reasons"),
    [
        ("  simp -- sorry", ()),
        ('  exact "sorry".length', ()),
        ("  /- native_decide /- nested -/ -/ simp", ()),
        ("  open Nat in simp", ()),
        ("  open scoped Nat in simp", ()),
        ("  exact #[1, 2].size", ()),
        ("  exact @Nat.add_zero n", ()),
        ("  have h₁ : native' = 1 := rfl", ()),  # a name that merely starts like a forbidden one
        ("  sorry", ("sorry",)),
        ("  exact Lean.Elab.sorry", ("sorry",)),
        ('  exact s!"{sorry}"', ("sorry",)),
        ("  exact «sorry»", ("sorry",)),
        ("  ѕоrry", ("sorry",)),
        ("  ｓｏｒｒｙ", ("sorry",)),
        ("  native_decide", ("forbidden_construct:native_decide",)),
        ("  decide +native", ("forbidden_construct:native_decide",)),
        ("  exact ofReduceBool _ _ rfl", ("forbidden_construct:ofReduceBool",)),
        ("  exact Lean.οfReduceBool _ _ rfl", ("forbidden_construct:ofReduceBool",)),  # Greek ο
        ("  bv_decide", ("forbidden_construct:bv_decide",)),
        ("  run_tac pure ()", ("forbidden_construct:run_tac",)),
        ("  exact unsafe 1", ("forbidden_construct:unsafe",)),
        ("  set_option maxHeartbeats 0 in simp", ("forbidden_construct:set_option",)),  # 0: no limit
        ("  set_option maxHeartbeats 400001 in simp", ("forbidden_construct:set_option",)),  # above the cap
        ("  set_option synthInstance.maxHeartbeats 0 in simp", ("forbidden_construct:set_option",)),
        ("  set_option debug.skipKernelTC true in simp", ("forbidden_construct:set_option",)),
        ("  set_option Elab.async false in simp", ("forbidden_construct:set_option",)),  # not on the list
        ("  set_option maxRecDepth 9999\n  simp", ("forbidden_construct:set_option",)),  # no `in`: a command
        ("  set_option maxRecDepth 9999 in simp", ()),
        ("  set_option maxHeartbeats 400000 in simp", ()),
        ("  set_option synthInstance.maxSize 256 in simp", ()),
        ("  set_option pp.all true in simp", ()),
        ("  set_option trace.Meta.Tactic.simp true in simp", ()),
        ("  simp\nend", ("extra_declarations",)),
        ("  simp\n#exit", ("extra_declarations",)),
        ("  simp\nopen Nat", ("extra_declarations",)),
        ("  simp\ntheorem u : True := trivial", ("extra_declarations",)),
        ("  simp\n@[simp] def f := 1", ("extra_declarations",)),
        ("  simp\nthеorem u : True := trivial", ("extra_declarations",)),  # Cyrillic е
        ("  simp /-", ("escapes_declaration",)),
        ('  exact "', ("escapes_declaration",)),
    ],
)
def test_screen(body: str, reasons: tuple[str, ...]) -> None:
    assert reasons_of(screen(body, Policy())) == reasons


def test_screen_policy_knobs() -> None:
    lenient = Policy(allow_native_decide=True, allowed_options=("maxRecDepth", "debug.*"), max_heartbeats=0)
    assert screen("  native_decide", lenient) == []
    assert screen("  decide +native", lenient) == []
    assert screen("  set_option maxRecDepth 9999 in simp", lenient) == []
    assert reasons_of(screen("  set_option pp.all true in simp", lenient)) == ("forbidden_construct:set_option",)
    assert reasons_of(screen("  set_option debug.skipKernelTC true in simp", lenient)) == (
        "forbidden_construct:set_option",
    )  # never, whatever the list says
    assert screen("  set_option maxHeartbeats 10 in simp", Policy(max_heartbeats=0)) == []  # no cap: any limit
    assert reasons_of(screen("  set_option maxHeartbeats 0 in simp", Policy(max_heartbeats=0))) == (
        "forbidden_construct:set_option",
    )
    assert reasons_of(screen("  sorry", lenient)) == ("sorry",)
    assert reasons_of(screen("  run_tac pure ()", lenient)) == ("forbidden_construct:run_tac",)


# --- assembly ---


def test_assembly_is_trusted_text_around_the_body() -> None:
    sub = read("  simp")
    assert isinstance(sub, Submission)
    assembled = assemble(PROBLEM, STATEMENT, sub, Policy(max_heartbeats=1234))
    assert assembled.source == (
        HEADER + "set_option maxHeartbeats 1234 in\n" + PROBLEM.formal_statement + "\n  simp\n\nexample := @t\n"
    )
    assert assembled.to_submission(Position(assembled.body_line, 4)) == Position(1, 4)
    assert assembled.to_submission(Position(1, 0)) == Position(1, 0)  # in the trusted header: clamped
    assert assembled.in_existence_check(Position(assembled.body_line + 2, 0))


def test_whole_file_body_keeps_its_columns() -> None:
    text = "theorem t (n : Nat) : n + 0 = n := by induction n with\n  | zero => rfl\n  | succ k ih => simp"
    sub = read(text)
    assert isinstance(sub, Submission)
    assembled = assemble(PROBLEM, STATEMENT, sub, Policy())
    line = assembled.source.splitlines()[assembled.body_line - 1]
    assert line == " " * sub.column + " by induction n with"
    assert assembled.to_submission(Position(assembled.body_line, sub.column + 4)) == Position(1, sub.column + 4)
    assert assembled.to_submission(Position(assembled.body_line + 2, 5)) == Position(3, 5)


def test_lean_failing_twice_on_a_proof_is_the_proofs_doing_and_an_infrastructure_failure_is_not() -> None:
    """The runtime re-checks a source Lean failed on in a fresh process; what still fails there is
    the source's doing (rejected: a policy must not escape a 0 through a crash or forged output)."""
    sub = read("  decide")
    assert isinstance(sub, Submission)
    assembled = assemble(PROBLEM, STATEMENT, sub, Policy())
    expected = {"crash": "lean_crash", "out_of_memory": "out_of_memory", "protocol": "protocol_violation"}
    for kind, reason in expected.items():
        v = judge(SourceResult("error", error=InfraError(kind, "twice")), assembled)
        assert (v.outcome, v.reasons) == ("rejected", (reason,)), kind
    v = judge(SourceResult("error", error=InfraError("startup", "no Lean")), assembled)
    assert (v.outcome, v.reasons) == ("error", ("runtime_error:startup",))


def test_what_goes_to_the_judge_is_what_the_verifier_reads_as_accepted() -> None:
    """`SourceResult.accepted` (the runtime sends those results to the judge) and `judge(...).proved`
    (the verifier then needs the judge's answer) agree on every kind of result."""
    sub = read("  decide")
    assert isinstance(sub, Submission)
    assembled = assemble(PROBLEM, STATEMENT, sub, Policy())
    at, after = Position(assembled.body_line, 2), Position(assembled.body_end_line + 2, 0)  # body; existence check
    results = [
        SourceResult("ok"),
        SourceResult("ok", [Message("information", "ok", at)]),
        SourceResult("ok", [Message("warning", "unused variable", at)]),
        SourceResult("ok", [Message("warning", "declaration uses 'sorry'", at)]),
        SourceResult("ok", [Message("warning", "x", at, kind="hasSorry")]),
        SourceResult("ok", [Message("error", "type mismatch", at)]),
        SourceResult("ok", [Message("error", "unknown identifier 't'", after)]),
        SourceResult("timeout", error=InfraError("timeout", "slow")),
        SourceResult("error", error=InfraError("crash", "twice")),
        SourceResult("error", error=InfraError("startup", "no Lean")),
    ]
    for result in results:
        assert judge(result, assembled).proved == result.accepted, result
    assert [r.accepted for r in results] == [True, True, True, False, False, False, False, False, False, False]


# --- policy ---


def test_policy_defaults_and_key() -> None:
    policy = Policy()
    assert policy.allowed_axioms == {"propext", "Classical.choice", "Quot.sound"}
    assert "Lean.ofReduceBool" in Policy(allow_native_decide=True).allowed_axioms
    assert policy.key() == Policy().key() != Policy(timeout=5).key()
    with pytest.raises(AttributeError):
        policy.timeout = 1  # type: ignore[misc]


# --- the verifier interface ---


def test_every_verifier_is_a_base_verifier_and_refuses_unreadable_bytes_itself() -> None:
    """Environments, trainers and commands take a `BaseVerifier`: the three verifiers are one each,
    and a server's verifier refuses bytes that are not UTF-8 before it asks the server (none runs here)."""
    from leangym.client import RemoteVerifier
    from leangym.rewards.distributed import RayVerifier

    assert all(issubclass(kind, BaseVerifier) for kind in (Verifier, RemoteVerifier, RayVerifier))
    with RemoteVerifier("http://127.0.0.1:9") as remote:  # port 9 (discard): nothing answers there
        verdict = remote.verify(Problem("t", "theorem t : True := by"), b"  trivial \xff")
    assert (verdict.outcome, verdict.reasons) == ("rejected", ("bad_encoding",))


# --- the native audit's text handling ---


@pytest.mark.parametrize(
    ("output", "axioms"),
    [
        (
            "'x' depends on axioms: [propext, Classical.choice, Quot.sound]",
            ("propext", "Classical.choice", "Quot.sound"),
        ),
        ("'x' does not depend on any axioms", ()),
        ("info: 'foo'' depends on axioms: [propext,\n  sorryAx]\n", ("propext", "sorryAx")),
        ("'t' depends on axioms: [sorryAx]", ("sorryAx",)),
        ("no such line", None),
        ("rfl : f = f", None),
    ],
)
def test_parse_axioms(output: str, axioms: tuple[str, ...] | None) -> None:
    assert parse_axioms(output) == axioms


def test_reference_source_is_the_header_then_the_statement_in_its_namespace() -> None:
    text = reference_source("import Mathlib\nopen Real\n", "theorem p : True := by", "LGReference0")
    assert text.splitlines() == [
        "import Mathlib", "open Real", "namespace LGReference0", "theorem p : True := by", "  sorry",
        "end LGReference0",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("output", "code", "outcome", "reasons"),
    [
        ("lg-audit: replay ok (3 constants)\nlg-audit: type ok\n'p' depends on axioms: [propext]", 0, None, ()),
        ("lg-audit: replay ok\nlg-audit: type ok\n'p' depends on axioms: [propext, Lean.ofReduceBool]", 0,
         "rejected", ("nonstandard_axiom",)),
        ("lg-audit: replay ok\nlg-audit: type ok\n'p' depends on axioms: [sorryAx]", 0,
         "rejected", ("nonstandard_axiom", "sorry")),
        ("lg-audit: failed: (kernel) declaration type mismatch, 'p'", 1, "rejected", ("kernel_rejected",)),
        ("lg-audit: replay ok\nlg-audit: failed: type mismatch: p does not have …", 1,
         "rejected", ("statement_modified",)),
        ("lg-audit: replay ok\nlg-audit: failed: missing: the candidate declares no theorem p", 1,
         "rejected", ("missing_declaration",)),
        ("lg-audit: failed: unknown module prefix 'LGCandidate0'", 1, "error", ("audit_failed",)),
        ("Segmentation fault", 139, "error", ("audit_failed",)),
    ],
)  # fmt: skip
def test_judge_audit(output: str, code: int, outcome: str | None, reasons: tuple[str, ...]) -> None:
    verdict = judge_audit(output, code, "p", Policy())
    assert (verdict.outcome, verdict.reasons) == (outcome, reasons) if verdict else outcome is None


def test_compiler_axioms_pass_when_the_policy_allows_them() -> None:
    out = "lg-audit: replay ok\nlg-audit: type ok\n'p' depends on axioms: [propext, Lean.ofReduceBool]"
    assert judge_audit(out, 0, "p", Policy(allow_native_decide=True)) is None


# --- verifier plumbing that needs no Lean ---


def _native_missing() -> bool:
    from leangym.lean_project.native import find_native

    try:
        find_native()
    except LeanRuntimeError:
        return True
    return False


@pytest.mark.skipif(not _native_missing(), reason="a native Lean is installed here")
def test_missing_runtime_is_an_error_not_a_rejection() -> None:
    verifier = Verifier("native")
    proof, sorry = verifier.verify_batch([(PROBLEM, "  simp"), (PROBLEM, "  sorry")])
    assert proof.outcome == "error" and proof.reasons == ("runtime_error:missing_runtime",)
    assert "install" in proof.detail or "elan" in proof.detail
    assert sorry.outcome == "rejected" and sorry.reasons == ("sorry",)  # decided without Lean
    again = verifier.verify(PROBLEM, "  simp")
    assert not again.cached  # errors are never cached


@pytest.mark.skipif(not _native_missing(), reason="a native Lean is installed here")
def test_cli_exits_2_when_it_cannot_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No Lean for the runtime asked, a file that cannot be read: one `error:` line and exit 2, no traceback."""
    from leangym.cli import main

    src = tmp_path / "in.jsonl"
    src.write_text('{"name": "t", "formal_statement": "theorem t : True := by", "proof": "trivial"}\n')
    missing = str(tmp_path / "missing.lean")
    for argv in (
        ["verify", str(src), "--out", str(tmp_path / "out.jsonl"), "--runtime", "native"],
        ["verify", missing, "--out", str(tmp_path / "o.jsonl")],
        ["check", missing],
        ["check", str(src), "--runtime", "native"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err, (argv, err)


def test_bad_problem_is_an_error() -> None:
    bad = Problem("b", "theorem b : True")  # no `:=`
    verdict = Verifier("embedded").verify(bad, "  trivial")
    assert verdict.outcome == "error" and verdict.reasons == ("bad_problem",)


def test_a_policy_of_bodies_only_refuses_a_whole_file_before_lean() -> None:
    whole = HEADER + "theorem t (n : Nat) : n + 0 = n := by simp"
    verdict = Verifier("embedded", Policy(allow_whole_file=False)).verify(PROBLEM, whole)
    assert (verdict.outcome, verdict.reasons) == ("rejected", ("whole_file",)), verdict


def test_shared_verifiers() -> None:
    a, b = get_verifier("embedded", Policy(timeout=7)), get_verifier("embedded", Policy(timeout=7))
    c = get_verifier("embedded", Policy(timeout=8))
    assert a is b and a is not c
    assert a._slot is c._slot  # one runtime per name, whatever the policy


@pytest.mark.skipif(_native_missing(), reason="needs a native Lean toolchain (none found)")
def test_native_audit_end_to_end() -> None:
    """With a native Lean: an honest proof passes the audit; a proof using `Lean.ofReduceBool` does not.

    The screen stops `native_decide` before Lean, so the audit is also handed sources no screen
    looked at: it must reject each of them on its own, from the real audit program's output.
    """
    problem = Problem("two", "theorem two : 2 + 2 = 4 := by")
    verifier = Verifier("native")
    honest, native = verifier.verify_batch([(problem, "  decide"), (problem, "  native_decide")])
    assert honest.proved, honest
    assert native.reasons == ("forbidden_construct:native_decide",)
    lenient = Verifier("native", Policy(allow_native_decide=True)).verify(problem, "  native_decide")
    assert lenient.proved, lenient  # the audit allows the compiler's axioms under this policy
    statement = parse_statement(problem.formal_statement)

    def assembled(body: str) -> str:
        sub = read_submission(problem, statement, body)
        assert isinstance(sub, Submission)
        return assemble(problem, statement, sub, Policy()).source

    sources = {
        "honest": assembled("  decide"),
        "native_decide": assembled("  native_decide"),
        "sorry": assembled("  sorry"),
        "other_statement": "theorem two : True := trivial\n",
        "missing": "theorem three : 2 + 2 = 4 := rfl\n",
    }
    audited = NativeAudit.find(Policy()).audit([(problem, s) for s in sources.values()])
    got = {name: (v.outcome, v.reasons) if v else None for name, v in zip(sources, audited, strict=True)}
    assert got == {
        "honest": None,
        "native_decide": ("rejected", ("nonstandard_axiom",)),
        "sorry": ("rejected", ("nonstandard_axiom", "sorry")),
        "other_statement": ("rejected", ("statement_modified",)),
        "missing": ("rejected", ("missing_declaration",)),
    }, [v.detail for v in audited if v]
    assert "Lean.ofReduceBool" in audited[1].detail
    assert NativeAudit.find(Policy(allow_native_decide=True)).audit([(problem, sources["native_decide"])]) == [None]


def test_exports_are_put_in_dependency_order_and_malformed_ones_refused() -> None:
    """The untrusted run's export is data: sorted for the judge when well formed, a ValueError (never
    another exception, which would fail the whole batch) when not."""
    # `b`'s value uses the constant `a`: a must come first whatever order the export gives.
    exprs = [["s", 0], ["c", 1, []], ["c", 2, []]]
    export = {"names": [None, [0, "a"], [0, "b"]], "levels": [["0"]], "exprs": exprs}
    b = {"kind": "def", "name": 2, "type": 0, "value": 1}
    a = {"kind": "def", "name": 1, "type": 0, "value": 0}
    assert [c["name"] for c in dependency_order({**export, "constants": [b, a]})["constants"]] == [1, 2]
    for bad in (
        {},
        {"exprs": 3, "constants": []},
        {"exprs": [["c", [1], []]], "constants": [{"name": 0, "type": 0}]},  # an unhashable name index
        {"exprs": [[]], "constants": [{"name": 0, "type": 0}]},
        {"exprs": [], "constants": [[1, 2]]},
        {"exprs": [], "constants": ["x"]},
    ):
        with pytest.raises(ValueError):
            dependency_order(bad)


def test_a_policy_from_json_checks_each_field() -> None:
    from leangym.rewards import Policy

    policy = Policy.from_json({"timeout": 5, "max_heartbeats": 1000.0, "allowed_options": ["pp.*"], "audit": False})
    assert policy == Policy(timeout=5.0, max_heartbeats=1000, allowed_options=("pp.*",), audit=False)
    assert isinstance(policy.timeout, float) and isinstance(policy.max_heartbeats, int)
    hash(policy)  # a server keeps one verifier per policy
    for bad in ({"timeout": {"a": 1}}, {"max_heartbeats": True}, {"max_heartbeats": 1.5}, {"timeout": -1},
                {"allow_native_decide": "yes"}, {"allowed_options": "pp.*"}, {"nope": 1}):  # fmt: skip
        with pytest.raises(ValueError):
            Policy.from_json(bad)
