"""The native verifier path on real Lean answers, replayed by the recorded-transcript double.

`tests/repl_replay.py` is the RECORDED-TRANSCRIPT DOUBLE of the Lean REPL: it answers only
with what a real Lean answered in the REPL's own test suite, and crashes (exit 3) on any
request it has no recording for. Here it stands behind the same `ReplRuntime` the native
runtime builds, named `native`, so that the verifier's native path runs without a toolchain.

What the recordings cover, and what they do not:

* they hold real answers to miniF2F-style sources (a header, then a body on its environment),
  so `judge` is tested on real Lean verdicts: accepted, `sorry`, errors with their positions;
* they hold no source the verifier assembles (each starts `set_option maxHeartbeats N in` and
  ends with the trusted `example := @name`), so through `Verifier` the double can only refuse:
  the test checks what the verifier sends and that an unanswered source is never rewarded;
* they hold no `#print axioms` answer, so the audit's parser is tested on every recorded
  message as output that must never pass the audit (the positive cases need a native Lean:
  `test_native_audit_end_to_end` in tests/test_rewards_units.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import repl_replay

from leangym.lean_project.pool import ReplCommand, ReplPool
from leangym.lean_project.repl import parse_command_response
from leangym.lean_project.repl_runtime import ReplRuntime
from leangym.lean_project.source import split_header
from leangym.lean_project.types import Position
from leangym.rewards import Policy, Problem, Verifier
from leangym.rewards.assembly import Assembled, assemble, judge
from leangym.rewards.audit import judge_audit, parse_axioms
from leangym.rewards.submission import parse_statement, read_submission

# Mathlib/test/H20231020 of the REPL's tests: a miniF2F header, then proofs Lean accepted.
_H20231020 = [
    json.loads(b) for b in repl_replay.requests_of((repl_replay.TRANSCRIPTS / "Mathlib/test/H20231020.in").open())
]
HEADER = _H20231020[0]["cmd"]
GCD_STATEMENT = "theorem mathd_numbertheory_188 : Nat.gcd 180 168 = 12 := by"
GCD = f"{HEADER}\n{GCD_STATEMENT} norm_num"
SORRY = "import Mathlib\ntheorem test : 3 = 7 := by sorry"  # Mathlib/test/exact
UNSOLVED = "def f : Nat := by apply Nat.succ"  # no header: sent whole


def native_double(log: Path) -> ReplRuntime:
    """A `ReplRuntime` named `native` over the recorded-transcript double (see the module docstring)."""
    command = ReplCommand(repl_replay.argv("--log", str(log)))
    return ReplRuntime(ReplPool(command, workers=1, machine_slots=False), name="native", version="recorded", timeout=10)


def located(source: str, body: str) -> Assembled:
    """Where `body` sits in a recorded source, recorded as `assemble` records it for an assembled one."""
    start = source.rindex(body)
    line = source.count("\n", 0, start) + 1
    column = start - (source.rfind("\n", 0, start) + 1)
    return Assembled(source, line, column, source.count("\n") + 1, origin_line=1, origin_column=0)


def test_judge_on_real_recorded_verdicts(tmp_path: Path) -> None:
    with native_double(tmp_path / "requests.log") as lean:
        proved, sorry, unsolved = lean.check([GCD, SORRY, UNSOLVED])
    verdict = judge(proved, located(GCD, " norm_num"))
    assert (verdict.outcome, verdict.reasons, verdict.reward) == ("proved", (), 1.0)
    verdict = judge(sorry, located(SORRY, " sorry"))
    assert (verdict.outcome, verdict.reasons, verdict.reward) == ("rejected", ("sorry",), 0.0)
    verdict = judge(unsolved, located(UNSOLVED, " apply Nat.succ"))
    assert (verdict.outcome, verdict.reasons) == ("rejected", ("lean_error",))
    assert verdict.detail == "unsolved goals\n⊢ Nat"
    assert verdict.messages[0].pos == Position(1, 0)  # Lean's 1:15 is before the body: clamped to its start


def test_the_verifier_sends_its_assembly_and_never_rewards_an_unanswered_source(tmp_path: Path) -> None:
    log = tmp_path / "requests.log"
    problem = Problem("mathd_numbertheory_188", GCD_STATEMENT, header=HEADER + "\n")
    policy = Policy()
    with native_double(log) as lean, Verifier(lean, policy) as verifier:
        answered, screened = verifier.verify_batch([(problem, " norm_num"), (problem, " sorry")])
    assert screened.reasons == ("sorry",)  # decided before Lean: nothing sent for it
    statement = parse_statement(problem.formal_statement)
    source = assemble(problem, statement, read_submission(problem, statement, " norm_num"), policy).source
    sent = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    split = split_header(source)
    assert split.header == HEADER
    assert [r["cmd"] for r in sent] == [HEADER, split.body] * 2  # the header reused; the body retried once, fresh
    # The double has no recording of an assembled source, so it died on it, twice: never a reward.
    assert (answered.outcome, answered.reasons, answered.reward) == ("rejected", ("lean_crash",), 0.0)
    assert "recorded-transcript double" in answered.detail and "no recorded answer" in answered.detail


def test_no_recorded_lean_output_passes_the_audit() -> None:
    """Every message real Lean gave in the recordings is output with no axioms line: never a pass."""
    texts = [
        m.text
        for _, pairs in repl_replay.transcripts([repl_replay.TRANSCRIPTS])
        for request, answer in pairs
        if "cmd" in request or "path" in request
        for m in getattr(parse_command_response(answer), "messages", [])
    ]
    assert len(texts) > 50
    for text in texts:
        assert parse_axioms(text) is None, text
        audited = "lg-audit: replay ok (1 constants)\nlg-audit: type ok\n" + text
        verdict = judge_audit(audited, 0, "t", Policy())
        assert verdict is not None and (verdict.outcome, verdict.reasons) == ("error", ("audit_failed",)), text
