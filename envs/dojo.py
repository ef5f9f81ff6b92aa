"""LeanDojo: problems from benchmark files (no LeanDojo needed), from a traced repository, tactics via `Dojo`.

    from leangym.envs.dojo import DojoTactics, traced_problems

    problems = traced_problems("https://github.com/yangky11/lean4-example", "7b6ecb9a", limit=10)
    with DojoTactics(problems[0]) as dojo:
        step = dojo.start()                        # the theorem's initial proof state
        step = dojo.apply(step.state, "omega")     # a TacticResult, as from leangym.lean_project.tactics

For a repository LeanDojo has traced (its own Lean project, any toolchain LeanDojo supports).
Each `Problem` keeps the repository, commit, file and full name in `extra`: a theorem of a
repository elaborates only inside its file (its namespaces, variables, earlier lemmas), so
`DojoTactics` runs it there, through `lean_dojo.Dojo`, rather than through leangym's verifier.
`DojoTactics` answers with the `TacticState`/`TacticResult` of leangym's tactic mode
(`leangym.lean_project.tactics`); its `start()` takes no statement (the theorem is LeanDojo's). `lean_dojo`
(`pip install 'lean-gym[dojo]'`) is imported only when used: `load_leandojo`, which reads the
records of a LeanDojo benchmark file (`leangym.envs.problems.load_problems("random/test.json")`),
does not need it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from leangym.lean_project.tactics import TacticBackend, TacticResult, TacticState
from leangym.lean_project.types import InfraError
from leangym.rewards.problem import Problem

INSTALL_HINT = "LeanDojo is not installed: pip install 'lean-gym[dojo]'"

log = logging.getLogger(__name__)


# -- benchmark files -------------------------------------------------------------------------

# An inaccessible name as Lean prints it: `x✝`, `inst✝¹`.
_HIDDEN = re.compile(r"([^\s():\[\]{},]+)✝([⁰¹²³⁴⁵⁶⁷⁸⁹]*)")


def load_leandojo(
    records: Sequence[dict[str, Any]], *, split: str = "", header: str = "import Mathlib\n"
) -> list[Problem]:
    """Problems from LeanDojo benchmark records (`full_name`, `file_path`, `traced_tactics`, …).

    LeanDojo records no statement text, so the statement is rebuilt from the goal before the
    first traced tactic: each hypothesis becomes a binder (`inst✝ : C α` an instance binder
    `[C α]`, other hidden names fresh ones), the goal the conclusion. That is faithful when
    the goal prints without the file's `open`s and local notation; the exact theorem in its
    own file is what `DojoTactics` (below) runs. Records without a tactic proof
    (no traced tactic) are skipped, and counted in the log.
    """
    problems, skipped = [], 0
    for rec in records:
        tactics = rec.get("traced_tactics") or []
        goal = tactics[0].get("state_before", "") if tactics else ""
        statement = statement_from_goal(_decl_name(rec["full_name"]), goal) if goal else None
        if statement is None:
            skipped += 1
            continue
        extra = {k: rec[k] for k in ("url", "commit", "file_path", "full_name", "start", "end") if k in rec}
        extra["repo"] = extra.pop("url", "")  # the key `DojoTactics` reads
        problems.append(
            Problem(name=rec["full_name"], formal_statement=statement, header=header, split=split, extra=extra)
        )
    if skipped:
        log.info("LeanDojo file: skipped %d of %d theorems (no tactic proof, or a goal with no statement)",
                 skipped, len(records))  # fmt: skip
    return problems


def _decl_name(full_name: str) -> str:
    """A declaration name without dots (a dotted name would need its namespace to exist)."""
    return re.sub(r"\W", "_", full_name.replace(".", "_"))


def statement_from_goal(name: str, goal: str) -> str | None:
    """`theorem name (binders) : target := by` from one goal as Lean prints it, or None when impossible."""
    if goal.count("⊢") != 1:
        return None
    lines = [ln for ln in goal.splitlines() if not ln.startswith("case ")]
    hyps: list[str] = []
    for ln in lines:
        if ln.startswith((" ", "\t")) and hyps:
            hyps[-1] += " " + ln.strip()  # a long hypothesis continues on indented lines
        else:
            hyps.append(ln.strip())
    target = next((h for h in hyps if h.startswith("⊢")), None)
    if target is None:
        return None
    fresh: dict[str, str] = {}

    def rename(m: re.Match[str]) -> str:
        return fresh.setdefault(m.group(0), f"{m.group(1).split('.')[-1]}_{len(fresh)}")

    binders = []
    for h in hyps:
        if h is target:
            break
        names, sep, typ = h.partition(" : ")
        if not sep or " := " in typ:  # a `let` value has no binder form
            return None
        if all(n.startswith("inst✝") for n in names.split()):
            binders += [f"[{_HIDDEN.sub(rename, typ)}]"] * len(names.split())
        else:
            binders.append(f"({_HIDDEN.sub(rename, names)} : {_HIDDEN.sub(rename, typ)})")
    conclusion = _HIDDEN.sub(rename, target[1:].strip())
    return f"theorem {name} {' '.join(binders)} : {conclusion} := by".replace("  ", " ")


# -- traced repositories and proof search (needs LeanDojo) ----------------------------------


def _lean_dojo() -> Any:
    try:
        import lean_dojo
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return lean_dojo


def traced_problems(
    url: str, commit: str, *, limit: int | None = None, tactic_proofs_only: bool = True
) -> list[Problem]:
    """The theorems of the repository at `url`@`commit` (traced by LeanDojo; the first trace takes long)."""
    lean_dojo = _lean_dojo()
    repo = lean_dojo.LeanGitRepo(url, commit)
    problems = []
    for traced in lean_dojo.trace(repo).get_traced_theorems():
        thm = traced.theorem
        if thm.repo != repo or (tactic_proofs_only and not traced.has_tactic_proof()):
            continue  # a dependency's theorem, or one whose proof is a term
        problems.append(
            Problem(
                name=thm.full_name,
                formal_statement=traced.get_theorem_statement().rstrip() + " := by",
                reference_proof=traced.get_tactic_proof(),
                extra={"repo": url, "commit": repo.commit, "file_path": str(thm.file_path), "full_name": thm.full_name},
            )
        )
        if limit is not None and len(problems) == limit:
            break
    return problems


class DojoTactics(TacticBackend):
    """One theorem's proof search through `lean_dojo.Dojo` (a context manager, like `Dojo` itself).

    After a timeout or a crash the Dojo process is gone: the step says so (`infra`), and the
    search must start again in a new `DojoTactics`.
    """

    def __init__(self, problem: Problem, *, timeout: int = 600):
        lean_dojo = _lean_dojo()
        extra = problem.extra
        repo = lean_dojo.LeanGitRepo(extra["repo"], extra["commit"])
        self.problem = problem
        self._lean_dojo = lean_dojo
        self._dojo = lean_dojo.Dojo(lean_dojo.Theorem(repo, extra["file_path"], extra["full_name"]), timeout=timeout)
        self._initial: Any = None
        self._states: dict[TacticState, Any] = {}  # Dojo's own state objects, by the states they answer

    def __enter__(self) -> DojoTactics:
        _, self._initial = self._dojo.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._dojo.__exit__(*exc)

    def start(self) -> TacticResult:
        """The theorem's initial proof state."""
        return TacticResult(self._state(self._initial, ()))

    def apply(self, state: TacticState, tactic: str) -> TacticResult:
        """Run `tactic` in `state` (which must come from this object)."""
        ld = self._lean_dojo
        try:
            result = self._dojo.run_tac(self._states[state], tactic)
        except ld.DojoTacticTimeoutError as e:
            return TacticResult(None, "the tactic timed out", infra=InfraError("timeout", str(e)), tactic=tactic)
        except ld.DojoCrashError as e:
            kind = "out_of_memory" if e.is_out_of_memory else "crash"
            return TacticResult(None, "Lean crashed", infra=InfraError(kind, str(e)), tactic=tactic)
        if isinstance(result, ld.LeanError):
            return TacticResult(None, result.error, tactic=tactic)
        if isinstance(result, ld.ProofGivenUp):
            return TacticResult(None, "the proof contains `sorry`", tactic=tactic)
        return TacticResult(self._state(result, (*state.tactics, tactic)), tactic=tactic)

    def _state(self, result: Any, tactics: tuple[str, ...]) -> TacticState:
        """The state Dojo reached (no goals once the proof is finished); Dojo's own state is kept for `apply`."""
        finished = isinstance(result, self._lean_dojo.ProofFinished)
        goals = () if finished else tuple(result.pp.split("\n\n"))
        state = TacticState(goals, header="", statement=self.problem.formal_statement, tactics=tactics)
        if not finished:
            self._states[state] = result
        return state
