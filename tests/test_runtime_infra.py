"""What happens around Lean: installs, bad launches, memory caps, and reaping processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import wait_until

from leangym.lean_project import FileRuntime, LeanRuntimeError, embedded, get_runtime, native, toolchain
from leangym.lean_project.process import private_dir, run_to_end, stderr_tail
from leangym.lean_project.sandbox import find_sandbox
from leangym.rewards import Problem, Verifier


def test_missing_embedded_runtime_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEANGYM_HOME", str(tmp_path))
    with pytest.raises(LeanRuntimeError, match="not installed: run `leangym setup"):
        get_runtime("embedded")


def test_missing_native_toolchain_names_the_install_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("ELAN_HOME", str(tmp_path))
    monkeypatch.delenv("LEANGYM_LAKE_PROJECT", raising=False)
    with pytest.raises(LeanRuntimeError, match="elan"):
        native.find_native()


def test_unknown_runtime_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="embedded, native"):
        get_runtime("wasm64")


def test_a_mistyped_runtime_option_fails_before_any_lean_is_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """The three builders of a REPL runtime take one set of options (`repl_runtime.Limits`): a
    misspelt one is a TypeError that names it, not a missing-Lean error found first."""
    from leangym.lean_project.repl_runtime import native_repl_runtime

    monkeypatch.setenv("PATH", "/nonexistent")  # no native Lean to find
    builds = [
        lambda: get_runtime("native", worker=2),
        lambda: native_repl_runtime(worker=2),
        lambda: embedded.session_runtime(worker=2),
    ]
    for build in builds:
        with pytest.raises(TypeError, match="worker"):
            build()


def test_session_spares_are_automatic_unless_asked() -> None:
    """`spares=None` (or no keyword) keeps the next session starting only where a start-up is slow."""
    fast, slow = toolchain.locate(), replace(toolchain.locate(), boot=None)
    assert fast.boot is not None  # the precompiled program: a start-up of ~7 s
    for launcher, spares, expected in [
        (fast, None, False),
        (slow, None, True),
        (fast, True, True),
        (slow, False, False),
    ]:
        runtime = embedded.session_runtime(launcher, spares=spares, workers=1)
        assert [w.keep_spare for w in runtime._pool.workers] == [expected]
        runtime.close()


def test_patch_refuses_a_glue_file_it_was_not_written_for(tmp_path: Path) -> None:
    fake = tmp_path / "lean.js"
    fake.write_text("var x=1;newSymIndex=Object.keys(lib.exports).indexOf(symbol);")
    with pytest.raises(LeanRuntimeError, match="refusing to patch"):
        toolchain.patch_glue(fake, tmp_path / "patched.js")
    assert not (tmp_path / "patched.js").exists()


def test_a_toolchain_written_after_lay_out_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check before every start hashes a file only when its signature (inode, size, times) is not
    the one recorded, and records one only for bytes found unchanged: a same-size write with its old
    modification time put back is seen before and after the signatures are recorded."""
    monkeypatch.setenv("LEANGYM_HOME", str(tmp_path / "home"))  # the records go here
    hashed: list[Path] = []
    sha256 = toolchain._sha256
    monkeypatch.setattr(toolchain, "_sha256", lambda path: hashed.append(path) or sha256(path))
    root = tmp_path / "toolchain"

    def library(staging: Path) -> None:
        (staging / "lean").mkdir()
        (staging / "lean" / "A.olean").write_bytes(b"A" * 64)

    toolchain._make_once(root / "lib", library)
    toolchain._make_once(root / "bin-1", lambda staging: (staging / "lean.js").write_text("glue"))
    olean, glue = root / "lib" / "lean" / "A.olean", root / "bin-1" / "lean.js"
    nowhere = tmp_path / "nowhere"
    launcher = toolchain.EmbeddedLauncher(nowhere, glue, nowhere, root / "lib" / "lean", nowhere)

    def check() -> str | None:
        hashed.clear()
        return toolchain.verify_toolchain(launcher)

    def write(path: Path, data: bytes) -> None:
        before = path.stat()
        path.chmod(0o644)
        path.write_bytes(data)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the old modification time put back
        path.chmod(0o444)

    assert check() is None and olean in hashed  # no signature recorded yet: every file is hashed
    write(olean, b"B" * 64)
    assert "A.olean differs from the file laid out" in (check() or "")
    write(olean, b"A" * 64)
    assert check() is None
    time.sleep(toolchain._SETTLED_NS / 1e9 + 0.1)  # the change times are settled: signatures are recorded
    assert check() is None and olean in hashed
    assert check() is None and hashed == []  # nothing was written since: nothing is hashed
    write(olean, b"B" * 64)
    assert "A.olean differs from the file laid out" in (check() or "") and hashed == [olean]
    write(olean, b"A" * 64)
    (root / "bin-1").chmod(0o755)
    (root / "bin-1" / "extra.js").write_text("")
    assert "extra.js was added" in (check() or "")
    (root / "bin-1" / "extra.js").unlink()
    glue.unlink()
    assert "lean.js was removed" in (check() or "")


def test_installed_glue_is_patched() -> None:
    glue = toolchain.locate().glue.read_text(encoding="utf-8")
    assert "leangymSymbolIndex" in glue and "Object.keys(lib.exports).indexOf(symbol)" not in glue
    assert 'console.log("[DEBUG' not in glue
    assert len(glue) < 2_000_000  # the export bookkeeping is gone (89 MB upstream)
    assert "leangymPartial" in glue and "LEANGYM_PTHREAD_POOL" in glue


def test_native_launcher_command_and_imports(tmp_path: Path) -> None:
    (tmp_path / "Mathlib").mkdir()
    (tmp_path / "Mathlib" / "Tactic.olean").write_bytes(b"")
    launcher = native.NativeLauncher(lean=Path("/opt/lean/bin/lean"), lean_path=(tmp_path,), version="4.28.0")
    argv, env = launcher.command(Path("/tmp/x/requests.jsonl"))
    assert argv[-4:] == ["/opt/lean/bin/lean", "--run", str(native.SESSION_PROGRAM), "/tmp/x/requests.jsonl"]
    assert (argv[0] == "/opt/lean/bin/lean") == (find_sandbox() is None)  # in bubblewrap where it works
    assert env["LEAN_PATH"] == str(tmp_path)
    assert launcher.can_import("Mathlib.Tactic") and not launcher.can_import("Mathlib.Data")


def test_the_session_program_is_precompiled_here_and_the_fallback_launch_answers_the_same() -> None:
    launcher = toolchain.locate()
    assert launcher.boot is not None, toolchain.precompile_failure(launcher)
    assert launcher.program()[-1] == str(launcher.boot) and "--run" in launcher.program()
    sources = ["theorem t (a b : Nat) : a + b = b + a := by omega", "theorem u : 2 + 2 = 5 := by decide"]
    answers = []
    for started in (launcher, replace(launcher, boot=None)):  # precompiled, then Lean elaborating Session.lean
        assert started.program()[-1].endswith("Main.lean" if started.boot else "Session.lean")
        with embedded.session_runtime(started, workers=1) as session:
            answers.append([(r.status, r.has_errors, bool(r.constants)) for r in session.check(sources, export=True)])
    assert (
        answers[0] == answers[1] == [("ok", False, True), ("ok", True, True)]
    )  # a failed theorem is added with `sorry`


def test_error_details_drop_the_wasm_builds_debug_reports(tmp_path: Path) -> None:
    log = tmp_path / "stderr.txt"
    log.write_text(
        "[DEBUG:FIND] Init.Data: found 1 parts\n  - /tmp/x/Init/Data.olean\n[DEBUG:FINALIZE] Init.Data\n"
        "  mainModule? = true\nuncaught exception: out of memory\n  at frame 1\n"
    )
    assert stderr_tail(log) == "uncaught exception: out of memory\n  at frame 1"


def test_folders_of_killed_processes_are_removed_by_the_next_one() -> None:
    prefix = f"leangym-test-{uuid.uuid4().hex[:8]}-"
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan, mine = Path(f"/tmp/{prefix}{dead.pid}-x"), Path(f"/tmp/{prefix}{os.getpid()}-y")
    for folder in (orphan, mine):
        folder.mkdir()
        (folder / "stderr.txt").write_text("")
        for path in (folder, folder / "stderr.txt"):
            os.utime(path, (time.time() - 3600, time.time() - 3600))
    fresh = private_dir(prefix)
    try:
        assert not orphan.exists() and mine.exists() and fresh.name.startswith(f"{prefix}{os.getpid()}-")
    finally:
        for folder in (orphan, mine, fresh):
            shutil.rmtree(folder, ignore_errors=True)


def test_a_failed_precompile_leaves_a_reason_and_no_compiled_files(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin-x"
    bin_dir.mkdir()
    broken = replace(toolchain.locate(), node=Path("/bin/false"), glue=bin_dir / "lean.js", boot=None)
    toolchain._precompile(broken)  # `lean -o` "runs" and writes nothing
    assert not (bin_dir / toolchain.PRECOMPILED).exists()
    why = toolchain.precompile_failure(broken)
    assert why is not None and "LeanGymSession" in why


def test_a_lean_that_cannot_start_is_an_infrastructure_error() -> None:
    missing = replace(toolchain.locate(), node=Path("/nonexistent/node"))
    with FileRuntime(missing, warm=0) as runtime:
        [res] = runtime.check(["theorem t : True := trivial"])
    assert res.status == "error" and res.error is not None and res.error.kind == "startup"
    broken = replace(toolchain.locate(), node=Path("/bin/false"))  # starts, then dies at once
    with FileRuntime(broken, warm=0) as runtime:
        [res] = runtime.check(["theorem t : True := trivial"])
    assert res.status == "error" and res.error is not None and res.error.kind == "startup"
    assert runtime.runs_started == 2  # tried once more before giving up
    with embedded.session_runtime(broken) as session:
        results = session.check(["theorem t : True := trivial", "theorem u : True := trivial"])
    assert all(r.status == "error" and r.error is not None and r.error.kind == "startup" for r in results)


def test_memory_cap_kills_the_process_and_says_so() -> None:
    with FileRuntime(toolchain.locate(), warm=0, memory_mb=300) as runtime:
        [res] = runtime.check(["theorem t : True := trivial"])
    assert res.status == "error" and res.error is not None and res.error.kind == "out_of_memory"


# -- no orphans: each scenario runs in a child Python whose Lean processes carry a token ---------

SLOW = "theorem slow : True := by\\n  sleep 600000\\n  trivial"


def processes_with(token: str, exclude: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != exclude:
            try:
                if token.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def lean_children(parent: int, marker: str = "--run") -> list[int]:
    """Lean processes `parent` started whose command line names `marker` (a Lean gets none of the
    caller's environment, so a token there would not find it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == parent and marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def start_child(script: str) -> subprocess.Popen:
    code = "from leangym.lean_project import get_runtime\n" + textwrap.dedent(script)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_a_timed_out_run_leaves_no_process() -> None:
    child = start_child(
        f"""
        runtime = get_runtime("embedded", warm=0)
        [res] = runtime.check(["{SLOW}"], timeout=3)
        spares = runtime.sessions._pool.workers[0]._spares._waiting
        print(res.status, spares[0][0].pid if spares else 0, flush=True)
        import time; time.sleep(60)
        """
    )
    try:
        assert child.stdout is not None
        status, spare = child.stdout.readline().split()
        assert status == "timeout"
        assert set(lean_children(child.pid)) <= {int(spare)}  # the hung Lean is gone; a spare may wait
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupting_or_killing_python_leaves_no_process(sig: signal.Signals) -> None:
    child = start_child(
        f"""
        runtime = get_runtime("embedded", warm=1)
        runtime.prewarm()
        runtime.check(["{SLOW}"], timeout=600)
        """
    )
    try:
        # Generous bounds: on a loaded 2-core machine start-up and reaping are slow; none is a timing claim.
        assert wait_until(lambda: lean_children(child.pid) != [], 240), "Lean never started"
        pids = lean_children(child.pid)
        child.send_signal(sig)
        child.wait(timeout=120)
        assert wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids), 60)
    finally:
        child.kill()
        child.wait()


# -- one short run to its end (the native audit's `lean` runs, toolchain queries) ---------------


def test_run_to_end_returns_status_and_both_streams() -> None:
    code = "import sys; print('to stdout'); print('to stderr', file=sys.stderr); sys.exit(3)"
    done = run_to_end([sys.executable, "-c", code], dict(os.environ), timeout=60, memory_mb=1024)
    assert (done.returncode, done.stdout, done.stderr, done.stopped) == (3, "to stdout\n", "to stderr\n", None)
    assert done.output == "to stdout\nto stderr\n"


def test_run_to_end_past_its_time_limit_kills_the_whole_group() -> None:
    token = uuid.uuid4().hex
    env = {**os.environ, "LEANGYM_TEST_TOKEN": token}
    started = time.monotonic()
    done = run_to_end(["sh", "-c", "sleep 600 & sleep 600"], env, timeout=1, memory_mb=1024)
    assert done.returncode is None and done.stopped == "ran past 1 s" and time.monotonic() - started < 30
    assert wait_until(lambda: processes_with(token, exclude=os.getpid()) == [], 15)  # the grandchild too


def test_run_to_end_past_its_memory_cap_is_killed() -> None:
    code = "import time; block = bytearray(400 * 2**20); block[::4096] = b'x' * len(block[::4096]); time.sleep(600)"
    done = run_to_end([sys.executable, "-c", code], dict(os.environ), timeout=120, memory_mb=200)
    assert (
        done.returncode is None and done.stopped is not None and done.stopped.endswith("passed the 200 MiB memory cap")
    )


# -- a Lean that dies is restarted, and no verdict is lost ------------------------------------


def _kill_when(pids: Callable[[], list[int]], ready: Callable[[], bool], seconds: float = 240) -> threading.Thread:
    """In the background: once `ready()`, SIGKILL the Lean processes `pids()` names."""

    def run() -> None:
        if wait_until(ready, seconds, every=0.01):  # a warm session answers a proof in ~30 ms
            for pid in pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


GOOD = [
    Problem(f"kill{i}", f"theorem kill{i} (a b : Nat) (h : a < b) : a + {i} < b + {i} := by") for i in range(60)
]  # long enough to be killed mid-way (~2 s in a warm session)
BAD = Problem("kill_bad", "theorem kill_bad : (2 : Nat) + 2 = 5 := by")


def _every_verdict_decided(verdicts: list) -> None:
    assert [v.outcome for v in verdicts] == ["proved"] * len(GOOD) + ["rejected"], [v.detail for v in verdicts]


@pytest.mark.lean
def test_killing_a_session_mid_batch_loses_no_verdict() -> None:
    with get_runtime("embedded", mode="session") as runtime:
        verifier = Verifier(runtime)
        session = runtime.sessions
        assert session is not None
        killer = _kill_when(lambda: [session._pool.workers[0].start()], lambda: session.answered() >= 4)
        verdicts = verifier.verify_batch([(p, "  omega") for p in GOOD] + [(BAD, "  decide")])
        killer.join()
        assert session.health().restarts == 1
    _every_verdict_decided(verdicts)


@pytest.mark.lean
def test_a_one_shot_runtime_hands_its_batch_to_its_warm_spare(monkeypatch: pytest.MonkeyPatch) -> None:
    """`warm=1`: a Lean started ahead (before its request file exists) takes the next batch, and
    the check starts the spare of the batch after it."""
    monkeypatch.setenv("LEANGYM_MAX_SPARES", "8")  # spare slots of its own, whatever other tests hold
    with FileRuntime(toolchain.locate(), warm=1) as runtime:
        runtime.prewarm()
        [(spare, _)] = runtime._spares._waiting
        [result] = runtime.check(["theorem warm_two : (2 : Nat) + 2 = 4 := rfl"])
        assert result.accepted and runtime.runs_started == 1
        assert not spare.alive() and not spare.workdir.exists()  # it ran the batch and was cleaned up
        [(following, _)] = runtime._spares._waiting
        assert following.pid != spare.pid and following.alive()
    assert not following.alive()


@pytest.mark.lean
def test_killing_a_one_shot_run_during_start_up_loses_no_verdict() -> None:
    started = time.monotonic()
    with FileRuntime(toolchain.locate(), warm=0) as runtime:
        # Lean answers its imports ~3 s after it starts at the soonest (Node, the wasm compile, the imports):
        # killed at 1.5 s, it is surely still starting, however fast the machine.
        ready = lambda: runtime.runs_started == 1 and time.monotonic() - started > 1.5  # noqa: E731
        killer = _kill_when(lambda: lean_children(os.getpid(), "runner.js"), ready)
        verdicts = Verifier(runtime).verify_batch([(p, "  omega") for p in GOOD] + [(BAD, "  decide")])
        killer.join()
        assert runtime.runs_started == 2  # the batch was run once more, whole
    _every_verdict_decided(verdicts)


@pytest.mark.lean
def test_a_session_past_its_memory_cap_is_restarted_and_no_verdict_is_lost() -> None:
    with embedded.session_runtime(recycle_mb=500) as runtime:  # every session is past 500 MB once it started
        results = runtime.check(["theorem r : 1 + 1 = 2 := rfl", "theorem w : 1 = 2 := rfl"])
        assert runtime._pool.workers[0].generation == 2  # the second source ran in a fresh session
    assert [r.error_free for r in results] == [True, False]
