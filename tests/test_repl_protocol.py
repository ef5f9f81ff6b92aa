"""The REPL client against real Lean answers, replayed by the recorded-transcript double.

`tests/repl_replay.py` replays what the Lean REPL answered in its own test suite (recorded
from real Lean runs); it never makes an answer up. These tests check the client's protocol
handling, typed answers, environment bookkeeping, tactic mode and failure handling. No test
here judges a proof: the verdicts are Lean's, as recorded.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import repl_replay

from leangym.lean_project.repl import (
    CommandResponse,
    ProofStepResponse,
    ReplFailure,
    ReplProcess,
    ReplRefusal,
    parse_command_response,
    parse_proof_step_response,
)
from leangym.lean_project.types import Position


def repl(*flags: str, **options) -> ReplProcess:
    return ReplProcess(repl_replay.argv(*flags), **options)


def test_every_recorded_answer_comes_back_through_the_client_and_parses():
    """All 71 transcripts, request by request over the wire: the answer equals the recording and reads typed."""

    def replay(transcript) -> int:
        path, pairs = transcript
        with repl() as proc:
            for request, expected in pairs:
                raw = proc.request(request, timeout=10)
                assert raw == expected, path.name
                is_tactic = "tactic" in request or "unpickleProofStateFrom" in request or "proofState" in request
                parsed = parse_proof_step_response(raw) if is_tactic else parse_command_response(raw)
                assert isinstance(parsed, (CommandResponse, ProofStepResponse, ReplRefusal))
        return len(pairs)

    with ThreadPoolExecutor(4) as threads:  # one fresh REPL per transcript, four at a time
        checked = sum(threads.map(replay, repl_replay.transcripts([repl_replay.TRANSCRIPTS])))
    assert checked > 150


def test_tactic_mode_from_sorry_to_completed():
    with repl() as proc:
        cmd = proc.command("def f (x : Unit) : Nat := by sorry")
        assert isinstance(cmd, CommandResponse) and cmd.env == 0
        [sorry] = cmd.sorries
        assert (sorry.goal, sorry.proof_state, sorry.pos) == ("x : Unit\n⊢ Nat", 0, Position(1, 29))
        [warning] = cmd.messages
        assert (warning.severity, warning.kind, warning.pos) == ("warning", "hasSorry", Position(1, 4))
        step = proc.tactic("apply Int.natAbs", sorry.proof_state)
        assert isinstance(step, ProofStepResponse)
        assert step.goals == ["x : Unit\n⊢ Int"] and not step.completed
        assert step.proof_status == "Incomplete: open goals remain"
        done = proc.tactic("exact -37", step.proof_state)
        assert isinstance(done, ProofStepResponse) and done.completed and done.goals == []


def test_tactic_answers_keep_lean_s_reasons():
    with repl() as proc:
        start = proc.command("theorem my_theorem (x : Nat) : x = x := by sorry")
        failed = proc.tactic("exact my_fake_premise", start.sorries[0].proof_state)
        # Lean recovered with `sorry`: an error message at 0:0 (tactic mode has no positions).
        assert failed.proof_status == "Incomplete: contains sorry"
        [error] = failed.messages
        assert error.is_error and error.text == "Unknown identifier `my_fake_premise`" and error.pos == Position(0, 0)
    with repl() as proc:
        start = proc.command("def f : Nat := by sorry")
        assert proc.tactic("exat 42", start.sorries[0].proof_state) == ReplRefusal(
            "Lean error:\n<input>:1:1: unknown tactic"
        )
        assert proc.tactic("exact 42", 1) == ReplRefusal("Unknown proof state.")
        assert proc.command("def f : Nat := by sorry", env=5) == ReplRefusal("Unknown environment.")


def test_sorries_inside_tactics_and_traces():
    with repl() as proc:
        start = proc.command("theorem foo (x : Int) : x = x := by sorry")
        step = proc.tactic("have h : x = 1 := sorry", start.sorries[0].proof_state)
        assert [(s.goal, s.proof_state, s.pos) for s in step.sorries] == [("x : Int\n⊢ x = 1", 1, None)]
        assert step.goals == ["x : Int\nh : x = 1\n⊢ x = x"] and step.proof_state == 2


def test_header_once_then_each_body_in_its_environment():
    """`import Mathlib` elaborated once; two bodies on env 0 get env 1 and 2, as the REPL numbers them."""
    with repl() as proc:
        header = proc.command("import Mathlib")
        first = proc.command("theorem test : 0 < 1 := by sorry", env=header.env)
        second = proc.command("theorem test : 3 = 7 := by sorry", env=header.env, line_offset=1)
        assert (header.env, first.env, second.env) == (0, 1, 2)
        assert [s.proof_state for s in first.sorries + second.sorries] == [0, 1]
        assert second.messages[0].pos == Position(2, 8)  # moved down by the header's line
        exact = proc.tactic("exact?", first.sorries[0].proof_state)
        assert exact.completed and exact.messages[0].severity == "information"
        assert exact.messages[0].text == "Try this:\n  [apply] exact Nat.one_pos"


def test_options_stick_to_the_environment_they_were_set_in():
    with repl() as proc:
        plain = proc.command("#print List.cons")
        universes = proc.command("set_option pp.universes true")
        shown = proc.command("#print List.cons", env=universes.env)
        assert "List.{u}" not in plain.messages[0].text and "List.{u}" in shown.messages[0].text


# -- failures of the process ------------------------------------------------------------------


def test_unrecorded_request_is_a_crash_not_a_verdict():
    with repl() as proc, pytest.raises(ReplFailure) as caught:
        proc.command("theorem never_recorded : True := trivial")
    assert caught.value.error.kind == "crash"
    assert "exit status 3" in caught.value.error.detail and "no recorded answer" in caught.value.error.detail


def test_crash_mid_answer_reports_the_panic():
    with repl("--crash-on", "def f := 37") as proc, pytest.raises(ReplFailure) as caught:
        proc.command("def f := 37")
    assert caught.value.error.kind == "crash" and "INTERNAL PANIC" in caught.value.error.detail
    assert not proc.alive()


def test_answers_past_the_time_limit_time_out_and_the_process_is_killed():
    with repl("--slow-on", "def f := 37=5") as proc:
        started = time.monotonic()
        with pytest.raises(ReplFailure) as caught:
            proc.command("def f := 37", timeout=0.5)
        assert caught.value.error.kind == "timeout" and time.monotonic() - started < 3
        assert not proc.alive()
    with repl("--slow-on", "def f := 37=0.3") as proc:
        assert proc.command("def f := 37", timeout=5) == CommandResponse(env=0)


def test_a_hanging_repl_times_out():
    with repl("--hang-on", "def f := 37") as proc, pytest.raises(ReplFailure) as caught:
        proc.command("def f := 37", timeout=0.5)
    assert caught.value.error.kind == "timeout"


def test_memory_cap_kills_mid_request():
    with repl("--bloat-on", "def f := 37=300", "--hang-on", "def f := 37", memory_mb=150) as proc:
        with pytest.raises(ReplFailure) as caught:
            proc.command("def f := 37", timeout=20)
        assert caught.value.error.kind == "out_of_memory" and not proc.alive()


def test_unreadable_answers_are_protocol_failures():
    with repl("--garbage-on", "def f := 37") as proc, pytest.raises(ReplFailure) as caught:
        proc.command("def f := 37")
    assert caught.value.error.kind == "protocol" and "not JSON" in caught.value.error.detail
    with repl() as proc:
        proc.last_env = 5  # as if this client had seen env 5: an answer naming env 0 is out of step
        with pytest.raises(ReplFailure) as caught:
            proc.command("def f := 37")
        assert caught.value.error.kind == "protocol" and "not new" in caught.value.error.detail


def test_bad_and_huge_input():
    with repl() as proc:
        with pytest.raises(ReplFailure) as caught:
            proc.command("theorem t : True := by\n  trivial \ud800")
        assert caught.value.error.kind == "protocol" and "Unicode" in caught.value.error.detail
        assert proc.command("def f := 37") == CommandResponse(env=0)  # nothing was sent: still usable
        huge = "-- " + "x" * 4_000_000 + "\ndef g := 1"
        with pytest.raises(ReplFailure) as caught:  # 4 MB through the pipe, no deadlock; no recording
            proc.command(huge, env=0, timeout=30)
        assert caught.value.error.kind == "crash"


def test_close_ends_the_process():
    proc = repl()
    assert proc.command("def f := 37") == CommandResponse(env=0)
    proc.close()
    assert not proc.alive()
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)


def test_message_severities_are_mapped():
    raw = json.loads((repl_replay.TRANSCRIPTS / "options.expected.out").read_text().split("\n\n")[0])
    answer = parse_command_response(raw, line_offset=3)
    assert answer.messages[0].severity == "information" and answer.messages[0].pos == Position(4, 0)
