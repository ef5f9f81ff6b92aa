"""Typed results of a Lean run, shared by every runtime (embedded, native, REPL).

A run has two kinds of outcome that must never be confused:

* Lean finished the source: `SourceResult.status == "ok"`; its `messages` say whether the
  proof is good (an `error` message means Lean rejected it).
* Lean could not give a verdict: `status == "timeout"` (the source ran past its limit) or
  `status == "error"` with an `InfraError` saying why (crash, out of memory, start-up
  failure, missing runtime, an import this runtime cannot load). Callers retry or report
  these; they are not rejections.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "information"]
Status = Literal["ok", "timeout", "error"]
InfraKind = Literal[
    "timeout",  # the source ran past its wall-clock limit (status "timeout")
    "crash",  # Lean exited abnormally (signal, wasm trap, non-zero status without an error message)
    "out_of_memory",  # the process passed the runtime's memory cap and was killed
    "startup",  # Lean did not come up (or never reached the source) in time
    "missing_runtime",  # the runtime is not installed; the detail names the install command
    "unsupported_import",  # the source imports a module this runtime cannot load (e.g. Mathlib)
    "protocol",  # a REPL answered something the client cannot read
    "lost",  # the worker running Lean was lost (a Ray actor or its machine), after retries
]


@dataclass(frozen=True)
class Position:
    """A place in a source: 1-based line, 0-based column counted in Unicode code points."""

    line: int
    column: int


SORRY_WARNINGS = ("declaration uses `sorry`", "declaration uses 'sorry'")  # Lean's wording, now and before


@dataclass(frozen=True)
class Message:
    """One message Lean reported, with positions relative to the source it belongs to."""

    severity: Severity
    text: str
    pos: Position
    end_pos: Position | None = None
    kind: str = ""  # Lean's message kind, e.g. "hasSorry"; "" for anonymous messages

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    @property
    def uses_sorry(self) -> bool:
        """Lean's warning that a declaration rests on `sorry`: its kind, or its wording where none came."""
        return self.kind == "hasSorry" or any(wording in self.text for wording in SORRY_WARNINGS)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Message:
        """The message `to_json` wrote (what a leangym server sends)."""
        end = d.get("end_pos")
        return cls(d["severity"], d["text"], Position(**d["pos"]), Position(**end) if end else None, d.get("kind", ""))


@dataclass(frozen=True)
class InfraError:
    """Why Lean itself failed: never a statement about the proof."""

    kind: InfraKind
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass
class SourceResult:
    """What Lean said about one source of a batch."""

    status: Status
    messages: list[Message] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the Lean run(s) that produced this result
    error: InfraError | None = None  # set when status != "ok"
    # With `check(..., export=True)`: the declarations the source added, as the session program
    # exports them (`kernel.py`). Untrusted data: only the kernel replay of a judge may use it.
    constants: dict[str, Any] | None = None

    @property
    def has_errors(self) -> bool:
        return any(m.is_error for m in self.messages)

    @property
    def error_free(self) -> bool:
        """Lean finished the source and reported no error (`status == "ok"` says only that it finished)."""
        return self.status == "ok" and not self.has_errors

    @property
    def accepted(self) -> bool:
        """Lean finished the source with no error and no `sorry`: all an untrusted run can say for a proof
        (only a judge's replay makes it proved: `kernel.py`)."""
        return self.status == "ok" and not any(m.is_error or m.uses_sorry for m in self.messages)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "messages": [m.to_json() for m in self.messages],
            "seconds": round(self.seconds, 3),
            "error": asdict(self.error) if self.error else None,
            **({"constants": self.constants} if self.constants is not None else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SourceResult:
        """The result `to_json` wrote (what a leangym server sends)."""
        error = d.get("error")
        return cls(
            d["status"],
            [Message.from_json(m) for m in d.get("messages", [])],
            float(d.get("seconds", 0.0)),
            InfraError(**error) if error else None,
            d.get("constants"),
        )


@dataclass(frozen=True)
class RuntimeHealth:
    """How a runtime's Lean processes fare (a server's `/health` and `/metrics` report it)."""

    mode: str  # e.g. "session", "oneshot", "repl"
    processes: int  # Lean processes running now
    restarts: int  # processes restarted after a failure since the runtime was made
    pids: tuple[int, ...] = ()  # the running ones (where they run on this machine)
    memory_mb: float = 0.0  # their private resident memory, all together (`process.tree_rss_mb`)

    def including(self, *others: RuntimeHealth) -> RuntimeHealth:
        """This health with other processes of the runtime counted in (its judge's, its REPL's); the mode stays."""
        parts = (self, *others)
        return RuntimeHealth(
            self.mode,
            sum(h.processes for h in parts),
            sum(h.restarts for h in parts),
            tuple(pid for h in parts for pid in h.pids),
            sum(h.memory_mb for h in parts),
        )


class LeanRuntimeError(RuntimeError):
    """Raised when a runtime cannot be used at all (not installed, broken install)."""
