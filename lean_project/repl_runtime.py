"""The runtime API (`LeanRuntime.check`) over a pool of Lean REPLs: one header, many proofs.

A source is split into its *header* — the leading `import`, `open`, `set_option` and
`universe` lines — and its *body* (`source.split_header`). Each worker elaborates a header once (`{"cmd": header}`)
and checks every body that shares it on top of that environment (`{"cmd": body, "env": n}`).
Each body starts from the header's environment afresh, so nothing one source declares or
changes (instances, attributes, notation, `#exit`) reaches another: sources never share a
scope the way a batched file run must arrange for.

Messages come back with positions relative to the whole source (the header's line count is
added to a body's lines); the header's own messages are part of every result in its group,
as they would be in a file. Sources that hold only a header, or whose header cannot be
cut cleanly at a line end, are sent whole as one fresh command.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from leangym.lean_project.pool import ReplCommand, ReplPool, ReplWorker
from leangym.lean_project.process import default_workers
from leangym.lean_project.repl import ReplFailure, ReplRefusal
from leangym.lean_project.runtime import OnResult, StreamingRuntime
from leangym.lean_project.source import Split, split_header
from leangym.lean_project.types import InfraError, InfraKind, Message, RuntimeHealth, SourceResult

if TYPE_CHECKING:
    from leangym.lean_project.native import NativeLauncher
    from leangym.lean_project.tactics import TacticBackend

REPL_BUILD_HINT = "`cd lean_project && lake build repl` (docs/native.md)"


@dataclass(frozen=True)
class _Request:
    split: Split
    export: bool = False


class ReplRuntime(StreamingRuntime):
    """A `LeanRuntime` over a `ReplPool` (see the module docstring).

    The pool's processes are the Lean REPL (`native`) or leangym's own session program
    (`embedded`, `lean_project/session/Session.lean`), which speaks the same protocol.
    """

    def __init__(
        self,
        pool: ReplPool,
        *,
        name: str = "native",
        version: str,
        timeout: float = 60.0,
        importable: Callable[[str], bool] | None = None,
        import_hint: Callable[[str], str] | None = None,
        preload_header: str | None = None,
        startup_probe: str | None = None,
        keeps_proof_states: bool = False,
    ):
        self._pool = pool  # the runtime's own: callers ask the runtime (`broken`, `answered`, `health`)
        self._keeps_proof_states = keeps_proof_states  # the Lean REPL does; the session program does not
        self.name = name
        self._version = version
        self.timeout = timeout  # seconds per source (a body's command); a header's: the pool's start-up limit
        self._importable = importable
        self._import_hint = import_hint or super().import_hint
        self.preload_header = preload_header
        # The header of a source that has none: a fresh process answers it first, so a Lean
        # that cannot start is never mistaken for one a source crashed (None: send such a
        # source whole, as the recorded REPL transcripts do).
        self.startup_probe = startup_probe

    @property
    def version(self) -> str:
        return self._version

    def can_import(self, module: str) -> bool:
        return self._importable is None or self._importable(module)

    def import_hint(self, module: str) -> str:
        return self._import_hint(module)

    def proof_state_tactics(self, *, timeout: float, max_heartbeats: int | None) -> TacticBackend | None:
        if not self._keeps_proof_states:
            return None
        from leangym.lean_project.tactics import ReplTactics  # tactics.py imports the runtime API

        return ReplTactics(self._pool, timeout=timeout, max_heartbeats=max_heartbeats)

    def check_each(
        self, sources: Sequence[str], on_result: OnResult, *, timeout: float | None = None, export: bool = False
    ) -> list[SourceResult]:
        """`check`, with `on_result` told of each source's result as its worker has it (from that worker's thread)."""
        limit = self.timeout if timeout is None else timeout
        out: dict[int, SourceResult] = {}
        jobs: list[tuple[int, _Request]] = []
        for i, source in enumerate(sources):
            split = split_header(source)
            missing = [m for m in split.imports if not self.can_import(m)]
            if missing:
                out[i] = SourceResult("error", error=InfraError("unsupported_import", self.import_hint(missing[0])))
                on_result(i, out[i])
            else:
                jobs.append((i, _Request(split, export)))

        def run(worker: ReplWorker, job: tuple[int, _Request]) -> SourceResult:
            result = self._run(worker, job[1], limit)
            on_result(job[0], result)
            return result

        def fail(job: tuple[int, _Request], error: InfraError) -> SourceResult:
            result = SourceResult("timeout" if error.kind == "timeout" else "error", error=error)
            on_result(job[0], result)
            return result

        self._count(len(jobs))
        done = self._pool.map(jobs, run, fail)
        out.update({i: result for (i, _), result in zip(jobs, done, strict=True)})
        return [out[i] for i in range(len(sources))]

    def _run(self, worker: ReplWorker, job: _Request, limit: float) -> SourceResult:
        split = job.split
        shared: list[Message] = []
        env: int | None = None
        header = split.header or self.startup_probe
        if header is not None:
            try:
                head = worker.header(header)
            except ReplFailure as failure:  # trusted text: Lean itself did not come up
                raise ReplFailure(InfraError("startup", f"Lean did not start: {failure.error.detail}")) from failure
            if isinstance(head, ReplRefusal):
                return _refused(f"the header did not elaborate: {head.message}", kind="startup")
            shared, env = head.messages, head.env
        started = time.monotonic()
        answer = worker.command(split.body, env=env, timeout=limit, line_offset=split.line_offset, export=job.export)
        seconds = time.monotonic() - started
        if isinstance(answer, ReplRefusal):
            return _refused(f"the REPL refused the source: {answer.message}", shared, seconds)
        return SourceResult("ok", shared + answer.messages, seconds=seconds, constants=answer.constants)

    def prewarm(self) -> None:
        """Start every worker, and elaborate `preload_header` in each, in the background: the caller
        goes on (loads a model, generates) while Lean starts, and a check that comes meanwhile
        waits for its worker's start instead of starting one of its own."""
        header = self.preload_header

        def warm(worker: ReplWorker) -> Any:
            return worker.header(header) if header else worker.start()

        threading.Thread(target=self._pool.on_every_worker, args=(warm,), daemon=True).start()

    def broken(self) -> InfraError | None:
        """Why no process of this runtime can start (they died before answering anything), or None."""
        return self._pool.broken()

    def answered(self) -> int:
        """Requests its live processes have answered (0: none has answered yet)."""
        return self._pool.answered()

    def health(self) -> RuntimeHealth:
        mode = "repl" if self._keeps_proof_states else "session"  # the Lean REPL, or leangym's session program
        return self._pool.health(mode)

    def close(self) -> None:
        self._pool.close()


def _refused(
    detail: str, messages: list[Message] | None = None, seconds: float = 0.0, kind: InfraKind = "protocol"
) -> SourceResult:
    return SourceResult("error", list(messages or []), seconds=seconds, error=InfraError(kind, detail))


# -- the native REPL ----------------------------------------------------------------------


def find_repl(project: Path | None) -> Path | None:
    """The `repl` binary: $LEANGYM_REPL, else the one `lake build repl` put in the Lake project."""
    configured = os.environ.get("LEANGYM_REPL")
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_file() else None
    if project is None:
        return None
    candidates = [project / ".lake" / "build" / "bin" / "repl"]  # the project is the REPL itself
    packages = project / ".lake" / "packages"
    if packages.is_dir():  # the REPL as a dependency (lakefile: `name = "REPL"`)
        candidates += [p / ".lake" / "build" / "bin" / "repl" for p in sorted(packages.iterdir())]
    return next((c for c in candidates if c.is_file()), None)


@dataclass(frozen=True)
class Limits:
    """How the processes of a `ReplRuntime` run: the keywords of `session_runtime`, `NativeRuntime`
    and `native_repl_runtime` (see `pool.py` for what each does)."""

    workers: int | None = None  # processes; default: what the machine's memory and cores allow
    timeout: float = 60.0  # seconds per source
    startup_timeout: float = 600.0  # seconds to elaborate a header (`import Mathlib`: several)
    memory_mb: float | None = 8192  # a process is killed past this, mid-request
    recycle_mb: float | None = None  # ... and restarted past this, between requests (default `memory_mb`)
    max_requests: int = 1000  # ... or after this many requests
    retries: int = 1  # a source a process died on is tried again in a fresh one
    spares: bool | None = None  # keep the next process of each worker starting (None: the runtime's default)
    machine_slots: bool = True  # hold a machine-wide Lean slot per running source


class Importer(Protocol):
    """What a launcher knows of the modules its Lean can load."""

    def can_import(self, module: str) -> bool: ...

    def import_hint(self, module: str) -> str: ...


def repl_runtime(
    command: ReplCommand, importer: Importer, limits: Limits, *, size_mb: float | None = None, **runtime: Any
) -> ReplRuntime:
    """A `ReplRuntime` over a new pool of `command`'s processes: the one builder of the embedded
    sessions, the native sessions and the native REPL. `size_mb`: what one process may grow
    to, for the default number of workers (default `limits.memory_mb`); `runtime`: the keywords
    of `ReplRuntime` (`name`, `version`, ...)."""
    pooled = asdict(limits)  # the pool's keywords, less the runtime's own
    pooled["spares"] = bool(pooled["spares"])
    workers, timeout = pooled.pop("workers"), pooled.pop("timeout")
    pool = ReplPool(command, workers=workers or default_workers(size_mb or limits.memory_mb), **pooled)
    return ReplRuntime(
        pool,
        timeout=timeout,
        importable=importer.can_import,
        import_hint=importer.import_hint,
        **runtime,
    )


def native_repl_runtime(
    project: Path | None = None,
    *,
    launcher: NativeLauncher | None = None,
    preload_header: str | None = None,
    **limits: Any,
) -> ReplRuntime:
    """A `ReplRuntime` over the native REPL of a Lake project (the bundled one, or $LEANGYM_LAKE_PROJECT;
    or `launcher`'s, found already): the proof states of tactic mode (`NativeRuntime.proof_state_tactics`).
    Its Lean cannot export what a source declared, so a verifier on it alone falls back to the native
    audit (`rewards/audit.py`). `limits`: the fields of `Limits`.
    """
    from leangym.lean_project import native

    checked = Limits(**limits)  # a mistyped keyword fails before the search for Lean
    launcher = launcher or native.find_native(project)
    return repl_runtime(
        launcher.repl_command(),
        launcher,
        checked,
        name="native",
        version=f"{launcher.version} (REPL)",
        preload_header=preload_header,
        keeps_proof_states=True,
    )
