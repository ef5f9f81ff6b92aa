"""One Lean process: started, watched, always reaped (`OwnedProcess`, the base of `LeanProcess`
below and of `repl.ReplProcess`).

* Each process gets a private folder under /tmp (mode 0700) for its input and output.
* It runs in its own process group, and on Linux the kernel kills it if the Python
  process that started it dies (PR_SET_PDEATHSIG), so a crash or Ctrl-C leaves no orphans.
  The kernel sends that signal when the *thread* that forked the child ends, so every Lean
  process (file runs, spares, REPLs) is started from one long-lived thread (`popen_owned`).
* A `LeanProcess`'s output goes to files, not pipes: nothing blocks if nobody reads, and no
  reader thread is needed. `read_new()` reads what was appended since the last call. (A
  `ReplProcess` is spoken to on pipes, one request at a time; its stderr is a file too.)
* Memory is watched by summing the resident set of the process and its children (`tree_rss_mb`);
  past the cap the group is killed. (A hard RLIMIT_AS would break WebAssembly, which reserves large virtual
  address ranges up front.) No file it writes may grow past `max_output_bytes()`
  (RLIMIT_FSIZE): a proof's code can write to stderr, which is a file here.
* `run_to_end` is the whole life of one short Lean run (the native audit's `lean -o` and
  `lean --run`): a run slot, the process group, the memory cap, a wall-clock limit.
* `MachineSlots` caps Lean processes on the whole machine, across every runtime and Python
  process: those checking at once (default one per core; others queue) and warm spares
  (default half the cores; beyond that no spare is started), so async vector envs or
  parallel test runs neither thrash the cores nor exhaust memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

_PR_SET_PDEATHSIG = 1


def max_output_bytes() -> int:
    """The largest file a Lean process may write (`LEANGYM_MAX_OUTPUT_MB`, default 1024): its
    answers and its stderr go to files, and code inside a proof can write to stderr."""
    return int(float(os.environ.get("LEANGYM_MAX_OUTPUT_MB", 1024)) * 2**20)


def _child_setup(max_bytes: int) -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    with contextlib.suppress(Exception):
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


_SPAWNER: ThreadPoolExecutor | None = None
_SPAWNER_LOCK = threading.Lock()


def popen_owned(argv: list[str], **kwargs: Any) -> subprocess.Popen:
    """`subprocess.Popen` in a new process group that dies with this Python process, its files
    capped at `max_output_bytes()`.

    Started from one long-lived thread: a child started from a short-lived thread (a pool
    worker, a request handler) would be killed when that thread ends.
    """
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:
            _SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leangym-spawner")
    preexec = functools.partial(_child_setup, max_output_bytes()) if sys.platform == "linux" else None
    return _SPAWNER.submit(subprocess.Popen, argv, start_new_session=True, preexec_fn=preexec, **kwargs).result()


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a child started by `popen_owned` with its whole process group, and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def stderr_tail(path: Path, n: int = 2000) -> str:
    """The end of a Lean process's stderr file, without the embedded build's `[DEBUG…]` lines and
    their indented continuation lines (the wasm Lean reports each module it imports)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines, in_debug = [], False
    for line in text.splitlines():
        in_debug = line.startswith("[DEBUG") or (in_debug and line.startswith(" "))
        if not in_debug:
            lines.append(line)
    return "\n".join(lines)[-n:].strip()


def private_dir(prefix: str = "leangym-") -> Path:
    """A fresh folder under /tmp that only this user can read (the embedded glue sees only /tmp).

    Its name holds this process's id, so that the folders of processes that were killed
    before they could remove theirs are found and removed here (when their owner is gone and
    nothing in them changed for 10 minutes: a process of another pid namespace may share /tmp)."""
    for folder in Path("/tmp").glob(f"{prefix}*-*"):
        owner = folder.name[len(prefix) :].split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)) and _untouched_for(folder, 600):
            shutil.rmtree(folder, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir="/tmp"))


def _untouched_for(folder: Path, seconds: float) -> bool:
    try:
        newest = max(p.stat().st_mtime for p in (folder, *folder.iterdir()))
    except OSError:
        return False
    return newest < time.time() - seconds


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class MachineSlots:
    """At most `n` holders machine-wide, through `flock` on n files (freed if a holder dies)."""

    def __init__(self, kind: str, n: int):
        self.n = n
        self.dir = Path("/tmp") / f"leangym-slots-{os.getuid()}"
        self.dir.mkdir(mode=0o700, exist_ok=True)
        self.kind = kind

    def acquire(self, *, block: bool = True) -> int | None:
        """A descriptor holding a free slot; waits for one, or returns None if `block` is False."""
        while True:
            for i in range(self.n):
                fd = os.open(self.dir / f"{self.kind}{i}", os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    os.close(fd)
            if not block:
                return None
            time.sleep(0.1)


def run_slots() -> MachineSlots:
    """Lean processes checking at once on this machine: `LEANGYM_MAX_PROCS`, default one per core."""
    return MachineSlots("run", int(os.environ.get("LEANGYM_MAX_PROCS", 0)) or os.cpu_count() or 1)


def spare_slots() -> MachineSlots:
    """Warm spares kept on this machine (each holds ~0.8 GB once started): `LEANGYM_MAX_SPARES`, default cores/2."""
    return MachineSlots("spare", int(os.environ.get("LEANGYM_MAX_SPARES", 0)) or max(1, (os.cpu_count() or 1) // 2))


MEMORY_POLL_S = 0.5  # how often a watcher scans a Lean process tree for its memory cap, at most


class OwnedProcess:
    """A Lean process started by `popen_owned` (its own process group, dying with this Python
    process), its stderr in `workdir/stderr.txt`: what every Lean process of this project is.
    `LeanProcess` is fed a file; `repl.ReplProcess` is spoken to on pipes."""

    def __init__(
        self,
        argv: Sequence[str],
        workdir: Path,
        *,
        env: Mapping[str, str] | None,
        cwd: str | Path | None,
        stdin: Any,
        stdout: Any,
    ):
        self.workdir = workdir
        self.stderr_path = workdir / "stderr.txt"
        self.started = time.monotonic()
        self._rss: tuple[float, float] | None = None  # (when, MiB): the last scan of /proc (`recent_rss_mb`)
        with self.stderr_path.open("wb") as err:
            env = dict(env) if env is not None else None
            self._proc = popen_owned(list(argv), env=env, cwd=cwd, stdin=stdin, stdout=stdout, stderr=err)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def returncode(self) -> int | None:
        return self._proc.poll()

    def alive(self) -> bool:
        return self._proc.poll() is None

    def rss_mb(self) -> float:
        return tree_rss_mb(self.pid)

    def recent_rss_mb(self) -> float:
        """`rss_mb`, scanned at most every `MEMORY_POLL_S`: a scan of /proc is not free, and every
        watcher asks in its loop (a pool worker, after every request)."""
        now = time.monotonic()
        if self._rss is None or now - self._rss[0] >= MEMORY_POLL_S:
            self._rss = (now, self.rss_mb())
        return self._rss[1]

    def past_memory(self, cap_mb: float | None) -> str | None:
        """Why the process is over its memory cap (None: under it, or no cap)."""
        if cap_mb is None:
            return None
        rss = self.recent_rss_mb()
        return f"{rss:.0f} MiB passed the {cap_mb:.0f} MiB memory cap" if rss > cap_mb else None

    def stderr_tail(self, n: int = 2000) -> str:
        return stderr_tail(self.stderr_path, n)

    def kill(self) -> None:
        """Kill the process group at once and reap it."""
        kill_group(self._proc)


class LeanProcess(OwnedProcess):
    """A Lean run over `input_file`, possibly started before that file exists (a warm spare)."""

    def __init__(self, argv: list[str], env: dict[str, str], workdir: Path, input_file: Path, cwd: Path | None = None):
        self.input_file = input_file
        self.stdout_path = workdir / "stdout.jsonl"
        self.fed_at: float | None = None  # when the input was handed over
        with self.stdout_path.open("wb") as out:
            super().__init__(argv, workdir, env=env, cwd=cwd or workdir, stdin=subprocess.DEVNULL, stdout=out)
        self._offset = 0
        self.slots: list[int] = []  # MachineSlots descriptors this process holds

    def feed(self, text: str) -> None:
        """Hand the input over: written beside, then renamed, so Lean never sees half a file."""
        tmp = self.input_file.with_suffix(".partial")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.input_file)
        self.fed_at = time.monotonic()

    def read_new(self) -> str:
        """What Lean printed on stdout since the last call (cut at a line end)."""
        with self.stdout_path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        cut = chunk.rfind(b"\n") + 1
        self._offset += cut
        return chunk[:cut].decode("utf-8", "replace")

    def cleanup(self) -> None:
        self.kill()
        self.release_slots()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def release_slots(self) -> None:
        for fd in self.slots:
            os.close(fd)
        self.slots = []


P = TypeVar("P", bound=OwnedProcess)


class Spares(Generic[P]):
    """Processes started ahead of need, so a run or a restart does not wait for Lean's start-up:
    a one-shot runtime's warm runs (`oneshot.FileRuntime`), a pool worker's next process
    (`pool.ReplWorker`). Each holds one of the machine's spare slots (`spare_slots`) while it waits.
    Not thread-safe: its owner's lock guards it."""

    def __init__(self, discard: Callable[[P], None]):
        self._discard = discard  # how a process nobody took ends (closed, its folder removed)
        self._waiting: list[tuple[P, int]] = []  # a started process and its spare slot
        self._slots: MachineSlots | None = None  # the machine's spare slots

    def take(self) -> P | None:
        """A started process, no longer a spare; None if none waits (spares that died waiting are discarded)."""
        while self._waiting:
            proc, slot = self._waiting.pop(0)
            os.close(slot)
            if proc.alive():
                return proc
            self._discard(proc)
        return None

    def top_up(self, want: int, start: Callable[[], P], failures: tuple[type[Exception], ...] = (OSError,)) -> None:
        """Start spares until `want` wait, while the machine has a spare slot free. A start that fails
        with one of `failures` is left for the next real start to report."""
        while len(self._waiting) < want:
            self._slots = self._slots or spare_slots()  # made once, on first use
            slot = self._slots.acquire(block=False)
            if slot is None:
                return  # enough spares on this machine already
            try:
                self._waiting.append((start(), slot))
            except failures:
                os.close(slot)
                return

    def kill(self) -> None:
        """Kill the waiting processes now (from any thread); they are discarded when next taken or closed."""
        for proc, _ in list(self._waiting):
            proc.kill()

    def close(self) -> None:
        """Discard every waiting process."""
        while self._waiting:
            proc, slot = self._waiting.pop()
            os.close(slot)
            self._discard(proc)

    def pids(self) -> tuple[int, ...]:
        """The waiting processes' ids."""
        return tuple(proc.pid for proc, _ in self._waiting)

    def forget(self) -> None:
        """In a forked child (an async vector env worker), the spares are the parent's: drop them, don't end them."""
        self._waiting = []


@dataclass(frozen=True)
class Finished:
    """How a `run_to_end` process ended."""

    returncode: int | None  # None when it was stopped (see `stopped`)
    stdout: str
    stderr: str
    stopped: str | None = None  # why it was killed: past its time limit or its memory cap

    @property
    def output(self) -> str:
        """Everything it printed: stdout, then stderr."""
        return self.stdout + self.stderr


def run_to_end(
    argv: list[str],
    env: dict[str, str],
    *,
    timeout: float,
    memory_mb: float,
    cwd: Path | None = None,
    machine_slot: bool = True,
    poll_s: float = 0.05,
) -> Finished:
    """Run one Lean process to its end, as every Lean process of this project runs.

    It waits for a machine-wide run slot (unless `machine_slot` is off: a cheap query such as
    `lean --version` must not wait behind proof checking), runs in its own process group that
    dies with this Python process, and is killed (with its group) past `timeout` seconds or
    `memory_mb`.
    """
    slot = run_slots().acquire() if machine_slot else None
    workdir = private_dir("leangym-run-")
    try:
        proc = LeanProcess(argv, env, workdir, workdir / "input", cwd=cwd)
    except BaseException:
        if slot is not None:
            os.close(slot)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    if slot is not None:
        proc.slots.append(slot)
    stopped: str | None = None
    try:
        while proc.returncode() is None:
            if time.monotonic() - proc.started > timeout:
                stopped = f"ran past {timeout:.0f} s"
            stopped = stopped or proc.past_memory(memory_mb)
            if stopped is not None:
                break
            time.sleep(poll_s)
        proc.kill()
        out, err = (path.read_text(encoding="utf-8", errors="replace") for path in (proc.stdout_path, proc.stderr_path))
        return Finished(None if stopped else proc.returncode(), out, err, stopped)
    finally:
        proc.cleanup()


def machine_memory_mb() -> float:
    """The machine's physical memory in MiB."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20


def default_workers(memory_mb: float | None) -> int:
    """Lean processes for a pool: one per two cores (a checking Lean keeps ~1.4 cores busy, it
    elaborates on several threads), no more than the machine's memory holds at `memory_mb` each."""
    by_cores = max(1, (os.cpu_count() or 2) // 2)
    return by_cores if not memory_mb else max(1, min(by_cores, int(machine_memory_mb() // memory_mb)))


def tree_rss_mb(leader: int) -> float:
    """Anonymous resident memory of a process and every process under it, in MiB: a Lean started
    by `popen_owned` with what it started (bubblewrap's child; Node's threads are one process).

    File-backed pages (a native toolchain's memory-mapped `.olean` files, Mathlib's run to
    gigabytes and are shared) are not counted. Read from the kernel's list of each process's
    children (two small files a process: pools ask after every request).
    """
    total, todo = 0.0, [leader]
    while todo:
        pid = todo.pop()
        total += private_rss_mb(pid)
        with contextlib.suppress(OSError, ValueError):  # children its main thread started (Lean's threads start none)
            todo += [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return total


def private_rss_mb(pid: int) -> float:
    """Anonymous resident memory of `pid` in MiB (file-backed pages such as mapped .olean files excluded)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0
