"""The outer confinement: bubblewrap around every Lean process that may run submitted code.

Lean runs the code of a proof's tactic configurations while it elaborates (docs/verification.md),
so a Lean that elaborates submitted text is an untrusted program. The embedded runtime confines
it twice already (Node's permission model and the glue's own mounts); the native runtime has no
such layer of its own. Bubblewrap (`bwrap`, the Debian package `bubblewrap`) puts a process in
new kernel namespaces: an empty root file system holding only what is bound into it, a private
`/tmp`, no network, its own process ids, no capabilities. A `Sandbox.wrap`ped command can read
the system's programs and libraries and the paths it is given, write only the paths it is
given, and sees nothing of `/home`, `/root`, the host's `/tmp` or other processes.

`LEANGYM_SANDBOX` chooses: `auto` (the default: bubblewrap when it works on this machine),
`off` (never), `required` (refuse to start Lean without it). The native runtime, which has no
other layer, refuses to start without bubblewrap unless `LEANGYM_SANDBOX=off` says so.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from leangym.lean_project.types import LeanRuntimeError

MODE_VARIABLE = "LEANGYM_SANDBOX"
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; `make setup` does it as root)"
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64")  # programs and shared libraries, read-only


@dataclass(frozen=True)
class Sandbox:
    """A working `bwrap`; `wrap` turns a command line into the same command, confined."""

    bwrap: str

    def wrap(
        self, argv: Sequence[str], *, reads: Sequence[str | Path] = (), writes: Sequence[str | Path] = ()
    ) -> list[str]:
        """`argv` inside new namespaces that see only the system's programs, `reads` (read-only)
        and `writes` (read-write), each at its own path; no network, no host `/tmp`, no other processes.

        The sandbox dies with its parent and runs in the caller's process group (no new session),
        so `process.kill_group` ends all of it. Paths may hold `repl.SCRATCH`, filled in later. The
        environment is the caller's to keep minimal (it is passed through).
        """
        args = [self.bwrap, "--die-with-parent", "--unshare-all", "--cap-drop", "ALL"]
        for path in _SYSTEM:
            if os.path.islink(path):  # merged /usr: /lib -> usr/lib
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for path in reads:
            args += ["--ro-bind", str(path), str(path)]
        for path in writes:
            args += ["--bind", str(path), str(path)]
        return [*args, "--", *argv]


def mode() -> str:
    """`auto`, `off` or `required` (`LEANGYM_SANDBOX`; anything else is an error, not a silent default)."""
    value = os.environ.get(MODE_VARIABLE, "auto").strip().lower() or "auto"
    if value not in ("auto", "off", "required"):
        raise LeanRuntimeError(f"{MODE_VARIABLE}={value!r}: expected auto, off or required")
    return value


@functools.cache
def _probe(bwrap: str) -> str | None:
    """None if `bwrap` can make a sandbox here (user namespaces allowed), else why not."""
    probe = Sandbox(bwrap).wrap(["/bin/true"])
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit status {done.returncode}")[:300]


def find_sandbox() -> Sandbox | None:
    """The sandbox to wrap Lean in: None when off, or when absent and not required (then an error)."""
    wanted = mode()
    if wanted == "off":
        return None
    bwrap = shutil.which("bwrap")
    problem = "bubblewrap (`bwrap`) is not installed" if bwrap is None else _probe(bwrap)
    if problem is None:
        return Sandbox(bwrap)  # type: ignore[arg-type]
    if wanted == "required":
        raise LeanRuntimeError(f"{MODE_VARIABLE}=required, but {problem}: {INSTALL_HINT}")
    return None


def require_sandbox(why: str) -> Sandbox | None:
    """The sandbox, for a Lean with no confinement of its own: an error without one, unless turned off."""
    sandbox = find_sandbox()
    if sandbox is None and mode() != "off":
        raise LeanRuntimeError(
            f"{why} runs submitted code with no confinement but bubblewrap, which is not usable here: "
            f"{INSTALL_HINT}; or set {MODE_VARIABLE}=off to run it unconfined (trusted input only)"
        )
    return sandbox


def describe() -> str:
    """One line for `leangym doctor`: which outer confinement Lean processes get here."""
    try:
        sandbox = find_sandbox()
    except LeanRuntimeError as e:
        return f"refused: {e}"
    if sandbox is not None:
        return f"bubblewrap ({sandbox.bwrap}): empty root, read-only toolchain, private /tmp, no network, own pids"
    if mode() == "off":
        return f"off ({MODE_VARIABLE}=off)"
    bwrap = shutil.which("bwrap")
    return f"none: {'bwrap is not installed' if bwrap is None else _probe(bwrap)}; {INSTALL_HINT}"
