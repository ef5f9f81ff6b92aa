"""The outer confinement (`lean_project/sandbox.py`): bubblewrap around every Lean that runs submitted code.

The sandbox is tested as a layer on its own, with ordinary programs inside it (a shell, this
Python): what it must hide and refuse does not depend on the program. Then the embedded Lean
of this test session is shown to run inside it (its own mount, network and process
namespaces), and the native runtime's command lines (no native Lean here) are shown to put
Lean inside it with only the toolchain to read. The attacks through a real Lean proof are in
test_trusted_verdicts.py and run inside this layer when bubblewrap is installed (`make setup`
installs it as root).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from leangym.lean_project import LeanRuntime, sandbox
from leangym.lean_project.native import NativeLauncher
from leangym.lean_project.process import run_to_end
from leangym.lean_project.sandbox import Sandbox, find_sandbox
from leangym.lean_project.types import LeanRuntimeError

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed (make setup installs it as root)"
)


@pytest.fixture
def box() -> Sandbox:
    found = find_sandbox()
    assert found is not None, sandbox.describe()
    return found


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@needs_bwrap
def test_the_sandbox_hides_host_files_and_allows_only_its_writes(box: Sandbox, tmp_path: Path) -> None:
    home = Path.home() / f".leangym-planted-{uuid.uuid4().hex}"
    host_tmp = Path("/tmp") / f"leangym-planted-{uuid.uuid4().hex}"
    readable, writable = tmp_path / "read", tmp_path / "write"
    readable.mkdir()
    writable.mkdir()
    (readable / "given.txt").write_text("given")
    try:
        for planted in (home, host_tmp):
            planted.write_text("secret")
        script = "; ".join(
            [
                f"cat {home} && echo READ-HOME",
                f"cat {host_tmp} && echo READ-TMP",
                f"cat {readable}/given.txt && echo READ-GIVEN",
                f"echo x > {readable}/new.txt && echo WROTE-READ-ONLY",
                f"echo x > {writable}/new.txt && echo WROTE-GIVEN",
                f"echo x > /usr/leangym-{uuid.uuid4().hex} && echo WROTE-USR",
                "ls /root && echo SAW-ROOT",
                "echo DONE",
            ]
        )
        done = run(box.wrap(["/bin/sh", "-c", script], reads=(readable,), writes=(writable,)))
        assert "DONE" in done.stdout, done.stderr
        assert "READ-GIVEN" in done.stdout and "WROTE-GIVEN" in done.stdout  # the controls
        for refused in ("READ-HOME", "READ-TMP", "WROTE-READ-ONLY", "WROTE-USR", "SAW-ROOT"):
            assert refused not in done.stdout, done.stdout
        assert (writable / "new.txt").exists() and not (readable / "new.txt").exists()
    finally:
        home.unlink(missing_ok=True)
        host_tmp.unlink(missing_ok=True)


@needs_bwrap
def test_the_sandbox_has_no_network_and_sees_no_other_process(box: Sandbox) -> None:
    """A listener on this machine's loopback is out of reach, and the process list holds only the sandbox's."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        code = (
            "import json, os, socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=5); print('CONNECTED')\n"
            "except OSError as e:\n"
            "    print('REFUSED', e)\n"
            "print('PIDS', json.dumps([int(p) for p in os.listdir('/proc') if p.isdigit()]))\n"
        )
        python = Path(sys.executable)
        reads = sorted({str(Path(sys.base_prefix)), str(Path(sys.prefix)), str(python.resolve().parent.parent)})
        done = run(box.wrap([str(python), "-c", code], reads=reads))
    assert "REFUSED" in done.stdout and "CONNECTED" not in done.stdout, (done.stdout, done.stderr)
    pids = json.loads(done.stdout.split("PIDS", 1)[1])
    assert max(pids) < 10, pids  # a fresh pid namespace: bubblewrap, the program, nothing of the host


def _namespaces(pid: int) -> tuple[str, str, str]:
    return tuple(os.readlink(f"/proc/{pid}/ns/{kind}") for kind in ("mnt", "net", "pid"))  # type: ignore[return-value]


def _lean_processes_of(group: int) -> list[int]:
    """Pids in process group `group` that run the embedded Lean (Node on lean.js)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        node = cmdline.split(b"\0", 1)[0].endswith(b"/node")  # not bubblewrap, whose arguments name it too
        if int(stat[stat.rindex(")") + 2 :].split()[2]) == group and node and b"lean.js" in cmdline:
            found.append(int(entry.name))
    return found


@needs_bwrap
def test_the_embedded_lean_runs_inside_the_sandbox(lean: LeanRuntime) -> None:
    """Every embedded Lean this process started (sessions and the judge, already warm) is in its
    own mount, network and pid namespaces, and still answers (the control)."""
    [result] = lean.check(["theorem sandboxed : 1 + 1 = 2 := rfl"])
    assert result.status == "ok" and not result.has_errors
    ours = _namespaces(os.getpid())
    groups = []
    for entry in os.scandir("/proc"):
        try:
            stat = Path(entry.path, "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat[stat.rindex(")") + 2 :].split()[1]) == os.getpid():  # our children
            groups.append(int(entry.name))
    leans = [pid for group in groups for pid in _lean_processes_of(group)]
    assert leans, "no embedded Lean found among this process's children"
    for pid in leans:
        theirs = _namespaces(pid)
        assert all(a != b for a, b in zip(ours, theirs, strict=True)), (pid, ours, theirs)


@needs_bwrap
def test_the_native_lean_is_started_inside_the_sandbox(tmp_path: Path) -> None:
    """No native Lean here: a NativeLauncher over a stand-in toolchain folder shows its command lines
    put the program in the sandbox, reading the toolchain and writing only what they name."""
    sysroot = tmp_path / "toolchain"
    (sysroot / "bin").mkdir(parents=True)
    (sysroot / "lib" / "lean").mkdir(parents=True)
    (sysroot / "lib" / "lean" / "Init.olean").write_text("library")
    launcher = NativeLauncher(lean=sysroot / "bin" / "lean", lean_path=(sysroot / "lib" / "lean",), version="stand-in")
    out = tmp_path / "out"
    out.mkdir()
    planted = Path.home() / f".leangym-planted-{uuid.uuid4().hex}"
    planted.write_text("secret")
    try:
        script = (
            f"cat {sysroot}/lib/lean/Init.olean; cat {planted} && echo READ-HOME; "
            f"echo x > {sysroot}/lib/lean/Init.olean && echo WROTE-LIBRARY; echo ok > {out}/o.txt; env"
        )
        done = run(launcher.confined(["/bin/sh", "-c", script], writes=(out,)))
    finally:
        planted.unlink()
    assert done.stdout.startswith("library"), (done.stdout, done.stderr)
    assert "READ-HOME" not in done.stdout and "WROTE-LIBRARY" not in done.stdout
    assert (out / "o.txt").read_text() == "ok\n"
    assert set(launcher.environment()) == {"LEAN_PATH", "LEAN_SYSROOT", "PATH"}  # nothing of the caller's


def test_no_lean_process_writes_a_file_past_the_output_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proof's code can write to stderr (a background task may), which is a file here: every Lean
    process runs under RLIMIT_FSIZE (`LEANGYM_MAX_OUTPUT_MB`), so it cannot fill the disk."""
    monkeypatch.setenv("LEANGYM_MAX_OUTPUT_MB", "1")
    flood = "head -c 5000000 /dev/zero >&2; echo survived"
    done = run_to_end(["/bin/sh", "-c", flood], {"PATH": "/usr/bin:/bin"}, timeout=60, memory_mb=1024)
    assert len(done.stderr) <= 2**20 < 5_000_000, len(done.stderr)


def test_sandbox_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEANGYM_SANDBOX", "sometimes")
    with pytest.raises(LeanRuntimeError, match="expected auto, off or required"):
        find_sandbox()
    monkeypatch.setenv("LEANGYM_SANDBOX", "off")
    assert find_sandbox() is None and "off" in sandbox.describe()
    assert sandbox.require_sandbox("the native Lean") is None  # turned off on purpose: allowed
    monkeypatch.setenv("PATH", "/nonexistent")  # no bwrap to find
    monkeypatch.setenv("LEANGYM_SANDBOX", "auto")
    assert find_sandbox() is None
    with pytest.raises(LeanRuntimeError, match="apt-get install bubblewrap"):
        sandbox.require_sandbox("the native Lean")  # the native Lean has no other layer: refused
    monkeypatch.setenv("LEANGYM_SANDBOX", "required")
    with pytest.raises(LeanRuntimeError, match="required"):
        find_sandbox()
