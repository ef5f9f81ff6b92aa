"""One Lean process: started, watched, always reaped.

* Each process gets a private folder under /tmp (mode 0700) for its input and output.
* It runs in its own process group, and on Linux the kernel kills it if the Python
  process that started it dies (PR_SET_PDEATHSIG), so a crash or Ctrl-C leaves no orphans.
* Output goes to files, not pipes: nothing blocks if nobody reads, and no reader thread
  is needed. `poll()` reads what was appended since the last call.
* Memory is watched by summing the resident set of the process group; past the cap the
  group is killed. (A hard RLIMIT_AS would break WebAssembly, which reserves large
  virtual address ranges up front.)
* `MachineSlots` caps the Lean processes checking at once on the whole machine (default:
  one per core), across every runtime and Python process: async vector envs or parallel
  test runs queue for a slot instead of thrashing the cores and memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from leangym.lean.batch import parse_line

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def private_dir(prefix: str = "leangym-") -> Path:
    """A fresh folder under /tmp that only this user can read (the embedded glue sees only /tmp)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


class MachineSlots:
    """At most `n` holders machine-wide, through `flock` on n files (freed if a holder dies)."""

    def __init__(self, n: int | None = None):
        self.n = n or int(os.environ.get("LEANGYM_MAX_PROCS", 0)) or os.cpu_count() or 1
        self.dir = Path("/tmp") / f"leangym-slots-{os.getuid()}"
        self.dir.mkdir(mode=0o700, exist_ok=True)

    def acquire(self) -> int:
        """Block until a slot is free; returns the descriptor that holds it."""
        while True:
            for i in range(self.n):
                fd = os.open(self.dir / f"slot{i}", os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    os.close(fd)
            time.sleep(0.1)


class LeanProcess:
    """A Lean run over `input_file`, possibly started before that file exists (a warm spare)."""

    def __init__(self, argv: list[str], env: dict[str, str], workdir: Path, input_file: Path):
        self.workdir, self.input_file = workdir, input_file
        self.stdout_path, self.stderr_path = workdir / "stdout.jsonl", workdir / "stderr.txt"
        self.started = time.monotonic()
        self.fed_at: float | None = None  # when the input was handed over
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self._proc = subprocess.Popen(
                argv,
                env=env,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        self._offset = 0
        self._partial = b""
        self.slot: int | None = None  # a MachineSlots descriptor, held while checking

    @property
    def pid(self) -> int:
        return self._proc.pid

    def feed(self, text: str) -> None:
        """Hand the input over: written beside, then renamed, so Lean never sees half a file."""
        tmp = self.input_file.with_suffix(".partial")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.input_file)
        self.fed_at = time.monotonic()

    def poll(self) -> list[dict]:
        """`--json` messages printed since the last call (complete lines only)."""
        with self.stdout_path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        found = (parse_line(line.decode("utf-8", "replace")) for line in lines)
        return [m for m in found if m is not None]

    def returncode(self) -> int | None:
        return self._proc.poll()

    def rss_mb(self) -> float:
        """Resident memory of the whole process group, in MiB."""
        total_kb = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if int(fields[2]) != self.pid:  # field 5 of /proc/PID/stat: process group
                    continue
                for line in Path(entry.path, "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
            except (OSError, ValueError, IndexError):
                continue
        return total_kb / 1024

    def stderr_tail(self, n: int = 2000) -> str:
        try:
            text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        lines = [ln for ln in text.splitlines() if not ln.startswith("[DEBUG")]
        return "\n".join(lines)[-n:]

    def kill(self) -> None:
        """Kill the whole process group and reap it."""
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=10)

    def cleanup(self) -> None:
        self.kill()
        if self.slot is not None:
            os.close(self.slot)
            self.slot = None
        shutil.rmtree(self.workdir, ignore_errors=True)
