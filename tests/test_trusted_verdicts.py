"""Red team, class `judge`: code inside a proof cannot forge, steal or poison a reward.

Lean evaluates a tactic's configuration term while it elaborates a proof, and that term can run
IO (`EST.Out.casesOn` on an `IO` action applied to a world token: no forbidden word needed).
Each attack of the trusted-verdicts issue is written here afresh from its description and run
through the real embedded Lean, in session mode and in one-shot mode:

* forged answers on `/dev/stdout` (with and without exiting), a hijack that reads the next
  request from `/dev/stdin` and answers it, `/proc/self/fd/1`;
* host files: reading a file planted under /tmp and one under /home, writing outside the
  process's folder, overwriting the session program, the glue and the library;
* session state: a working-folder change seen by the next source;
* compiler evaluation without the word `native` (`decide` with a positional config);
* forged exports handed straight to the judge (an axiom, another statement, a malformed table).

Every attack is followed by false theorems in the same batch; they stay rejected. An *oracle*
tells whether an action succeeded: `simp (maxSteps := ...)` on a true statement proves it with
a large step budget (the action succeeded) and fails with a budget of 1 (it failed), and the
controls show the oracle says both.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from leangym.lean_project import LeanRuntime, get_runtime
from leangym.lean_project.kernel import KernelCheck, reference_source
from leangym.lean_project.toolchain import locate, verify_toolchain
from leangym.rewards import Policy, Problem, Verdict, Verifier

pytestmark = pytest.mark.lean

FALSE = Problem("target", "theorem target : (1 : Nat) + 1 = 3 := by")
TRUE = Problem("two", "theorem two : (2 : Nat) + 2 = 4 := by")
BITS = Problem("bits", "theorem bits : System.Platform.numBits = 32 := by")  # true only in the wasm build

MARK = uuid.uuid4().hex
TMP_SECRET, HOME_SECRET = Path(f"/tmp/leangym-secret-{MARK}.txt"), Path(f"/home/leangym-secret-{MARK}.txt")
OUTSIDE = Path(f"/tmp/leangym-written-{MARK}.txt")
LAUNCHER = locate()


def io(action: str, ok: int = 100_000) -> str:
    """A `simp` whose step budget is `ok` if `action` (IO code, one statement a line) succeeds, else 1."""
    lines = "\n".join(f"      {line}" for line in action.splitlines())
    return (
        "  simp (maxSteps := EST.Out.casesOn (motive := fun _ => Nat) ((do\n"
        f"{lines}\n      : IO Unit) (unsafeCast ())) (fun _ _ => {ok}) (fun _ _ => 1))"
    )


FORGE = '{\\"env\\": 100000, \\"messages\\": []}\\n\\n'
ATTACKS = {  # id -> (problem, body): each must come out rejected, and so must what follows it
    "forge-stdout-exit": (
        FALSE,
        io(
            f'let out ← IO.FS.Handle.mk "/dev/stdout" IO.FS.Mode.write\nout.putStr "{FORGE}"\nout.flush\nIO.Process.exit 0'
        ),
    ),
    "forge-stdout": (FALSE, io(f'let out ← IO.FS.Handle.mk "/dev/stdout" IO.FS.Mode.write\nout.putStr "{FORGE}"')),
    "forge-many": (FALSE, io(f'let out ← IO.FS.Handle.mk "/dev/stdout" IO.FS.Mode.write\nout.putStr "{FORGE * 4}"')),
    "forge-proc-fd": (FALSE, io(f'let out ← IO.FS.Handle.mk "/proc/self/fd/1" IO.FS.Mode.write\nout.putStr "{FORGE}"')),
    "hijack-stdin": (
        FALSE,
        io(
            'let inp ← IO.FS.Handle.mk "/dev/stdin" IO.FS.Mode.read\nlet _ ← inp.getLine\n'
            f'let out ← IO.FS.Handle.mk "/dev/stdout" IO.FS.Mode.write\nout.putStr "{FORGE * 3}"'
        ),
    ),
    "forge-stdout-from-a-task": (  # a task's stdout was the process's (the red-team helper's find)
        FALSE,
        io(
            f'let t ← IO.asTask (do\n    let o ← IO.getStdout\n    o.putStr "{FORGE}"\n    o.flush)\n'
            "let r ← IO.wait t\nIO.ofExcept r"
        ),
    ),
    "hijack-stdin-from-a-task": (
        FALSE,
        io(
            "let t ← IO.asTask (do\n    let i ← IO.getStdin\n    let _ ← i.getLine\n    let o ← IO.getStdout\n"
            f'    o.putStr "{FORGE * 3}"\n    o.flush)\nlet r ← IO.wait t\nIO.ofExcept r'
        ),
    ),
    "decide-positional-config": (BITS, "  decide (config := Lean.Parser.Tactic.DecideConfig.mk false true true false)"),
    "persist-session": (FALSE, io(f'IO.FS.writeFile "{LAUNCHER.session_program}" "theorem pwned : True := trivial"')),
    "persist-glue": (FALSE, io(f'IO.FS.writeFile "{LAUNCHER.glue}" "process.exit(0)"')),
    "persist-library": (FALSE, io(f'IO.FS.writeFile "{LAUNCHER.library / "Init.olean"}" "pwned"')),
    "chdir": (FALSE, io('IO.Process.setCurrentDir "/"')),
}
AFTER = [(FALSE, "  decide"), (FALSE, "  omega"), (FALSE, "  simp"), (FALSE, "  rfl")]

ORACLE = {  # id -> (body on TRUE, expected outcome): what a proof could do, read off the verdict
    "oracle-ok": (io("pure ()"), "proved"),
    "oracle-fails": (io('throw (IO.userError "no")'), "rejected"),
    "oracle-reads-the-library": (io(f'let _ ← IO.FS.readBinFile "{LAUNCHER.library / "Init.olean"}"'), "proved"),
    "read-tmp": (io(f'let _ ← IO.FS.readFile "{TMP_SECRET}"'), "rejected"),
    "read-home": (io(f'let _ ← IO.FS.readFile "{HOME_SECRET}"'), "rejected"),
    "read-stdin": (io('let h ← IO.FS.Handle.mk "/dev/stdin" IO.FS.Mode.read\nlet _ ← h.getLine'), "rejected"),
    "open-stdout": (io('let _ ← IO.FS.Handle.mk "/dev/stdout" IO.FS.Mode.write'), "rejected"),
    "write-outside": (io(f'IO.FS.writeFile "{OUTSIDE}" "x"'), "rejected"),
    "write-own-folder": (io('IO.FS.writeFile "note.txt" "x"'), "rejected"),
    "write-memory-fs": (io('IO.FS.writeFile "/tmp/note.txt" "x"'), "rejected"),
    # the glue's in-memory home folder: writable, and what one source left the next could read (a red-team find)
    "write-memory-home": (io('IO.FS.writeFile "/home/web_user/note.txt" "x"'), "rejected"),
    "read-requests": (io('let _ ← IO.FS.readFile "requests.jsonl"'), "rejected"),  # one-shot: its own folder's
    # one-shot: the answers of the sources before it (their exported proofs) were in its folder (a red-team find)
    "read-answers": (io('let _ ← IO.FS.readFile "stdout.jsonl"'), "rejected"),
    "read-answers-above": (io('let _ ← IO.FS.readFile "../stdout.jsonl"'), "rejected"),
    "getenv": (io('let v ← IO.getEnv "HOME"\nif v.isNone then throw (IO.userError "") else pure ()'), "rejected"),
    "task-stdout": (
        io('let t ← IO.asTask (do\n    let o ← IO.getStdout\n    o.putStr "\\n")\nlet r ← IO.wait t\nIO.ofExcept r'),
        "rejected",
    ),
    "task-stdin": (
        io("let t ← IO.asTask (do\n    let i ← IO.getStdin\n    let _ ← i.getLine)\nlet r ← IO.wait t\nIO.ofExcept r"),
        "rejected",
    ),
    "chdir-then": (io('IO.Process.setCurrentDir "/"'), "proved"),  # allowed, and undone before the next source
    "cwd-is-not-root": (
        io('let d ← IO.currentDir\nif d.toString == "/" then pure () else throw (IO.userError "")'),
        "rejected",
    ),
}


def _batch() -> list[tuple[str, Problem, str]]:
    rows = [("good-before", TRUE, "  decide")]
    for name, (problem, body) in ATTACKS.items():
        rows.append((name, problem, body))
        rows += [(f"{name}/after-{k}", p, b) for k, (p, b) in enumerate(AFTER)]
    rows += [(name, TRUE, body) for name, (body, _) in ORACLE.items()]
    rows.append(("good-after", TRUE, "  decide"))
    return rows


def _run(runtime: LeanRuntime) -> dict[str, Verdict]:
    rows = _batch()
    verdicts = Verifier(runtime, Policy()).verify_batch([(p, b) for _, p, b in rows])
    return {name: v for (name, _, _), v in zip(rows, verdicts, strict=True)}


@pytest.fixture(scope="module")
def planted() -> None:
    for path in (TMP_SECRET, HOME_SECRET):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("the key is 42\n")
    yield
    for path in (TMP_SECRET, HOME_SECRET, OUTSIDE):
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def session_verdicts(lean: LeanRuntime, planted: None) -> dict[str, Verdict]:
    return _run(lean)


@pytest.fixture(scope="module")
def oneshot_verdicts(planted: None) -> dict[str, Verdict]:
    with get_runtime("embedded", mode="oneshot", timeout=60.0) as runtime:
        return _run(runtime)


MODES = ["session_verdicts", "oneshot_verdicts"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_and_what_follows_are_rejected(mode: str, attack: str, request: pytest.FixtureRequest) -> None:
    verdicts = request.getfixturevalue(mode)
    v = verdicts[attack]
    assert v.outcome == "rejected" and v.reward == 0.0, (v.reasons, v.detail)
    for k in range(len(AFTER)):
        after = verdicts[f"{attack}/after-{k}"]
        assert after.outcome == "rejected", (k, after.reasons, after.detail)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("probe", ORACLE)
def test_what_a_proof_can_reach(mode: str, probe: str, request: pytest.FixtureRequest) -> None:
    v = request.getfixturevalue(mode)[probe]
    assert v.outcome == ORACLE[probe][1], (v.reasons, v.detail)


@pytest.mark.parametrize("mode", MODES)
def test_good_proofs_around_the_attacks_are_proved(mode: str, request: pytest.FixtureRequest) -> None:
    verdicts = request.getfixturevalue(mode)
    assert verdicts["good-before"].proved and verdicts["good-after"].proved


@pytest.mark.parametrize("mode", MODES)
def test_nothing_was_written_and_the_toolchain_is_intact(mode: str, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue(mode)
    assert not OUTSIDE.exists() and not Path("/tmp/note.txt").exists()
    assert verify_toolchain(LAUNCHER) is None
    assert "pwned" not in LAUNCHER.session_program.read_text()


@pytest.mark.parametrize("mode", MODES)
def test_a_task_cannot_reach_the_protocol_pipes(mode: str, request: pytest.FixtureRequest) -> None:
    """The attack rows above come out `rejected`, not `error`; here, that the pipes refused (a read of
    the real stdin would have waited for the next request: a timeout)."""
    verdicts = request.getfixturevalue(mode)
    for probe in ("task-stdout", "task-stdin"):
        assert verdicts[probe].reasons == ("lean_error",), (probe, verdicts[probe].reasons, verdicts[probe].detail)


def test_the_positional_decide_config_is_refused_by_the_judge(session_verdicts: dict[str, Verdict]) -> None:
    """Compiler evaluation (`Lean.reduceBool`) is not a kernel proof, whatever the tactic was called."""
    v = session_verdicts["decide-positional-config"]
    assert v.reasons in (("native_code",), ("lean_error",), ("kernel_rejected",)), (v.reasons, v.detail)


# -- forged exports, handed straight to the judge ------------------------------------------


def _export(lean: LeanRuntime, source: str) -> dict:
    [result] = lean.check([source], export=True)
    assert result.error_free and result.constants is not None, result
    return result.constants


def test_the_judge_refuses_forged_exports(lean: LeanRuntime) -> None:
    """An untrusted run may answer any export: only a kernel proof of the reference statement passes."""
    statement = "theorem target : (1 : Nat) + 1 = 3 :="
    reference = reference_source("", statement)
    axiom = _export(lean, "axiom cheat : (1 : Nat) + 1 = 3\ntheorem target : (1 : Nat) + 1 = 3 := cheat")
    other = _export(lean, "theorem target : (1 : Nat) + 1 = 2 := rfl")
    true_one = _export(lean, "theorem two : (2 : Nat) + 2 = 4 := rfl")
    malformed = {**other, "exprs": [["c", 10**6, []]]}
    checks = [
        KernelCheck(reference, ("target",), axiom),
        KernelCheck(reference, ("target",), other),
        KernelCheck(reference, ("target",), true_one),  # a real proof, of another statement
        KernelCheck(reference, ("target",), malformed),
        KernelCheck(reference, ("target",), {"names": "x"}),
        KernelCheck(reference_source("", "theorem two : (2 : Nat) + 2 = 4 :="), ("two",), true_one),
    ]
    got = lean.kernel_check(checks)
    assert [(k.status, k.reason) for k in got[:5]] == [
        ("rejected", "unexpected_declaration"),
        ("rejected", "statement_modified"),
        ("rejected", "missing_declaration"),
        ("rejected", "malformed_export"),
        ("rejected", "malformed_export"),
    ], got
    assert got[5].status == "ok" and "sorryAx" not in got[5].axioms, got[5]


def test_the_judge_decides_a_proof_while_lean_checks_the_rest_of_the_batch(
    lean: LeanRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first proof reaches the judge before the batch's check is over (the second proof sleeps 3 s in
    Lean); both verdicts still come from the judge, a false statement among them stays rejected."""
    events: list[str] = []
    check_each, kernel_check = lean.check_each, lean.kernel_check

    def watched_check_each(*args, **kwargs):
        out = check_each(*args, **kwargs)
        events.append("check over")
        return out

    def watched_kernel_check(items, **kwargs):
        events.append(f"judge asked about {len(items)}")
        return kernel_check(items, **kwargs)

    monkeypatch.setattr(lean, "check_each", watched_check_each)
    monkeypatch.setattr(lean, "kernel_check", watched_kernel_check)
    tag = uuid.uuid4().hex[:8]  # new sources: no cache answers them
    pairs = [(TRUE, f"  rfl -- {tag}"), (TRUE, f"  sleep 3000\n  rfl -- {tag}"), (FALSE, f"  sleep 1\n  rfl -- {tag}")]
    verdicts = Verifier(lean).verify_batch(pairs)
    assert [v.outcome for v in verdicts] == ["proved", "proved", "rejected"], verdicts
    assert events[0] == "judge asked about 1" and "check over" in events[1:], events
    asked = [int(e.split()[-1]) for e in events if e != "check over"]
    assert sum(asked) == 2, events  # the false one never reached the judge


def test_a_runtime_that_misreports_gets_errors_never_a_verdict(
    lean: LeanRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Faults of the runtime, injected around the real Lean, are a broken verifier (`error`), never a
    proof nor a rejection: a result returned that is not the one the judge was asked about (a proof
    with it was `proved` before the judge's answer was tied to its result), a result missing, and a
    judge that answers fewer checks than it was asked."""
    tag = uuid.uuid4().hex[:8]  # new sources: no cache answers them
    check_each, kernel_check = lean.check_each, lean.kernel_check

    def copies(sources, on_result, **options):  # reports one result, returns an equal copy of it
        return [replace(r, constants=dict(r.constants or {})) for r in check_each(sources, on_result, **options)]

    monkeypatch.setattr(lean, "check_each", copies)
    [swapped] = Verifier(lean).verify_batch([(TRUE, f"  rfl -- {tag}a")])
    assert (swapped.outcome, swapped.reasons) == ("error", ("judge_error:no_answer",)), swapped
    monkeypatch.setattr(lean, "check_each", lambda sources, on_result, **o: check_each(sources, on_result, **o)[1:])
    short = Verifier(lean).verify_batch([(TRUE, f"  rfl -- {tag}b"), (FALSE, f"  rfl -- {tag}b")])
    assert [v.reasons for v in short] == [("runtime_error:RuntimeError",)] * 2, short
    monkeypatch.setattr(lean, "check_each", check_each)
    monkeypatch.setattr(lean, "kernel_check", lambda items, **options: kernel_check(items, **options)[1:])
    [unanswered] = Verifier(lean).verify_batch([(TRUE, f"  rfl -- {tag}c")])
    assert unanswered.reasons == ("runtime_error:RuntimeError",) and "judge answered 0 of 1" in unanswered.detail
    monkeypatch.setattr(lean, "kernel_check", kernel_check)
    assert Verifier(lean).verify(TRUE, f"  rfl -- {tag}d").proved  # the same runtime, let be, proves it


def test_the_judge_imports_under_the_start_ups_limit_and_a_slow_reference_is_its_error(lean: LeanRuntime) -> None:
    """The judge elaborates a reference's imports under the start-up's limit, as the untrusted check
    does a header's (the native runtime's `import Mathlib` takes seconds in a fresh judge): a proof
    under a tight limit is judged, where it was a `kernel_timeout` rejection before. The rest of the
    reference runs under the proof's limit; past it, twice, the judge failed on trusted text the
    proof never touched: an `error` (retried, never cached), not a rejection."""
    header = "import Lean\nimport Std\n"  # ~0.6 s to import in a warm session; the proof itself: ~20 ms
    tight = Problem("tight_two", "theorem tight_two : (2 : Nat) + 2 = 4 := by", header=header)
    verdict = Verifier(lean, Policy(timeout=0.5)).verify(tight, "  rfl")  # a fresh judge's import alone: more
    assert verdict.proved, verdict
    slow = "def big : Nat := (List.range 6000000).foldl (· + ·) 0\n#eval big\n"  # seconds of Lean
    exported = _export(lean, "theorem two : (2 : Nat) + 2 = 4 := rfl")
    reference = reference_source(slow, "theorem two : (2 : Nat) + 2 = 4 :=")
    [answer] = lean.kernel_check([KernelCheck(reference, ("two",), exported)], timeout=0.5)
    assert (answer.status, answer.reason) == ("error", "judge_startup"), answer
    assert "trusted reference" in answer.detail
