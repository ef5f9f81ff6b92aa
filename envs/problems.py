"""Problem sets: the one loader of problems (the JSONL format provers use, the shipped sets, LeanDojo files).

    from leangym.envs.problems import load_problems, list_sets

    load_problems("core:test")           # a shipped set and a split (`valid`, `test`); no split: all
    load_problems("minif2f-core:valid")  # the miniF2F statements the core library can state
    load_problems("my_set.jsonl")        # your own JSONL file (`my_set.jsonl:test` keeps one split)
    load_problems("random/test.json")    # a LeanDojo benchmark file (its theorem records)
    load_problems([Problem(...), ...])   # your own problems, checked as the others are

A JSONL row is one problem, in the shape of miniF2F's Lean 4 release and DeepSeek-Prover:
`name`, `formal_statement` (`theorem … := by`), and optionally `header` (imports, options,
`open`), `split`, `informal_prefix` (a doc comment), `goal` (the initial goal as Lean prints
it), `category`, `reference_proof`. Unknown fields are kept in `Problem.extra`.

The sets (docs/problem_sets.md):

* `minif2f`: the 488 miniF2F problems (244 valid, 244 test). They import Mathlib, so they
  need the native runtime; `load_problems(..., runtime=…)` refuses them at once elsewhere.
* `minif2f-core`: the miniF2F problems whose statements elaborate on Lean's core library
  alone, given `MINIF2F_CORE_PRELUDE` instead of the Mathlib header. The subset is derived
  by checking every statement (`leangym problems derive-minif2f-core`, `envs/cli.py`).
* `core`: leangym's own competition-style problems with reference proofs, no Mathlib needed.
* `toy`: 15 problems, each closed by exactly one of `omega`, `decide`, `simp`: the GRPO demo's
  task (agents/configs/demo.yaml).

The `core` set's `difficulty` field is the first of `PORTFOLIO_TACTICS` that proves a problem
(measured by `leangym problems check-core`). LeanDojo records become problems in `envs/dojo.py`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leangym.rewards.problem import Problem

if TYPE_CHECKING:
    from leangym.lean_project.runtime import LeanRuntime

DATA = Path(__file__).parent / "data"

# The closing tactics of the portfolio baseline, cheapest first (agents/baselines.py).
PORTFOLIO_TACTICS: tuple[str, ...] = (
    "rfl",
    "decide",
    "omega",
    "simp",
    "simp_all",
    "constructor <;> omega",
    "constructor <;> simp_all",
    "grind",
)

# Replaces miniF2F's Mathlib header for `minif2f-core`. `autoImplicit false` keeps an unknown
# type such as `ℝ` from being bound as a variable (the statement would then elaborate about
# something else); the two notations give the core types miniF2F's names. The notations are
# `local`: a global `notation` would leak into the next source of a batch, so the runtime
# would have to check each statement in a Lean run of its own.
MINIF2F_CORE_PRELUDE = 'set_option autoImplicit false\nlocal notation "ℕ" => Nat\nlocal notation "ℤ" => Int\n'


class ProblemSetError(ValueError):
    """A problem set that cannot be loaded, or cannot be checked by the runtime at hand."""


@dataclass(frozen=True)
class ProblemSet:
    """A set shipped with leangym: a JSONL file in `envs/data/`, possibly narrowed and re-headed."""

    name: str
    file: str
    description: str
    header: str | None = None  # replaces every problem's header (`minif2f-core`'s prelude)
    names_file: str | None = None  # keep only the problems named there (a derived subset)

    def load(self) -> list[Problem]:
        problems = load_jsonl(DATA / self.file)
        if self.names_file is not None:
            keep = set(json.loads((DATA / self.names_file).read_text(encoding="utf-8"))["names"])
            problems = [p for p in problems if p.name in keep]
        if self.header is not None:
            problems = [replace(p, header=self.header) for p in problems]
        return problems


SETS: dict[str, ProblemSet] = {
    s.name: s
    for s in (
        ProblemSet(
            "minif2f",
            "minif2f.jsonl",
            "miniF2F in Lean 4 (DeepSeek-Prover-V1.5's release): 488 olympiad problems; needs Mathlib",
        ),
        ProblemSet(
            "minif2f-core",
            "minif2f.jsonl",
            "the miniF2F problems whose statements elaborate on Lean's core library (no Mathlib)",
            header=MINIF2F_CORE_PRELUDE,
            names_file="minif2f_core.json",
        ),
        ProblemSet(
            "core",
            "core.jsonl",
            "leangym's own competition-style problems, with reference proofs; no Mathlib",
        ),
        ProblemSet(
            "toy",
            "toy.jsonl",
            "15 problems, each closed by exactly one of omega, decide, simp: the GRPO demo's task",
        ),
    )
}


def list_sets() -> list[ProblemSet]:
    """The shipped sets, in the order above."""
    return list(SETS.values())


def load_problems(
    spec: str | os.PathLike[str] | Sequence[Problem], *, runtime: LeanRuntime | None = None
) -> list[Problem]:
    """The problems named by `spec` (`SET`, `SET:SPLIT`, a JSONL or LeanDojo file, `FILE:SPLIT`), or given.

    Every user of problems (the envs, `leangym train`, `leangym eval`) loads them here, so they
    all refuse the same things: an empty set, two problems of one name (results and `reset` go by
    name), and, with `runtime`, a set whose headers import modules the runtime cannot load
    (miniF2F's Mathlib on the embedded runtime), before any Lean run or model load.
    """
    if isinstance(spec, str | os.PathLike):
        label = os.fspath(spec)
        problems = _load_spec(label)
    else:
        label, problems = "these problems", list(spec)
        if not all(isinstance(p, Problem) for p in problems):
            raise TypeError("problems: give a set name, a JSONL path, or a list of leangym.rewards.Problem")
    if not problems:
        raise ProblemSetError(f"{label} is empty: no problems in it")
    repeated = [name for name, count in Counter(p.name for p in problems).items() if count > 1]
    if repeated:
        raise ProblemSetError(f"{label}: problem names must be unique; repeated: {', '.join(repeated[:5])}")
    if runtime is not None:
        require_runtime(problems, runtime, label)
    return problems


def _load_spec(text: str) -> list[Problem]:
    source, split = _parse_spec(text)
    problems = SETS[source].load() if source in SETS else load_file(source)
    if split is not None:
        splits = sorted({p.split for p in problems})
        problems = [p for p in problems if p.split == split]
        if not problems:
            raise ProblemSetError(f"{source} has no split {split!r}: its splits are {', '.join(splits) or 'none'}")
    return problems


def _parse_spec(text: str) -> tuple[str, str | None]:
    if text in SETS or Path(text).is_file():
        return text, None
    base, sep, split = text.rpartition(":")
    if sep and split and (base in SETS or Path(base).is_file()):
        return base, split
    raise ProblemSetError(
        f"unknown problem set {text!r}: give one of {', '.join(SETS)} (optionally :valid or :test), "
        "or the path of a JSONL file or a LeanDojo benchmark .json file (optionally :SPLIT)"
    )


def require_runtime(problems: Sequence[Problem], runtime: LeanRuntime, label: str = "these problems") -> None:
    """Raise `ProblemSetError` when `runtime` cannot import what the problems' headers import."""
    missing = Counter(m for p in problems for m in p.imports if not runtime.can_import(m))
    if not missing:
        return
    module, count = missing.most_common(1)[0]
    what = "Mathlib" if module.split(".")[0] == "Mathlib" else f"`{module}`"
    hint = ". For miniF2F without Mathlib, try minif2f-core." if label.split(":")[0] == "minif2f" else ""
    raise ProblemSetError(
        f"{label} needs {what} ({count} of {len(problems)} problems import it), which the {runtime.name} "
        f"runtime cannot import: use the native runtime (--runtime native; see docs/native.md){hint}"
    )


# -- files ---------------------------------------------------------------------------------


def load_file(path: str | os.PathLike[str]) -> list[Problem]:
    """A `.jsonl` file of problem rows, or a `.json` file: a LeanDojo benchmark file or a list of rows."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return load_jsonl(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProblemSetError(f"{path}: not a JSONL file (by its name) and not JSON: {e}") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ProblemSetError(f"{path}: expected a JSON list of records (a LeanDojo benchmark file)")
    if data and "traced_tactics" in data[0]:
        from leangym.envs.dojo import load_leandojo  # its module holds the LeanDojo adapter too

        return load_leandojo(data, split=path.stem)
    return [_row(r, f"{path} record {i}") for i, r in enumerate(data)]


def load_jsonl(path: str | os.PathLike[str]) -> list[Problem]:
    """One problem per non-blank line; a line that is not a problem is an error naming the line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ProblemSetError(f"{path}: not UTF-8 text ({e})") from None
    problems = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ProblemSetError(f"{path} line {n}: not JSON ({e.msg})") from None
        problems.append(_row(row, f"{path} line {n}"))
    return problems


def _row(row: Any, where: str) -> Problem:
    if not isinstance(row, dict):
        raise ProblemSetError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [k for k in ("name", "formal_statement") if not row.get(k)]
    if missing:
        raise ProblemSetError(f"{where}: missing {', '.join(missing)}")
    return Problem.from_json(row)
