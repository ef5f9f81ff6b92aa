"""LeanDojo adapter (`pip install 'lean-gym[dojo]'`): problems from a traced repository, tactics via `Dojo`.

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
(`leangym.lean_project.tactics`). `lean_dojo` is imported only when used.
"""

from __future__ import annotations

from typing import Any

from leangym.lean_project.tactics import TacticResult, TacticState
from leangym.lean_project.types import InfraError
from leangym.rewards.problem import Problem

INSTALL_HINT = "LeanDojo is not installed: pip install 'lean-gym[dojo]'"


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


class DojoTactics:
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
