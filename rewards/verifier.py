"""The verifier: submissions in, `Verdict`s out, many per Lean run.

    verifier = Verifier("embedded")                       # or get_verifier() for the shared one
    verdicts = verifier.verify_batch([(problem, proof), ...])
    rewards = [v.reward for v in verdicts]                # 1.0 iff proved

For each submission, in order (the first that applies decides):

1. the cache: the same (runtime, header, statement, submission, policy) is never checked twice;
2. reading it (`submission.py`): UTF-8, size, Markdown fence, body or whole file;
3. screening the body (`screen.py`): constructs a proof may not use;
4. the runtime must be able to load the header's imports (`import Mathlib` needs `native`);
5. Lean: every remaining submission goes into ONE runtime call (`runtime.check_judged`), assembled
   from the trusted header and statement around the body (`assembly.py`). That Lean run is
   *untrusted* (submitted text runs code while Lean elaborates it): its messages are the
   prover's feedback and can only reject (an error, a `sorry`); it also exports the
   declarations each source added. The runtime checks each source from the header's
   environment alone, and a source Lean died on once more in a fresh process;
6. the verdict `proved` comes only from a trusted check that runs no submitted text: the
   judge (`lean_project/kernel.py`, on both runtimes) replays the exported declarations
   through the kernel on top of the trusted header and statement, checks the theorem's type
   against the reference statement's, and lists its axioms (none of `UNSOUND_AXIOMS` unless
   the policy allows them); on a bare REPL pool, whose Lean cannot export, the audit (`audit.py`).
   The runtime hands each proof the untrusted run accepted to the judge as soon as it has
   answered for it, while Lean checks the rest of the batch; the verifier reads the judge's
   answer into the verdict (`_verdict`).

`error` verdicts (the runtime could not decide) are never cached: the caller retries them
(`verify_with_retries`).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Self

from leangym.lean_project import LeanRuntime, LeanRuntimeError
from leangym.lean_project.kernel import UNSOUND_AXIOMS, Judged, KernelVerdict, Reference
from leangym.lean_project.shared import RuntimeSlot, shared_runtime
from leangym.rewards.assembly import Assembled, assemble, judge
from leangym.rewards.policy import Policy
from leangym.rewards.problem import Problem
from leangym.rewards.screen import describe, reasons_of, screen
from leangym.rewards.submission import Rejection, decode, parse_statement, read_submission
from leangym.rewards.verdict import Verdict

if TYPE_CHECKING:
    from leangym.client import RemoteVerifier

DEFAULT_CACHE_SIZE = 65_536


@dataclass
class _Job:
    """A submission on its way to Lean."""

    index: int
    key: str
    problem: Problem
    assembled: Assembled
    name: str | None  # the theorem's name, from the trusted statement


class BaseVerifier(ABC):
    """What every verifier offers, wherever its Lean runs: this process (`Verifier`), a leangym
    server (`client.RemoteVerifier`) or Ray actors (`distributed.RayVerifier`). Environments,
    trainers and commands take any of them."""

    policy: Policy

    @property
    @abstractmethod
    def runtime(self) -> LeanRuntime:
        """The runtime that answers: its name, version and loadable imports."""

    @property
    def runtime_name(self) -> str:
        return self.runtime.name

    @abstractmethod
    def describe(self) -> str:
        """Which Lean answers, and where (printed by the commands that verify)."""

    @abstractmethod
    def verify_batch(self, pairs: Sequence[tuple[Problem, str | bytes]]) -> list[Verdict]:
        """One verdict per (problem, submission), in order."""

    def verify(self, problem: Problem, submission: str | bytes) -> Verdict:
        return self.verify_batch([(problem, submission)])[0]

    def prewarm(self) -> None:
        """Start Lean now, so that the first batch does not wait for its start-up."""
        self.runtime.prewarm()

    def release(self) -> None:  # noqa: B027 - only a shared verifier's holder has something to give back
        """Give back the hold on the runtime that `get_verifier(..., hold=True)` took."""

    def close(self) -> None:  # noqa: B027 - only a verifier that owns Lean processes ends them
        """End the Lean processes this verifier owns."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Verifier(BaseVerifier):
    """Kernel-checked, hack-resistant verification of proofs (see the module docstring).

    `runtime` is a runtime name (the verifier makes it on first use and owns it) or a
    `LeanRuntime` (the caller's: `close` leaves it running). Thread-safe.
    """

    def __init__(
        self,
        runtime: LeanRuntime | str = "embedded",
        policy: Policy | None = None,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ):
        self.policy = policy or Policy()
        if isinstance(runtime, str):
            self._slot = RuntimeSlot(runtime)
        else:
            self._slot = RuntimeSlot(runtime.name, runtime)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Verdict] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._auditor = None  # made on the first native audit

    @property
    def runtime(self) -> LeanRuntime:
        """The Lean runtime (made on first use; raises `LeanRuntimeError` if it is not installed)."""
        return self._slot.get()

    @property
    def runtime_name(self) -> str:
        return self._slot.name

    def describe(self) -> str:
        return f"Lean {self.runtime.version} ({self.runtime_name}) in this process"

    def verify_batch(self, pairs: Sequence[tuple[Problem, str | bytes]]) -> list[Verdict]:
        """One verdict per (problem, submission), in order; one Lean run for the lot where possible."""
        runtime_or_error: LeanRuntime | Verdict
        try:
            runtime_or_error = self.runtime
        except LeanRuntimeError as e:
            runtime_or_error = Verdict("error", ("runtime_error:missing_runtime",), detail=str(e))
        version = runtime_or_error.version if isinstance(runtime_or_error, LeanRuntime) else "unavailable"
        verdicts: list[Verdict | None] = [None] * len(pairs)
        jobs: dict[str, _Job] = {}
        repeats: list[tuple[int, str]] = []
        for i, (problem, submission) in enumerate(pairs):
            key = self._key(version, problem, submission)
            if key in jobs:
                repeats.append((i, key))
            elif (hit := self._cached(key)) is not None:
                verdicts[i] = hit
            else:
                prepared = self._prepare(problem, submission, runtime_or_error)
                if isinstance(prepared, Verdict):
                    verdicts[i] = self._remember(key, prepared)
                else:
                    jobs[key] = _Job(i, key, problem, prepared, parse_statement(problem.formal_statement).name)
        if jobs:
            assert isinstance(runtime_or_error, LeanRuntime)  # else `_prepare` decided every one
            for job, verdict in zip(jobs.values(), self._run(runtime_or_error, list(jobs.values())), strict=True):
                verdicts[job.index] = self._remember(job.key, verdict)
        for i, key in repeats:
            first = verdicts[jobs[key].index]
            assert first is not None
            verdicts[i] = replace(first, cached=True) if first.outcome != "error" else first
        return [v for v in verdicts if v is not None]

    def release(self) -> None:
        self._slot.release()

    def close(self) -> None:
        """End the Lean processes of the runtime now, if it is not a caller's (a later call makes new ones).

        On a shared verifier this ends them for every user of the runtime.
        """
        self._slot.close()

    # -- the steps --------------------------------------------------------------------

    def _prepare(
        self, problem: Problem, submission: str | bytes, runtime: LeanRuntime | Verdict
    ) -> Assembled | Verdict:
        """Steps 2-4: the assembled source, or the verdict that makes Lean unnecessary."""
        try:
            statement = parse_statement(problem.formal_statement)
        except ValueError as e:
            return Verdict("error", ("bad_problem",), detail=f"{problem.name}: {e}")
        text = decode(submission, self.policy)
        if isinstance(text, Rejection):
            return Verdict("rejected", text.reasons, detail=text.detail)
        sub = read_submission(problem, statement, text)
        if isinstance(sub, Rejection):
            return Verdict("rejected", sub.reasons, detail=sub.detail)
        if sub.form == "file" and not self.policy.allow_whole_file:
            return Verdict("rejected", ("whole_file",), detail="the policy takes proof bodies only, not a whole file")
        findings = screen(sub.body, self.policy, sub.tokens)
        if findings:
            return Verdict("rejected", reasons_of(findings), detail=describe(findings, sub.body))
        if not sub.code:
            return Verdict("rejected", ("empty_proof",), detail="the proof body is empty")
        if isinstance(runtime, Verdict):
            return runtime
        missing = [m for m in problem.imports if not runtime.can_import(m)]
        if missing:
            return _unsupported(runtime, missing[0])
        return assemble(problem, statement, sub, self.policy)

    def _run(self, runtime: LeanRuntime, jobs: list[_Job]) -> list[Verdict]:
        """Steps 5 and 6: one `check` call for every job, and the judge beside it (or the audit after it)."""
        started = time.monotonic()
        try:
            if runtime.has_judge():
                return self._judged(runtime, jobs)
            results = runtime.check([j.assembled.source for j in jobs], timeout=self.policy.timeout)
            verdicts = [judge(r, j.assembled) for r, j in zip(results, jobs, strict=True)]
            return self._audit(jobs, verdicts) if self.policy.audit else verdicts  # a bare REPL pool
        except (LeanRuntimeError, RuntimeError, OSError) as e:
            error = Verdict("error", (f"runtime_error:{type(e).__name__}",), detail=str(e))
            return [replace(error, seconds=time.monotonic() - started)] * len(jobs)

    def _judged(self, runtime: LeanRuntime, jobs: list[_Job]) -> list[Verdict]:
        """Steps 5 and 6 in one runtime call: the untrusted check of every job, and the judge's replay of
        each proof it accepted (`LeanRuntime.check_judged`). Only the judge's answer makes `proved`."""
        references = [self._reference(job) for job in jobs]
        judged = runtime.check_judged([j.assembled.source for j in jobs], references, timeout=self.policy.timeout)
        return [self._verdict(job, j) for job, j in zip(jobs, judged, strict=True)]

    def _reference(self, job: _Job) -> Reference | None:
        """What the judge checks the job's proof against (None for an `example`: it names no theorem)."""
        if job.name is None:
            return None
        return Reference.of(job.problem.header, job.problem.formal_statement, job.name, self.policy.allow_native_decide)

    def _verdict(self, job: _Job, judged: Judged) -> Verdict:
        """The verdict: the untrusted run's rejection, or the judge's answer on what it accepted."""
        untrusted = judge(judged.result, job.assembled)
        if not untrusted.proved:
            return untrusted
        if judged.result.constants is None:  # the session program always exports: an answer without one is forged
            detail = "the Lean run that elaborated this proof answered without its declarations"
            return Verdict("rejected", ("no_export",), detail=detail)
        if job.name is None:
            return Verdict("error", ("bad_problem",), detail="an `example` names no theorem the judge can check")
        if judged.kernel is None:
            return Verdict("error", ("judge_error:no_answer",), detail="the judge gave no answer for this proof")
        return replace(self._decide(judged.kernel), messages=untrusted.messages, seconds=untrusted.seconds)

    def _decide(self, answer: KernelVerdict) -> Verdict:
        """The verdict the judge's answer supports."""
        if answer.status == "error":
            return Verdict("error", (f"judge_error:{answer.reason}",), detail=answer.detail)
        if answer.status == "rejected":
            return Verdict("rejected", (answer.reason,), detail=answer.detail)
        unsound = [a for a in answer.axioms if a in UNSOUND_AXIOMS and a not in self.policy.allowed_axioms]
        if unsound:
            reasons = ("nonstandard_axiom", "sorry") if "sorryAx" in unsound else ("nonstandard_axiom",)
            return Verdict("rejected", reasons, detail=f"the proof depends on {', '.join(unsound)}")
        return Verdict("proved", ())

    def _audit(self, jobs: list[_Job], verdicts: list[Verdict]) -> list[Verdict]:
        """Step 6: the native kernel-side audit of every proof Lean accepted (`audit.py`)."""
        from leangym.rewards.audit import NativeAudit

        proved = [i for i, v in enumerate(verdicts) if v.proved]
        if not proved:
            return verdicts
        try:
            if self._auditor is None:
                self._auditor = NativeAudit.find(self.policy)
            audited = self._auditor.audit([(jobs[i].problem, jobs[i].assembled.source) for i in proved])
        except (LeanRuntimeError, OSError) as e:
            audited = [Verdict("error", ("audit_failed",), detail=str(e))] * len(proved)
        out = list(verdicts)
        for i, verdict in zip(proved, audited, strict=True):
            if verdict is not None:
                out[i] = replace(verdict, messages=out[i].messages, seconds=out[i].seconds)
        return out

    # -- the cache --------------------------------------------------------------------

    def _key(self, version: str, problem: Problem, submission: str | bytes) -> str:
        body = submission.hex() if isinstance(submission, bytes) else submission
        fields = [self.runtime_name, version, problem.header, problem.formal_statement, body, self.policy.key()]
        return hashlib.sha256(json.dumps(fields).encode("utf-8", "surrogatepass")).hexdigest()

    def _cached(self, key: str) -> Verdict | None:
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return replace(hit, cached=True)
        return None

    def _remember(self, key: str, verdict: Verdict) -> Verdict:
        if verdict.outcome != "error" and self.cache_size > 0:
            with self._cache_lock:
                self._cache[key] = verdict
                self._cache.move_to_end(key)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return verdict


def verify_with_retries(verifier: BaseVerifier, pairs: Sequence[tuple[Problem, str]], retries: int) -> list[Verdict]:
    """`verify_batch`, then its `error` verdicts again, up to `retries` more rounds (a `RayVerifier` works too).

    An error is not a judgement of the proof (Lean crashed, a machine was lost), so it is
    asked again; a header whose imports the runtime cannot load stays so, and is not.
    """
    verdicts = verifier.verify_batch(pairs)
    for _ in range(retries):
        again = [i for i, v in enumerate(verdicts) if v.outcome == "error" and "unsupported_import" not in v.reasons]
        if not again:
            break
        for i, v in zip(again, verifier.verify_batch([pairs[i] for i in again]), strict=True):
            verdicts[i] = v
    return verdicts


def _unsupported(runtime: LeanRuntime, module: str) -> Verdict:
    """The header needs a module this runtime cannot load: its hint says which runtime can."""
    reasons = ("unsupported_import", "needs_runtime:native") if runtime.name == "embedded" else ("unsupported_import",)
    return Verdict("error", reasons, detail=runtime.import_hint(module))


# -- process-wide shared verifiers (their runtimes: `lean_project/shared.py`) ----------------

_SHARED_LOCK = threading.Lock()
_VERIFIERS: dict[tuple[str, Policy], Verifier] = {}
_REMOTE: dict[tuple[str, Policy], RemoteVerifier] = {}


def get_verifier(
    runtime: LeanRuntime | str = "embedded",
    policy: Policy | None = None,
    *,
    hold: bool = False,
    server: str | None = None,
) -> Verifier | RemoteVerifier:
    """The process-wide verifier for (runtime, policy): environments, the trainer and the reward
    functions share its cache and its Lean processes this way.

    A server's address as `runtime` (`http://…`), or `server` (a URL or "auto"), or the
    `LEANGYM_SERVER` variable, gives a `RemoteVerifier` instead: the same interface, answered
    by a `leangym serve` server's warm Lean (`leangym.client.server_for`).

    Verifiers of one runtime name share that name's runtime (`lean_project.shared`), whatever
    their policy. By default the caller pins it: it stays up for the rest of the process (the
    trainer, the evaluator, reward functions never say when they are done). With `hold=True`
    the caller takes a hold instead and gives it back with `verifier.release()`; the last hold
    released closes an unpinned runtime (the environments). Passing a `LeanRuntime` makes it
    that shared runtime from now on (it stays its creator's to close).
    """
    policy = policy or Policy()
    if isinstance(runtime, str):
        from leangym.client import RemoteVerifier, server_for

        url = server_for(runtime, server)
        if url is not None:
            with _SHARED_LOCK:
                if (url, policy) not in _REMOTE:
                    _REMOTE[(url, policy)] = RemoteVerifier(url, policy)
                return _REMOTE[(url, policy)]
    slot = shared_runtime(runtime)
    with _SHARED_LOCK:
        verifier = _VERIFIERS.get((slot.name, policy))
        if verifier is None or verifier._slot is not slot:
            verifier = Verifier(slot.name, policy)
            verifier._slot = slot
            _VERIFIERS[(slot.name, policy)] = verifier
    if hold:
        slot.hold()
    else:
        slot.pin()
    return verifier


def verify(
    problem: Problem, submission: str | bytes, *, runtime: str = "embedded", policy: Policy | None = None
) -> Verdict:
    """Verify one submission with the shared verifier (batch with `verify_batch` when you can)."""
    return get_verifier(runtime, policy).verify(problem, submission)
