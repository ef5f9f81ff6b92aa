"""The worker pool, the REPL-backed runtime and tactic mode, on real Lean answers replayed by the double.

Every verdict here is one real Lean gave, recorded in the REPL's test suite and replayed by
`tests/repl_replay.py` (the recorded-transcript double). Faults (crashes, hangs, slow answers,
memory growth) are injected by the double's flags; short time limits keep the tests fast.
"""

from __future__ import annotations

import _thread
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import repl_replay
from conftest import wait_until

from leangym.lean_project.pool import ReplCommand, ReplPool
from leangym.lean_project.repl_runtime import ReplRuntime
from leangym.lean_project.source import split_header
from leangym.lean_project.tactics import ReplTactics, TacticState
from leangym.lean_project.types import Position, SourceResult

# A miniF2F-style header and three proofs Lean accepted (Mathlib/test/H20231020 of the REPL's tests).
_H20231020 = repl_replay.TRANSCRIPTS / "Mathlib/test/H20231020.in"
_H = [json.loads(b) for b in repl_replay.requests_of(_H20231020.open())] if _H20231020.exists() else [{"cmd": ""}]
MINIF2F_HEADER = _H[0]["cmd"]
MINIF2F = [f"{MINIF2F_HEADER}\n{r['cmd']}" for r in _H[1:]]

ALGEBRA_455 = (  # a four-line header (imports, `open`s), a body with a `sorry`
    "import Mathlib\nopen BigOperators\nopen Real\nopen Nat\n"
    "theorem mathd_algebra_455\n  (x : Nat)\n  (h : 2 * (2 * (2 * (2 * x))) = 48) :\n  x = 3 := by sorry"
)
UNSOLVED = "def f : Nat := by apply Nat.succ"  # no header: sent whole; Lean: "unsolved goals"
EXACT_0_LT_1 = "import Mathlib\ntheorem test : 0 < 1 := by sorry"
EXACT_3_EQ_7 = "import Mathlib\ntheorem test : 3 = 7 := by sorry"


def runtime(
    tmp_path: Path,
    *flags: str,
    workers: int = 2,
    timeout: float = 5.0,
    keeps_proof_states: bool = False,
    **pool_options,
) -> ReplRuntime:
    command = ReplCommand(repl_replay.argv("--log", str(tmp_path / "requests.log"), *flags))
    pool = ReplPool(command, workers=workers, machine_slots=False, **pool_options)
    return ReplRuntime(pool, version="recorded transcripts", timeout=timeout, keeps_proof_states=keeps_proof_states)


def logged(tmp_path: Path) -> list[dict]:
    path = tmp_path / "requests.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_accepted(result: SourceResult) -> None:
    assert result.status == "ok" and result.messages == [], result


def test_split_header():
    split = split_header(ALGEBRA_455)
    assert split.header == "import Mathlib\nopen BigOperators\nopen Real\nopen Nat"
    assert split.body.startswith("theorem mathd_algebra_455") and split.line_offset == 4
    assert split.imports == ("Mathlib",)
    minif2f = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real\n\ntheorem t"
    assert split_header(minif2f).header == minif2f[: minif2f.index("\n\ntheorem")]
    split = split_header(minif2f)
    assert split.body.split("\n").index("theorem t") + 1 + split.line_offset == 8  # body line -> source line
    for whole in (
        UNSOLVED,  # no header
        "import Mathlib\nopen Real in\ntheorem t : True := trivial",  # `in` scopes the theorem: not a header
        "import Mathlib /- a comment\nthat spans lines -/\ntheorem t : True := trivial",
        "import Mathlib",  # nothing after the header
    ):
        split = split_header(whole)
        if split.header:  # only the `in` case keeps `import Mathlib` as its header
            assert split.header == "import Mathlib" and split.body.startswith("open Real in")
        else:
            assert split.body == whole


def test_check_batches_with_header_reuse(tmp_path):
    sources = [*MINIF2F, ALGEBRA_455, UNSOLVED, EXACT_0_LT_1, EXACT_3_EQ_7, *MINIF2F]
    with runtime(tmp_path) as lean:
        results = lean.check(sources)
    for r in results[:3] + results[-3:]:
        assert_accepted(r)
    [sorry] = results[3].messages
    assert (sorry.kind, sorry.pos, sorry.end_pos) == ("hasSorry", Position(5, 8), Position(5, 25))
    [unsolved] = results[4].messages
    assert unsolved.is_error and unsolved.text == "unsolved goals\n⊢ Nat" and unsolved.pos == Position(1, 15)
    assert results[5].messages[0].pos == Position(2, 8) and results[6].messages[0].pos == Position(2, 8)
    headers = [r["cmd"] for r in logged(tmp_path) if "env" not in r and r["cmd"] != UNSOLVED]
    assert set(headers) == {MINIF2F_HEADER, split_header(ALGEBRA_455).header, "import Mathlib"}
    assert all(headers.count(h) <= 2 for h in headers)  # six proofs on one header, two workers: once each


def test_crash_is_retried_once_then_reported(tmp_path):
    crashing = MINIF2F[1]
    with runtime(tmp_path, "--crash-on", "Nat.properDivisors") as lean:
        results = lean.check(MINIF2F)
    assert_accepted(results[0])
    assert_accepted(results[2])
    assert results[1].status == "error" and results[1].error.kind == "crash"
    assert "INTERNAL PANIC" in results[1].error.detail
    assert sum(crashing.split("\n")[-1] == r.get("cmd") for r in logged(tmp_path)) == 2  # tried twice


def test_crash_once_then_the_retry_succeeds(tmp_path):
    with runtime(tmp_path, "--crash-on", "Nat.properDivisors", "--crash-once", str(tmp_path / "crashed")) as lean:
        results = lean.check(MINIF2F)
        assert lean.health().restarts == 1
    for r in results:
        assert_accepted(r)


def test_health_names_the_running_processes_and_their_memory_without_starting_any(tmp_path):
    lean = runtime(tmp_path, workers=2)
    assert lean.health().processes == 0  # asking starts nothing
    with lean:
        lean.check(MINIF2F[:1])
        health = lean.health()
        assert health.processes == len(health.pids) >= 1 and health.memory_mb > 0
        assert all(os.path.exists(f"/proc/{pid}") for pid in health.pids)
    assert lean.health().processes == 0 and lean.health().memory_mb == 0


def test_worker_killed_mid_request_is_restarted_and_the_request_retried(tmp_path):
    with runtime(tmp_path, "--slow-on", "Nat.properDivisors=1", workers=1) as lean:
        worker = lean._pool.workers[0]
        threading.Timer(0.5, lambda: os.kill(worker.start(), signal.SIGKILL)).start()
        [result] = lean.check([MINIF2F[1]])
        assert_accepted(result)
        assert lean.health().restarts == 1 and worker.generation == 2


def test_a_process_killed_between_requests_is_replaced_and_counted_as_a_restart(tmp_path):
    with runtime(tmp_path, workers=1) as lean:
        assert_accepted(lean.check([MINIF2F[0]])[0])
        [pid] = lean.health().pids
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: pid not in lean.health().pids, 10)
        assert_accepted(lean.check([MINIF2F[2]])[0])
        assert lean.health().restarts == 1 and pid not in lean.health().pids


def test_hung_worker_times_out_and_the_batch_goes_on(tmp_path):
    with runtime(tmp_path, "--hang-on", "Nat.properDivisors", timeout=0.5, retries=1) as lean:
        started = time.monotonic()
        results = lean.check(MINIF2F)
        elapsed = time.monotonic() - started
    assert results[1].status == "timeout" and results[1].error.kind == "timeout"
    assert_accepted(results[0])
    assert_accepted(results[2])
    assert 0.5 <= elapsed < 1.0 + 5  # one attempt: a timeout is the job's own outcome, not retried


def test_slow_answers_within_and_past_the_limit(tmp_path):
    with runtime(tmp_path, "--slow-on", "Nat.properDivisors=1.5", timeout=0.5, retries=0) as lean:
        assert lean.check([MINIF2F[1]])[0].status == "timeout"
        assert_accepted(lean.check([MINIF2F[1]], timeout=5)[0])


def test_garbage_is_a_protocol_error(tmp_path):
    with runtime(tmp_path, "--garbage-on", "Nat.properDivisors") as lean:
        [result] = lean.check([MINIF2F[1]])
    assert result.status == "error" and result.error.kind == "protocol"


def test_memory_cap_mid_request(tmp_path):
    flags = ("--bloat-on", "Nat.properDivisors=300", "--hang-on", "Nat.properDivisors")
    with runtime(tmp_path, *flags, memory_mb=150, timeout=20, retries=0) as lean:
        [result] = lean.check([MINIF2F[1]])
    assert result.status == "error" and result.error.kind == "out_of_memory"


def test_workers_are_recycled_after_max_requests(tmp_path):
    with runtime(tmp_path, workers=1, max_requests=2) as lean:
        for r in lean.check(MINIF2F):
            assert_accepted(r)
        generation = lean._pool.workers[0].generation
    headers = [r for r in logged(tmp_path) if r.get("cmd") == MINIF2F_HEADER]
    assert len(headers) == 3 and generation == 3  # header + proof, then a fresh process, three times


def test_broken_repl_fails_fast(tmp_path):
    pool = ReplPool(ReplCommand(("/bin/false",)), workers=1, machine_slots=False)
    with ReplRuntime(pool, version="none", timeout=5) as lean:
        started = time.monotonic()
        results = lean.check([UNSOLVED] * 20)
    assert all(r.status == "error" and r.error.kind in ("crash", "startup") for r in results)
    assert results[-1].error.kind == "startup" and "fails before answering" in results[-1].error.detail
    assert pool.restarts <= 4 and time.monotonic() - started < 10
    missing = ReplPool(ReplCommand(("/nonexistent/repl",)), workers=1, machine_slots=False)
    with ReplRuntime(missing, version="none") as lean:
        [result] = lean.check([UNSOLVED])
    assert result.error.kind == "startup" and "cannot start" in result.error.detail


def test_unsupported_import_is_not_sent(tmp_path):
    pool = ReplPool(ReplCommand(repl_replay.argv("--log", str(tmp_path / "requests.log"))), machine_slots=False)
    with ReplRuntime(pool, version="v", importable=lambda m: m != "Mathlib") as lean:
        results = lean.check([EXACT_0_LT_1, UNSOLVED])
    assert results[0].error.kind == "unsupported_import" and results[1].status == "ok"
    assert all("Mathlib" not in r["cmd"] for r in logged(tmp_path))


def test_tactic_mode_uses_proof_states_only_where_the_runtime_keeps_them(tmp_path):
    from leangym.envs.tactic_env import default_backend
    from leangym.lean_project.tactics import ElaborationTactics
    from leangym.rewards import Verifier

    with runtime(tmp_path) as session_like, runtime(tmp_path, keeps_proof_states=True) as repl:
        assert session_like.proof_state_tactics(timeout=5, max_heartbeats=None) is None
        assert isinstance(repl.proof_state_tactics(timeout=5, max_heartbeats=None), ReplTactics)
        assert isinstance(default_backend(Verifier(session_like)), ElaborationTactics)
        assert isinstance(default_backend(Verifier(repl)), ReplTactics)


def test_prewarm_elaborates_the_header_on_every_worker(tmp_path):
    with runtime(tmp_path) as lean:
        lean.preload_header = MINIF2F_HEADER
        lean.prewarm()  # in the background: the checks wait for each worker's warm-up
        for r in lean.check(MINIF2F):
            assert_accepted(r)
        assert lean._pool.header_elaborations == 2  # once per worker, by the warm-up or the first check


def test_close_stops_every_worker(tmp_path):
    lean = runtime(tmp_path)
    lean.check(MINIF2F)
    pids = [w.start() for w in lean._pool.workers]
    lean.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    lean.close()  # twice is fine


def test_ctrl_c_stops_the_batch(tmp_path):
    lean = runtime(tmp_path, "--hang-on", "Nat.properDivisors", timeout=60)
    threading.Timer(1.0, _thread.interrupt_main).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        lean.check(MINIF2F * 4)
    assert time.monotonic() - started < 30  # well before the 60 s a hanging proof is allowed (a loaded machine is slow)
    lean.close()
    assert all(w._process is None for w in lean._pool.workers)


# -- tactic mode --------------------------------------------------------------------------------


def tactics(tmp_path: Path, *flags: str) -> ReplTactics:
    pool = ReplPool(ReplCommand(repl_replay.argv(*flags)), workers=2, machine_slots=False)
    return ReplTactics(pool, timeout=5)


def test_tactic_session(tmp_path):
    t = tactics(tmp_path)
    start = t.start("theorem foo (x : Nat) : x = x := by sorry", header="import Mathlib")
    assert start.state.goals == ("x : ℕ\n⊢ x = x",)
    split = t.apply(start.state, "induction x")
    assert split.state.goals == ("case zero\n⊢ 0 = 0", "case succ\nn✝ : ℕ\na✝ : n✝ = n✝\n⊢ n✝ + 1 = n✝ + 1")
    one = t.apply(split.state, "next => rfl")
    assert one.state.tactics == ("induction x", "next => rfl") and len(one.state.goals) == 1
    assert one.tactic == "next => rfl"
    sorried = t.apply(start.state, "induction x with\n| zero => sorry\n| succ x => sorry")  # branch from the root
    assert sorried.state.goals == () and sorried.state.tactics == (sorried.tactic,)  # closed, by sorry: no verdict
    other = t.start("def f (x : Unit) : Nat := by sorry")
    finished = t.apply(t.apply(other.state, "apply Int.natAbs").state, "exact -37")
    assert finished.state.goals == () and finished.state.tactics == ("apply Int.natAbs", "exact -37")
    t.pool.close()


def test_failed_tactics_carry_lean_s_reason(tmp_path):
    t = tactics(tmp_path)
    state = t.start("def f : Nat := by sorry").state
    assert t.apply(state, "exat 42").error == "<input>:1:1: unknown tactic"
    state = t.start("theorem my_theorem (x : Nat) : x = x := by sorry").state
    step = t.apply(state, "exact my_fake_premise")
    assert step.failed and step.error == "Unknown identifier `my_fake_premise`" and step.infra is None
    t.pool.close()


def test_proof_states_are_rebuilt_after_a_crash(tmp_path):
    t = tactics(tmp_path, "--crash-on", "next => rfl", "--crash-once", str(tmp_path / "crashed"))
    start = t.start("theorem foo (x : Nat) : x = x := by sorry", header="import Mathlib")
    split = t.apply(start.state, "induction x")
    one = t.apply(split.state, "next => rfl")  # crashes once: restarted, replayed, applied
    assert one.state.goals == ("case succ\nn✝ : ℕ\na✝ : n✝ = n✝\n⊢ n✝ + 1 = n✝ + 1",)
    assert t.pool.restarts == 1 and t.pool.workers[0].generation == 2  # the crashed worker, started again
    t.pool.close()


def test_a_state_the_backend_never_answered_is_reached_by_its_path(tmp_path):
    t = tactics(tmp_path)
    statement = "theorem foo (x : Nat) : x = x := by sorry"
    succ = "case succ\nn✝ : ℕ\na✝ : n✝ = n✝\n⊢ n✝ + 1 = n✝ + 1"
    split = TacticState(("case zero\n⊢ 0 = 0", succ), "import Mathlib", statement, ("induction x",))
    one = t.apply(split, "next => rfl")  # replayed from the statement on some worker, then applied
    assert one.state.goals == (succ,)
    assert one.state.tactics == ("induction x", "next => rfl")
    t.pool.close()


def test_tactic_mode_applies_the_heartbeat_limit(tmp_path):
    pool = ReplPool(ReplCommand(repl_replay.argv("--log", str(tmp_path / "requests.log"))), machine_slots=False)
    t = ReplTactics(pool, timeout=5, max_heartbeats=1000)
    start = t.start("def f : Nat := by sorry")
    assert logged(tmp_path)[0] == {"cmd": "set_option maxHeartbeats 1000 in\ndef f : Nat := by sorry"}
    assert start.failed and start.infra is not None  # the double has no recorded answer: Lean's failure, no verdict
    pool.close()


def test_tactic_infra_failure_is_not_a_verdict(tmp_path):
    t = tactics(tmp_path, "--hang-on", "apply Int.natAbs")
    t.timeout = 0.5
    state = t.start("def f (x : Unit) : Nat := by sorry").state
    step = t.apply(state, "apply Int.natAbs")
    assert step.failed and step.infra is not None and step.infra.kind == "timeout"
    t.pool.close()


def test_a_workers_spare_takes_over_after_a_crash_and_ends_with_the_pool(tmp_path, monkeypatch):
    """With `spares`, a worker starts its next process once its header is elaborated; after a crash
    that process answers (no start-up waited for), and closing the pool ends the spares too."""
    monkeypatch.setenv("LEANGYM_MAX_SPARES", "8")  # spare slots of its own, whatever other tests hold
    lean = runtime(tmp_path, workers=1, spares=True)
    worker = lean._pool.workers[0]
    assert_accepted(lean.check([MINIF2F[0]])[0])
    [(spare, _)] = worker._spares._waiting
    crashed = worker.process
    crashed.kill()
    assert_accepted(lean.check([MINIF2F[1]])[0])
    assert worker.start() == spare.pid and worker.generation == 2
    [(next_spare, _)] = worker._spares._waiting  # started after the new process's header
    assert next_spare.pid not in (crashed.pid, spare.pid)
    lean.close()
    assert not spare.alive() and not next_spare.alive()
