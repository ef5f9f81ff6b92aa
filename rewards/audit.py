"""The native runtime's kernel-side audit of accepted proofs: a separate, trusted Lean run.

The Lean run that elaborated a candidate is the one run a malicious proof could have
influenced. So each proof that run accepted is checked again, by programs that take
nothing from it on trust:

1. `LGReference<k>.lean`: the trusted header and statement with `sorry` for a proof,
   compiled once per problem (`lean -o`). It fixes the statement's type, elaborated with no
   submitted text in scope (so no instance or notation of the candidate can change it).
2. `LGCandidate<i>.lean`: the source the verifier checked, compiled to an `.olean`. This
   run elaborates submitted text, so it runs that text's code: it runs in bubblewrap
   (`lean_project/sandbox.py`) and may write only its own folder, which no other run reads
   from: its `.olean` is copied out (a regular file, not a link) and named by path.
3. `audit.lean`, run with `lean --run`: it imports the reference (its search path holds the
   references' folder and the toolchain, nothing a candidate wrote), reads the candidate's
   constants from the copied `.olean` as data (nothing of the candidate runs), parses no Lean text,
   replays every constant of the candidate module through the kernel on top of
   the reference, checks that the target theorem's type is the reference statement's, and
   prints its axioms as `#print axioms` does. The policy allows propext, Classical.choice
   and Quot.sound (plus the compiler's axioms when `allow_native_decide` is set).

The embedded runtime cannot run it: every file there is a `module`, which refuses
`#print axioms` and cannot compile the program (see docs/verification.md).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from leangym.lean_project.kernel import reference_source
from leangym.lean_project.native import NativeLauncher, find_native
from leangym.lean_project.process import Finished, run_to_end
from leangym.rewards.policy import Policy
from leangym.rewards.problem import Problem
from leangym.rewards.submission import parse_statement
from leangym.rewards.verdict import Verdict

AUDIT_PROGRAM = Path(__file__).with_name("audit.lean")

_AXIOMS = re.compile(r"'(?P<name>.+?)' (?:depends on axioms: \[(?P<axioms>[^\]]*)\]|does not depend on any axioms)")


def parse_axioms(output: str) -> tuple[str, ...] | None:
    """The axioms a `#print axioms` line in `output` names (`()` for none), or None if there is no such line.

    The one reader of that wording in leangym: the audit program prints it, and so does Lean's
    `#print axioms`.
    """
    m = _AXIOMS.search(output)
    if m is None:
        return None
    listed = m.group("axioms") or ""
    return tuple(a.strip() for a in listed.split(",") if a.strip())


def judge_audit(output: str, returncode: int | None, target: str, policy: Policy) -> Verdict | None:
    """What the audit program's output means: None when the proof passes, else the verdict it earns."""
    failure = re.search(r"^lg-audit: failed: (.*)$", output, re.MULTILINE | re.DOTALL)
    if failure is not None:
        why = failure.group(1).strip()
        if "(kernel)" in why:
            return Verdict("rejected", ("kernel_rejected",), detail=f"kernel replay: {why}")
        if why.startswith("missing:"):
            return Verdict("rejected", ("missing_declaration",), detail=why)
        if why.startswith("type mismatch"):
            return Verdict("rejected", ("statement_modified",), detail=why)
        return Verdict("error", ("audit_failed",), detail=why)
    axioms = parse_axioms(output)
    if returncode != 0 or axioms is None or "lg-audit: type ok" not in output:
        return Verdict("error", ("audit_failed",), detail=f"audit exited with {returncode}: {output[-500:]}")
    extra = [a for a in axioms if a not in policy.allowed_axioms]
    if extra:
        reasons = ("nonstandard_axiom", "sorry") if "sorryAx" in extra else ("nonstandard_axiom",)
        return Verdict("rejected", reasons, detail=f"'{target}' depends on {', '.join(extra)}")
    return None


@dataclass
class NativeAudit:
    """Runs the audit with a native `lean` (see the module docstring).

    Each Lean run that reads submitted text (the candidate's `lean -o`) runs in bubblewrap and may
    write only its own folder, which is never on the audit's search path: a module it wrote there
    under the reference's name would otherwise be imported as the reference (a red-team helper's
    finding). Its `.olean` is copied out as bytes and named to the audit by path.
    """

    launcher: NativeLauncher
    policy: Policy
    workers: int = max(1, os.cpu_count() or 1)  # the machine's run slots bound them further
    memory_mb: float = 8192  # per Lean run, as the runtimes' default cap

    @classmethod
    def find(cls, policy: Policy) -> NativeAudit:
        return cls(find_native(), policy)

    def audit(self, items: Sequence[tuple[Problem, str]]) -> list[Verdict | None]:
        """For each (problem, checked source) Lean accepted: None if the audit passes, else the new verdict."""
        with tempfile.TemporaryDirectory(prefix="leangym-audit-") as tmp:
            work = Path(tmp)
            (work / "references").mkdir()  # trusted modules: on the audit's LEAN_PATH, out of every candidate's reach
            (work / "candidates").mkdir()  # each candidate's .olean, copied out of its compile's folder
            modules: dict[tuple[str, str], str] = {}  # one reference module per problem
            firsts: list[Problem] = []
            for problem, _ in items:
                if (problem.header, problem.formal_statement) not in modules:
                    modules[(problem.header, problem.formal_statement)] = f"LGReference{len(firsts)}"
                    firsts.append(problem)
            with ThreadPoolExecutor(self.workers) as pool:
                compiled = pool.map(lambda p, m: self._reference(work, p, m), firsts, modules.values())
                ref_errors = dict(zip(modules.values(), compiled, strict=True))
                refs = [modules[(p.header, p.formal_statement)] for p, _ in items]
                return list(
                    pool.map(
                        lambda i, item, ref: self._candidate(work, f"LGCandidate{i}", *item, ref, ref_errors[ref]),
                        range(len(items)), items, refs,
                    )
                )  # fmt: skip

    def _candidate(
        self, work: Path, module: str, problem: Problem, source: str, ref: str, ref_error: str | None
    ) -> Verdict | None:
        name = parse_statement(problem.formal_statement).name
        if name is None:
            return None  # an `example` declares nothing to audit
        if ref_error is not None:
            return Verdict("error", ("audit_failed",), detail=f"the reference did not compile: {ref_error}")
        folder = work / module
        folder.mkdir()
        error = self._compile(folder, module, source) or _copy_out(folder / f"{module}.olean", work / "candidates")
        if error is not None:
            return Verdict("error", ("audit_failed",), detail=f"the candidate did not compile again: {error}")
        olean = work / "candidates" / f"{module}.olean"
        argv = [str(self.launcher.lean), "--run", str(AUDIT_PROGRAM), str(olean), ref, name, f"{ref}.{name}"]
        references = work / "references"
        done = self._lean(argv, (references,), reads=(references, olean, AUDIT_PROGRAM.parent))
        if done.stopped is not None:
            return Verdict("error", ("audit_failed",), detail=f"the audit was stopped: {done.stopped}")
        return judge_audit(done.output, done.returncode, name, self.policy)

    def _reference(self, work: Path, problem: Problem, module: str) -> str | None:
        text = reference_source(problem.header, problem.formal_statement, module)
        return self._compile(work / "references", module, text)

    def _compile(self, folder: Path, module: str, text: str) -> str | None:
        """`lean -o` one module in `folder` (the only place it may write); the end of Lean's output
        if that fails."""
        src = folder / f"{module}.lean"
        src.write_text(text, encoding="utf-8")
        argv = [str(self.launcher.lean), "-o", str(folder / f"{module}.olean"), str(src)]
        done = self._lean(argv, (), writes=(folder,))
        if done.stopped is not None:
            return done.stopped
        return None if done.returncode == 0 else done.output[-1000:]

    def _lean(
        self, argv: list[str], modules: Sequence[Path], *, reads: Sequence[Path] = (), writes: Sequence[Path] = ()
    ) -> Finished:
        """One confined `lean` run (`NativeLauncher.confined`) that imports from `modules`, under the
        process layer's slot, group and caps."""
        limit = self.policy.timeout + 120.0  # the proof's own limit, plus loading the imports
        confined = self.launcher.confined(argv, reads=reads, writes=writes)
        env = self.launcher.environment(*modules)
        return run_to_end(confined, env, timeout=limit, memory_mb=self.memory_mb)


def _copy_out(olean: Path, into: Path) -> str | None:
    """Copy a candidate's `.olean` out of the folder its compile could write (its processes are
    gone by now): a regular file only, never a link it planted to another module's file."""
    if olean.is_symlink() or not olean.is_file():
        return f"{olean.name} is not a regular file"
    (into / olean.name).write_bytes(olean.read_bytes())
    return None
