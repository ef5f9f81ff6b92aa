"""A client for the Lean REPL (leanprover-community/repl): typed requests and answers, one process.

The REPL reads JSON requests on stdin and answers each on stdout:

* a request is one JSON object followed by a blank line (the REPL reads lines up to a blank
  one and joins them, dropping raw line breaks, so a request is sent as a single line);
* an answer is one JSON object, pretty-printed over several lines, followed by a blank line;
* `{"cmd": text}` elaborates `text` in a fresh environment (the only place `import` may
  appear) and answers with a new environment id; `{"cmd": text, "env": n}` elaborates it on
  top of environment `n`, which is left unchanged, so one `import Mathlib` serves any number
  of later commands (`env` reuse);
* every `sorry` of a command gets a proof state id; `{"tactic": t, "proofState": n}` runs a
  tactic there and answers with a new proof state, its goals and a `proofStatus`;
* `{"message": …}` is the REPL refusing a request (an unknown id, a tactic Lean could not
  run): an answer about the request, not a failure of the process.

`ReplProcess` runs one REPL. Its calls return an answer dataclass or `ReplRefusal`, and raise
`ReplFailure` (holding an `InfraError`) when the process itself failed: it died, stopped
answering within the time limit, outgrew its memory cap, or printed something that is not a
REPL answer. After a `ReplFailure` the process is dead; start a new one (`pool.ReplPool`
does, and retries).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import select
import shutil
import subprocess
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from leangym.lean_project.process import MEMORY_POLL_S, OwnedProcess, private_dir
from leangym.lean_project.types import InfraError, Message, Position

SCRATCH = "{scratch}"  # in a command line: the process's scratch folder (see `ReplProcess`)
_SEVERITY = {"info": "information", "information": "information", "trace": "information", "warning": "warning"}


class ReplFailure(Exception):
    """The REPL process failed (crash, timeout, memory, unreadable answer): no answer exists."""

    def __init__(self, error: InfraError):
        super().__init__(str(error))
        self.error = error


# -- answers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplRefusal:
    """The REPL refused a request: `Unknown environment.`, or `Lean error: …` for a tactic that did not run."""

    message: str


@dataclass(frozen=True)
class Sorry:
    """A `sorry` Lean met, with the proof state that starts there (None for a term without one)."""

    goal: str
    proof_state: int | None
    pos: Position | None = None
    end_pos: Position | None = None


@dataclass(frozen=True)
class CommandResponse:
    """The answer to a command: the new environment and what Lean said."""

    env: int
    messages: list[Message] = field(default_factory=list)
    sorries: list[Sorry] = field(default_factory=list)
    constants: dict[str, Any] | None = None  # what the command declared, when asked to export (untrusted)


@dataclass(frozen=True)
class ProofStepResponse:
    """The answer to a tactic: the new proof state, its goals, and the REPL's `proofStatus`."""

    proof_state: int
    goals: list[str]
    proof_status: str = ""  # "Completed", "Incomplete: open goals remain", "Error: …"; "" if not reported
    messages: list[Message] = field(default_factory=list)  # tactic-mode positions are 0:0
    sorries: list[Sorry] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        """The REPL re-checked the whole proof term with the kernel: no goals, no sorry, no metavariable."""
        return self.proof_status == "Completed"


def message_from_repl(raw: Mapping[str, Any], line_offset: int = 0) -> Message:
    """A REPL message as a `Message`, its lines moved down by `line_offset` (0 keeps tactic-mode 0:0)."""

    def pos(p: Mapping[str, Any] | None) -> Position | None:
        if p is None:
            return None
        line = int(p["line"])
        return Position(line + line_offset if line else 0, int(p["column"]))

    severity = _SEVERITY.get(raw["severity"], "error")
    text = str(raw.get("data", ""))
    # The Lean REPL's messages carry no kind (the session program's do): name the one the
    # verifiers rely on, as `lean --json` does.
    kind = str(raw.get("kind") or "").replace("[anonymous]", "")
    message = Message(severity, text, pos(raw["pos"]), pos(raw.get("endPos")), kind)  # type: ignore[arg-type]
    return replace(message, kind="hasSorry") if not kind and severity == "warning" and message.uses_sorry else message


def _sorry(raw: Mapping[str, Any], line_offset: int = 0) -> Sorry:
    msg = message_from_repl({"severity": "info", "pos": raw.get("pos") or {"line": 0, "column": 0}}, line_offset)
    end = message_from_repl({"severity": "info", "pos": raw.get("endPos") or {"line": 0, "column": 0}}, line_offset)
    return Sorry(
        goal=str(raw.get("goal", "")),
        proof_state=raw.get("proofState"),
        pos=msg.pos if msg.pos.line else None,
        end_pos=end.pos if end.pos.line else None,
    )


def parse_command_response(raw: Mapping[str, Any], line_offset: int = 0) -> CommandResponse | ReplRefusal:
    """Read a command's answer; raises KeyError/TypeError/ValueError on a malformed one."""
    if "message" in raw and "env" not in raw:
        return ReplRefusal(str(raw["message"]))
    env = raw["env"]
    if not isinstance(env, int):
        raise TypeError(f"env is not a number: {env!r}")
    constants = raw.get("constants")
    if constants is not None and not isinstance(constants, dict):
        raise TypeError("constants is not an object")
    return CommandResponse(
        env=env,
        messages=[message_from_repl(m, line_offset) for m in raw.get("messages", [])],
        sorries=[_sorry(s, line_offset) for s in raw.get("sorries", [])],
        constants=constants,
    )


def parse_proof_step_response(raw: Mapping[str, Any]) -> ProofStepResponse | ReplRefusal:
    """Read a tactic's answer; raises KeyError/TypeError/ValueError on a malformed one."""
    if "message" in raw and "proofState" not in raw:
        return ReplRefusal(str(raw["message"]))
    state = raw["proofState"]
    if not isinstance(state, int) or not isinstance(raw["goals"], list):
        raise TypeError("proofState must be a number and goals a list")
    return ProofStepResponse(
        proof_state=state,
        goals=[str(g) for g in raw["goals"]],
        proof_status=str(raw.get("proofStatus", "")),
        messages=[message_from_repl(m) for m in raw.get("messages", [])],
        sorries=[_sorry(s) for s in raw.get("sorries", [])],
        traces=[str(t) for t in raw.get("traces", [])],
    )


# -- one process --------------------------------------------------------------------------


class ReplProcess(OwnedProcess):
    """One REPL process: requests go in one at a time, each under a wall-clock limit.

    `argv`/`env`/`cwd` start it (the `repl` binary with a Lake project's `LEAN_PATH`, or the
    recorded-transcript double in tests). `memory_mb` caps its private resident memory
    (anonymous pages: the memory-mapped `.olean` files of Mathlib, shared between workers,
    do not count); past it the process is killed mid-request.

    With `tag_requests` (leangym's session program echoes a request's `"id"`), every request
    carries a fresh random id and an answer without it is a protocol failure: output that
    code inside an elaborated proof wrote could otherwise pass for the answer to this or a
    later request.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        memory_mb: float | None = None,
        tag_requests: bool = False,
    ):
        self.argv = list(argv)
        self.memory_mb = memory_mb
        self.tag_requests = tag_requests
        self.requests = 0  # answered requests (the pool recycles a worker after many)
        self.last_env = -1  # the newest environment id seen: a fresh one must be larger
        workdir = private_dir("leangym-repl-")
        self._owner = os.getpid()  # a forked child (an async vector env) must not end its parent's Lean
        self._buffer = b""
        self.scratch = workdir / "scratch"  # the process's own empty working folder (read-only to it)
        self.argv = [a.replace(SCRATCH, str(self.scratch)) for a in self.argv]
        if env is not None:
            env = {k: v.replace(SCRATCH, str(self.scratch)) for k, v in env.items()}
        if cwd is not None:
            cwd = str(cwd).replace(SCRATCH, str(self.scratch))
        try:
            self.scratch.mkdir(mode=0o500)
            super().__init__(self.argv, workdir, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError as e:
            shutil.rmtree(workdir, ignore_errors=True)
            raise ReplFailure(InfraError("startup", f"cannot start `{self.argv[0]}`: {e}")) from e
        _LIVE.add(self)
        os.set_blocking(self._proc.stdout.fileno(), False)  # type: ignore[union-attr]
        os.set_blocking(self._proc.stdin.fileno(), False)  # type: ignore[union-attr]

    # -- typed calls --------------------------------------------------------------------

    def command(
        self,
        cmd: str,
        *,
        env: int | None = None,
        timeout: float = 60.0,
        line_offset: int = 0,
        export: bool = False,
    ) -> CommandResponse | ReplRefusal:
        """Elaborate `cmd` (on environment `env`, or a fresh one that may `import`); with `export`,
        also answer the declarations it added (leangym's session program only)."""
        request: dict[str, Any] = {"cmd": cmd}
        if env is not None:
            request["env"] = env
        if export:
            request["export"] = True
        return self._command_answer(self.request(request, timeout), line_offset)

    def tactic(self, tactic: str, proof_state: int, *, timeout: float = 60.0) -> ProofStepResponse | ReplRefusal:
        """Run one tactic (or a tactic block) in `proof_state`."""
        return self._proof_answer(self.request({"tactic": tactic, "proofState": proof_state}, timeout))

    def _command_answer(self, raw: dict, line_offset: int = 0, fresh: bool = True) -> CommandResponse | ReplRefusal:
        try:
            answer = parse_command_response(raw, line_offset)
        except (KeyError, TypeError, ValueError) as e:
            raise self._protocol_failure(f"unreadable command answer ({e}): {_short(raw)}") from e
        if isinstance(answer, CommandResponse) and fresh:
            if answer.env <= self.last_env:  # ids only grow: an old one means answers are out of step
                raise self._protocol_failure(f"environment id {answer.env} is not new (last {self.last_env})")
            self.last_env = answer.env
        return answer

    def _proof_answer(self, raw: dict) -> ProofStepResponse | ReplRefusal:
        try:
            return parse_proof_step_response(raw)
        except (KeyError, TypeError, ValueError) as e:
            raise self._protocol_failure(f"unreadable tactic answer ({e}): {_short(raw)}") from e

    # -- the wire -----------------------------------------------------------------------

    def request(self, payload: Mapping[str, Any], timeout: float) -> dict:
        """Send one request and wait up to `timeout` seconds for its answer (a JSON object)."""
        tag = secrets.token_hex(12) if self.tag_requests else None
        if tag is not None:
            payload = {**payload, "id": tag}
        try:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n\n"
        except UnicodeEncodeError as e:  # a lone surrogate: no UTF-8 text can carry it
            raise ReplFailure(InfraError("protocol", f"the request is not valid Unicode text: {e}")) from e
        deadline = time.monotonic() + timeout
        self._write(data, deadline)
        answer = self._read_answer(deadline)
        if tag is not None and answer.pop("id", None) != tag:
            raise self._protocol_failure(f"an answer that is not this request's: {_short(answer)}")
        self.requests += 1
        return answer

    def _write(self, data: bytes, deadline: float) -> None:
        fd = self._proc.stdin.fileno()  # type: ignore[union-attr]
        view = memoryview(data)
        while view:
            self._check_limits(deadline)
            _, writable, _ = select.select([], [fd], [], MEMORY_POLL_S)
            if not writable:
                continue
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                raise self._died() from None

    def _read_answer(self, deadline: float) -> dict:
        fd = self._proc.stdout.fileno()  # type: ignore[union-attr]
        while True:
            answer = self._take_answer()
            if answer is not None:
                return answer
            self._check_limits(deadline)
            readable, _, _ = select.select([fd], [], [], min(MEMORY_POLL_S, max(0.0, deadline - time.monotonic())))
            if not readable:
                continue
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                raise self._died()
            self._buffer += chunk

    def _take_answer(self) -> dict | None:
        """The complete answer in the buffer, if one has arrived.

        The REPL prints nothing but answers, so anything else — text that is not a JSON object,
        or more output after an answer — means the stream cannot be trusted: a protocol failure.
        """
        chunk, blank, rest = self._buffer.lstrip(b"\n").partition(b"\n\n")
        if not blank:
            return None
        text = chunk.decode("utf-8", "replace")
        try:
            answer = json.loads(text)
        except json.JSONDecodeError as e:
            raise self._protocol_failure(f"unreadable answer ({e.msg}): {text[:300]!r}") from e
        if not isinstance(answer, dict):
            raise self._protocol_failure(f"answer is not a JSON object: {text[:300]!r}")
        if rest.strip():
            raise self._protocol_failure(f"output after the answer: {rest[:300]!r}")
        self._buffer = b""
        return answer

    def _check_limits(self, deadline: float) -> None:
        if time.monotonic() > deadline:
            self.kill()
            raise ReplFailure(InfraError("timeout", "no answer within the time limit"))
        if (over := self.past_memory(self.memory_mb)) is not None:
            self.kill()
            raise ReplFailure(InfraError("out_of_memory", over))
        if not self.alive():
            raise self._died()

    def _died(self) -> ReplFailure:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=2)
        code = self._proc.returncode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        self.kill()
        return ReplFailure(InfraError("crash", f"the REPL stopped mid-request ({how})\n{self.stderr_tail()}".strip()))

    def _protocol_failure(self, detail: str) -> ReplFailure:
        self.kill()
        return ReplFailure(InfraError("protocol", detail))

    # -- lifetime -----------------------------------------------------------------------

    def close(self, grace: float = 2.0) -> None:
        """End the process: end of input first (the REPL exits on it), then SIGKILL after `grace` s."""
        if self._proc.poll() is None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()  # type: ignore[union-attr]
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=grace)
        self.kill()
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
        self._cleanup_files()

    def _cleanup_files(self) -> None:
        _LIVE.discard(self)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ReplProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LIVE: weakref.WeakSet[ReplProcess] = weakref.WeakSet()  # every process not yet closed


@atexit.register
def _close_all() -> None:
    """At interpreter exit, end the Lean processes of runtimes nobody closed, and remove their folders."""
    for process in list(_LIVE):
        if process._owner == os.getpid():
            process.close(grace=0)


def _short(raw: Any) -> str:
    return json.dumps(raw, ensure_ascii=False)[:300]
