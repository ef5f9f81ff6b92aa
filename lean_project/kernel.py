"""Trusted verdicts: the kernel re-checks what an untrusted Lean run declared.

A Lean process that elaborates submitted text runs that text's code (tactic configurations
are evaluated while Lean elaborates), so nothing it says can decide a verdict. It is asked
for two things only: feedback (Lean's messages) and, with `"export": true`, the declarations
the command added, as data (`Session.lean`, "Export"). A second process that is never sent
submitted text, the *judge*, then

1. elaborates the trusted reference: the problem's header and statement, proof `sorry`,
   inside `namespace LGRef` (`reference_source`), once per problem and process;
2. adds the exported declarations with the kernel on top of it (`{"replay": ...}`), the
   target theorem with the *reference's* type, after checking that the exported type is
   definitionally equal to it; a declaration the reference already holds keeps the
   trusted one; axioms, inductive types and compiler evaluation (`Lean.reduceBool`) are
   refused;
3. answers the axioms the target depends on.

This module holds the data types of that exchange (`KernelCheck`, `Reference`, `KernelVerdict`,
`Judged`), the judge's process (`Judge`, shared per toolchain), the thread that feeds it while
a batch is checked (`JudgeLine`), and the one piece done in Python: putting the exported
constants in dependency order (`dependency_order`).
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from leangym.lean_project.pool import ReplCommand, ReplPool, ReplWorker
from leangym.lean_project.repl import ReplFailure, ReplRefusal
from leangym.lean_project.source import split_header
from leangym.lean_project.types import InfraError, RuntimeHealth, SourceResult

REFERENCE_NAMESPACE = "LGRef"
# Axioms a proof may never rest on unless the policy names them. (On the embedded Lean every file is
# a `module`, whose imports hide library proofs: the judge lists library theorems among a proof's
# "axioms" there, so a verdict looks for these names rather than for anything outside a short list.)
UNSOUND_AXIOMS = ("sorryAx", "Lean.ofReduceBool", "Lean.ofReduceNat", "Lean.trustCompiler")


@dataclass(frozen=True)
class KernelCheck:
    """One trusted check: the exported declarations of a run, against a trusted reference."""

    reference: str  # trusted Lean source: header, then the statement with `sorry` in `namespace LGRef`
    target: tuple[str, ...]  # the theorem's name, as components
    constants: Mapping[str, Any]  # the untrusted run's export (data: never trusted, only replayed)
    native: bool = False  # may the proof use the compiler's evaluation (`Lean.reduceBool`)?


@dataclass(frozen=True)
class Reference:
    """What the judge checks a source's proof against: the trusted reference (`reference_source`),
    the theorem's name as components, and whether the compiler's evaluation may be trusted."""

    source: str
    target: tuple[str, ...]
    native: bool = False

    @classmethod
    def of(cls, header: str, statement: str, name: str, native: bool = False) -> Reference:
        """The reference for the theorem `name` that `statement` declares after the trusted `header`."""
        return cls(reference_source(header, statement), name_parts(name), native)

    def check(self, constants: Mapping[str, Any]) -> KernelCheck:
        """The judge's question about a run that exported `constants`."""
        return KernelCheck(self.source, self.target, constants, self.native)


@dataclass(frozen=True)
class KernelVerdict:
    """The judge's answer: `ok` (with the target's axioms), `rejected` (with why), or `error` (no answer)."""

    status: Literal["ok", "rejected", "error"]
    axioms: tuple[str, ...] = ()
    reason: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Judged:
    """A source's untrusted result and the judge's answer on the proof it exported.

    `kernel` is None when the proof did not go to the judge (Lean did not accept it, it exported
    nothing, or it has no reference) or the judge gave no answer."""

    result: SourceResult
    kernel: KernelVerdict | None


class JudgeLine:
    """The judge's side of a batch: a thread that sends what has come in to `kernel_check` in one
    call, then again, until the batch's check is over (`LeanRuntime.check_judged`).

    An answer is kept with the very result it was asked about (`answer`): a runtime that reported
    one result for a source and returned another gets no answer for it."""

    def __init__(self, kernel_check: Callable[[list[KernelCheck]], list[KernelVerdict]]):
        self._answers: dict[int, tuple[SourceResult, KernelVerdict]] = {}
        self._kernel_check = kernel_check
        self._queue: queue.SimpleQueue[tuple[int, SourceResult, KernelCheck] | None] = queue.SimpleQueue()
        self._failure: BaseException | None = None
        self._cancelled = False  # the check failed or was interrupted: what is still queued is dropped
        self._thread = threading.Thread(target=self._drain, name="leangym-judge-line", daemon=True)

    def put(self, index: int, result: SourceResult, check: KernelCheck) -> None:
        """Ask the judge `check` about source `index`, whose result is `result`."""
        self._queue.put((index, result, check))

    def answer(self, index: int, result: SourceResult) -> KernelVerdict | None:
        """The judge's answer on `result` (None: it was not asked about this very result, or did not answer)."""
        judged = self._answers.get(index)
        return judged[1] if judged is not None and judged[0] is result else None

    def _drain(self) -> None:
        done = False
        while not done:
            waiting = [self._queue.get()]
            while not self._queue.empty():
                waiting.append(self._queue.get())
            done = None in waiting
            items = [w for w in waiting if w is not None]
            if items and self._failure is None and not self._cancelled:
                try:
                    answers = self._kernel_check([c for _, _, c in items])
                    if len(answers) != len(items):
                        raise RuntimeError(f"the judge answered {len(answers)} of {len(items)} checks")
                    for (i, result, _), answer in zip(items, answers, strict=True):
                        self._answers[i] = (result, answer)
                except BaseException as e:  # raised in the caller's thread (`__exit__`)
                    self._failure = e

    def __enter__(self) -> JudgeLine:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self._cancelled = kind is not None
        try:
            if kind is None:  # else (Ctrl-C, a failed check) the thread sends nothing more and ends
                self._queue.put(None)
                self._thread.join()
        except BaseException:  # Ctrl-C while waiting for the judge: what is still queued is dropped
            self._cancelled = True
            raise
        finally:
            self._queue.put(None)  # (a second end mark is harmless: the thread has stopped reading)
        if kind is None and self._failure is not None:
            raise self._failure


def reference_source(header: str, statement: str, namespace: str = REFERENCE_NAMESPACE) -> str:
    """The trusted reference: the header, then the statement (proof `sorry`) inside `namespace`
    (the judge's; the native audit names its own module's)."""
    body = [f"namespace {namespace}", statement.rstrip(), "  sorry", f"end {namespace}", ""]
    return "\n".join([*header.splitlines(), *body])


def name_parts(name: str) -> tuple[str, ...]:
    """`Foo.«bar baz»` as ("Foo", "bar baz"): the components the judge rebuilds the name from."""
    parts, current, quoted = [], "", False
    for ch in name:
        if ch == "«" and not quoted:
            quoted = True
        elif ch == "»" and quoted:
            quoted = False
        elif ch == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return tuple(parts)


def dependency_order(export: Mapping[str, Any]) -> dict[str, Any]:
    """The export with its constants sorted so that each comes after the constants it uses.

    The export is untrusted data: a malformed one raises `ValueError` (the judge would refuse
    it too). A cycle is left as it is (the kernel refuses it).
    """
    try:
        return _dependency_order(export)
    except (KeyError, TypeError, AttributeError, IndexError) as e:  # shapes no session program writes
        raise ValueError(f"malformed export: {type(e).__name__}: {e}") from e


def _dependency_order(export: Mapping[str, Any]) -> dict[str, Any]:
    exprs = list(export["exprs"])
    constants = list(export["constants"])
    by_name = {c["name"]: i for i, c in enumerate(constants)}

    def uses(constant: Mapping[str, Any]) -> set[int]:
        found: set[int] = set()
        seen: set[int] = set()
        stack = [constant.get("type"), constant.get("value")]
        while stack:
            node = stack.pop()
            if not isinstance(node, int) or node in seen or not 0 <= node < len(exprs):
                continue
            seen.add(node)
            entry = exprs[node]
            if not isinstance(entry, list) or not entry:
                raise ValueError(f"malformed expression {node}")
            tag = entry[0]
            if tag == "c":
                if entry[1] in by_name:
                    found.add(by_name[entry[1]])
            elif tag in ("a", "l", "f", "t"):
                stack.extend(entry[2:5] if tag != "a" else entry[1:3])
            elif tag == "p":
                stack.append(entry[3])
        return found

    order: list[int] = []
    state = [0] * len(constants)  # 0 new, 1 on the path, 2 placed
    for root in range(len(constants)):
        path = [(root, iter(sorted(uses(constants[root]))))] if state[root] == 0 else []
        if path:
            state[root] = 1
        while path:
            node, deps = path[-1]
            nxt = next((d for d in deps if state[d] == 0), None)
            if nxt is None:
                path.pop()
                state[node] = 2
                order.append(node)
            else:
                state[nxt] = 1
                path.append((nxt, iter(sorted(uses(constants[nxt])))))
    return {**export, "constants": [constants[i] for i in order]}


def parse_verdict(raw: Mapping[str, Any]) -> KernelVerdict:
    """The judge's answer to a `replay` request; raises ValueError on one that is not."""
    status = raw.get("replay")
    if status == "ok":
        axioms = raw.get("axioms")
        if not isinstance(axioms, list) or not all(isinstance(a, str) for a in axioms):
            raise ValueError(f"axioms must be a list of names: {axioms!r}")
        return KernelVerdict("ok", tuple(axioms))
    if status == "rejected":
        return KernelVerdict(
            "rejected", reason=str(raw.get("reason", "kernel_rejected")), detail=str(raw.get("why", ""))
        )
    raise ValueError(f"not a replay answer: {str(raw)[:200]}")


class Judge:
    """The trusted process: leangym's session program, sent only trusted text and `replay` requests.

    Runtimes share one judge per toolchain (`hold_judge`): it holds no state of theirs.

    One worker (restarted after a crash, a timeout or `max_requests`): each reference is
    elaborated once per process (its imports once per header), and a check is then a kernel
    replay of milliseconds. A candidate whose declarations crash the judge twice, or keep its
    replay past `timeout`, is rejected; a judge that cannot start or elaborate the trusted
    reference is an `error`, never a rejection.
    """

    def __init__(
        self,
        command: ReplCommand,
        *,
        timeout: float = 60.0,
        startup_timeout: float = 600.0,
        memory_mb: float = 6144,
        max_requests: int = 20_000,
        machine_slots: bool = True,
    ):
        self.timeout = timeout
        self.pool = ReplPool(
            command,
            workers=1,
            startup_timeout=startup_timeout,
            memory_mb=memory_mb,
            max_requests=max_requests,
            machine_slots=machine_slots,
        )
        self._warming: threading.Thread | None = None

    def check(self, items: Sequence[KernelCheck], *, timeout: float | None = None) -> list[KernelVerdict]:
        """One verdict per item, in order."""
        limit = self.timeout if timeout is None else timeout
        return self.pool.map(list(items), lambda worker, item: self._run(worker, item, limit), _failed)

    def _run(self, worker: ReplWorker, item: KernelCheck, limit: float) -> KernelVerdict:
        # The reference's imports (and leading `open`, `set_option`, `universe`) under the start-up's limit, as the
        # untrusted check elaborates a header (`import Mathlib` takes seconds in a fresh process); the
        # rest under the proof's own limit: a header command that keeps Lean busy holds the judge, which
        # every caller shares, no longer than it could hold the untrusted check.
        split = _split_reference(item.reference)
        try:
            worker.header("")  # the judge's own start-up, once per process
            base = worker.header(split.header) if split.header else None
            if isinstance(base, ReplRefusal):
                return KernelVerdict("error", reason="bad_reference", detail=base.message)
            generation = worker.generation
            head = worker.header(split.body, env=base.env if base is not None else None, timeout=limit)
            if worker.generation != generation:  # restarted in between: `base.env` was the old process's
                raise ReplFailure(InfraError("crash", "the judge restarted while it elaborated the reference"))
        except ReplFailure as failure:  # trusted text the proof never touches: the judge failed, not the proof
            detail = f"the judge could not elaborate the trusted reference: {failure.error}"
            raise ReplFailure(InfraError("startup", detail)) from failure
        if isinstance(head, ReplRefusal):
            return KernelVerdict("error", reason="bad_reference", detail=head.message)
        errors = [m.text for m in (base.messages if base is not None else []) + head.messages if m.is_error]
        if errors:  # the trusted statement itself does not elaborate: the problem is broken
            return KernelVerdict("error", reason="bad_reference", detail=errors[0])
        try:
            constants = dependency_order(item.constants)
        except ValueError as e:
            return KernelVerdict("rejected", reason="malformed_export", detail=str(e))
        request = {
            "replay": constants,
            "env": head.env,
            "target": list(item.target),
            "reference": [REFERENCE_NAMESPACE, *item.target],
            "native": item.native,
        }
        raw = worker.request(request, limit)
        try:
            return parse_verdict(raw)
        except ValueError as e:
            raise ReplFailure(InfraError("protocol", f"the judge's answer is unreadable: {e}")) from e

    def start_soon(self) -> None:
        """Start the judge's process in the background (once), so its start-up overlaps other work."""
        if self._warming is None:
            self._warming = threading.Thread(target=self.prewarm, name="leangym-judge-start", daemon=True)
            self._warming.start()

    def prewarm(self) -> None:
        self.pool.on_every_worker(lambda worker: worker.header(""))

    def health(self) -> RuntimeHealth:
        """Its process (when it is up), its memory and its restarts."""
        return self.pool.health("judge")

    def close(self) -> None:
        self.pool.close()


# A problem's reference comes back with every proof of it: lexed once, not once per replay.
_split_reference = functools.lru_cache(maxsize=1024)(split_header)


def _failed(item: KernelCheck, error: InfraError) -> KernelVerdict:
    """What a failure of the judge's replay says: the proof's doing for a timeout (the replay's own
    limit) or a crash or memory cap (twice, the second time in a fresh judge), else the judge's."""
    if error.kind in ("timeout", "crash", "out_of_memory"):
        reason = {"timeout": "kernel_timeout", "crash": "lean_crash", "out_of_memory": "out_of_memory"}[error.kind]
        return KernelVerdict("rejected", reason=reason, detail=f"the judge failed on this proof: {error.detail}")
    return KernelVerdict("error", reason=f"judge_{error.kind}", detail=error.detail)


_JUDGES_LOCK = threading.Lock()
_JUDGES: dict[tuple[str, ...], tuple[Judge, int]] = {}  # command line -> (judge, holders)


def hold_judge(command: ReplCommand) -> Judge:
    """The process's judge started by `command`, made on first use; give the hold back with `release_judge`."""
    with _JUDGES_LOCK:
        judge, holders = _JUDGES.get(command.argv) or (Judge(command), 0)
        _JUDGES[command.argv] = (judge, holders + 1)
        return judge


def release_judge(judge: Judge) -> None:
    """Give back a hold; the last one closes the judge's process."""
    with _JUDGES_LOCK:
        key = judge.pool.command.argv
        _, holders = _JUDGES.get(key, (None, 0))
        if holders > 1:
            _JUDGES[key] = (judge, holders - 1)
            return
        _JUDGES.pop(key, None)
    judge.close()


class JudgeHold:
    """A runtime's hold on its toolchain's judge: taken on first use, given back by `release`."""

    def __init__(self, command: ReplCommand):
        self.command = command
        self._judge: Judge | None = None
        self._lock = threading.Lock()

    def get(self) -> Judge:
        with self._lock:
            self._judge = self._judge or hold_judge(self.command)
            return self._judge

    def health(self) -> RuntimeHealth:
        """The judge's, while it is held (none is started for this)."""
        judge = self._judge
        return judge.health() if judge is not None else RuntimeHealth("judge", 0, 0)

    def release(self) -> None:
        with self._lock:
            judge, self._judge = self._judge, None
        if judge is not None:
            release_judge(judge)
