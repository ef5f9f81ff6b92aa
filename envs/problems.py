"""Problem sets: the JSONL format provers use, the sets shipped with leangym, LeanDojo files.

    from leangym.envs.problems import load_problems, list_sets

    load_problems("core:test")           # a shipped set and a split (`valid`, `test`); no split: all
    load_problems("minif2f-core:valid")  # the miniF2F statements the core library can state
    load_problems("my_set.jsonl")        # your own JSONL file (`my_set.jsonl:test` keeps one split)
    load_problems("random/test.json")    # a LeanDojo benchmark file (its theorem records)

A JSONL row is one problem, in the shape of miniF2F's Lean 4 release and DeepSeek-Prover:
`name`, `formal_statement` (`theorem … := by`), and optionally `header` (imports, options,
`open`), `split`, `informal_prefix` (a doc comment), `goal` (the initial goal as Lean prints
it), `category`, `reference_proof`. Unknown fields are kept in `Problem.extra`.

The sets (docs/problem_sets.md):

* `minif2f`: the 488 miniF2F problems (244 valid, 244 test). They import Mathlib, so they
  need the native runtime; `load_problems(..., runtime=…)` refuses them at once elsewhere.
* `minif2f-core`: the miniF2F problems whose statements elaborate on Lean's core library
  alone, given `MINIF2F_CORE_PRELUDE` instead of the Mathlib header. The subset is derived
  by checking every statement (`python -m leangym.envs.problems derive-minif2f-core`).
* `core`: leangym's own competition-style problems with reference proofs, no Mathlib needed.

This module also holds the portfolio tactic list: the `core` set's `difficulty` field is the
first of `PORTFOLIO_TACTICS` that proves a problem (`python -m leangym.envs.problems check-core`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leangym.rewards.problem import Problem

if TYPE_CHECKING:
    from leangym.lean_project.runtime import LeanRuntime

log = logging.getLogger(__name__)

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
    )
}


def list_sets() -> list[ProblemSet]:
    """The shipped sets, in the order above."""
    return list(SETS.values())


def load_problems(spec: str | os.PathLike[str], *, runtime: LeanRuntime | None = None) -> list[Problem]:
    """The problems named by `spec`: `SET`, `SET:SPLIT`, a JSONL or LeanDojo file, or `FILE:SPLIT`.

    With `runtime`, refuse at once (before any Lean run) a set whose headers import modules
    the runtime cannot load, such as miniF2F's Mathlib on the embedded runtime.
    """
    text = os.fspath(spec)
    source, split = _parse_spec(text)
    problems = SETS[source].load() if source in SETS else load_file(source)
    if split is not None:
        splits = sorted({p.split for p in problems})
        problems = [p for p in problems if p.split == split]
        if not problems:
            raise ProblemSetError(f"{source} has no split {split!r}: its splits are {', '.join(splits) or 'none'}")
    if runtime is not None:
        require_runtime(problems, runtime, text)
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
    names = Counter(p.name for p in problems)
    dup = [n for n, c in names.items() if c > 1]
    if dup:
        raise ProblemSetError(f"{path}: problem names must be unique; repeated: {', '.join(dup[:5])}")
    return problems


def _row(row: Any, where: str) -> Problem:
    if not isinstance(row, dict):
        raise ProblemSetError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [k for k in ("name", "formal_statement") if not row.get(k)]
    if missing:
        raise ProblemSetError(f"{where}: missing {', '.join(missing)}")
    return Problem.from_json(row)


# -- LeanDojo benchmark files -----------------------------------------------------------------

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
    own file is what `leangym.envs.dojo.DojoTactics` runs. Records without a tactic proof
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
        extra["repo"] = extra.pop("url", "")  # the key `envs/dojo.py` reads
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


# -- deriving minif2f-core ------------------------------------------------------------------------


@dataclass
class Derivation:
    """Which miniF2F statements elaborate under `MINIF2F_CORE_PRELUDE`, and why the others do not."""

    names: list[str]  # in the order of minif2f.jsonl
    rejected: dict[str, str]  # name -> Lean's first error
    undecided: dict[str, str]  # name -> why Lean gave no verdict (crash, timeout): rerun
    lean_version: str

    def to_json(self) -> dict[str, Any]:
        return {
            "prelude": MINIF2F_CORE_PRELUDE,
            "lean_version": self.lean_version,
            "criterion": "the statement with `:= by sorry` after the prelude: no error, a `sorry` warning",
            "count": len(self.names),
            "names": self.names,
        }


def derive_minif2f_core(runtime: LeanRuntime) -> Derivation:
    """Check every miniF2F statement with `sorry` as its proof after the prelude: one batched `check`."""
    problems = SETS["minif2f"].load()
    sources = [MINIF2F_CORE_PRELUDE + p.formal_statement.rstrip() + " sorry\n" for p in problems]
    results = runtime.check(sources)
    names, rejected, undecided = [], {}, {}
    for p, res in zip(problems, results, strict=True):
        errors = [m.text for m in res.messages if m.is_error]
        if res.status != "ok":
            undecided[p.name] = str(res.error)
        elif errors:
            rejected[p.name] = errors[0].splitlines()[0]
        elif any(m.kind == "hasSorry" for m in res.messages):
            names.append(p.name)
        else:
            undecided[p.name] = "no error and no `sorry` warning: the statement was not checked"
    return Derivation(names, rejected, undecided, runtime.version)


# -- checking the core set ---------------------------------------------------------------------------


@dataclass
class CoreCheck:
    """What the kernel says about every `core` problem (see `check_core`)."""

    reference_failures: dict[str, str]  # name -> why its reference proof was not accepted
    trivial: dict[str, str]  # name -> the tactic (`rfl`, `trivial`) that alone proves it
    difficulty: dict[str, str | None]  # name -> the first portfolio tactic that proves it, or None
    recorded: dict[str, str | None]  # name -> the `difficulty` field in core.jsonl
    undecided: dict[str, str]  # "name: tactic" -> why the verifier could not decide (rerun)

    @property
    def mismatches(self) -> dict[str, tuple[str | None, str | None]]:
        return {n: (self.recorded[n], d) for n, d in self.difficulty.items() if self.recorded.get(n) != d}

    @property
    def ok(self) -> bool:
        return not (self.reference_failures or self.trivial or self.mismatches or self.undecided)


def check_core(runtime: str | LeanRuntime = "embedded", *, problems: Sequence[Problem] | None = None) -> CoreCheck:
    """Verify every reference proof, that neither `rfl` nor `trivial` alone proves a statement,
    and each problem's difficulty (the first of `PORTFOLIO_TACTICS` that proves it): one batch."""
    from leangym.rewards import Verifier

    problems = list(problems if problems is not None else SETS["core"].load())
    probes = ["rfl", "trivial", *PORTFOLIO_TACTICS[1:]]
    pairs = [(p, p.reference_proof or "") for p in problems]
    pairs += [(p, "\n  " + t) for p in problems for t in probes]
    with Verifier(runtime) as verifier:  # a runtime passed in stays open: it is the caller's
        verdicts = verifier.verify_batch(pairs)
    refs, rest = verdicts[: len(problems)], verdicts[len(problems) :]
    out = CoreCheck({}, {}, {}, {p.name: p.extra.get("difficulty") for p in problems}, {})
    for i, p in enumerate(problems):
        ref = refs[i]
        if not ref.proved:
            out.reference_failures[p.name] = f"{ref.outcome}: {', '.join(ref.reasons)} {ref.detail}".strip()
        by_tactic = dict(zip(probes, rest[i * len(probes) : (i + 1) * len(probes)], strict=True))
        for t, v in by_tactic.items():
            if v.outcome == "error":
                out.undecided[f"{p.name}: {t}"] = v.detail
        closer = next((t for t in ("rfl", "trivial") if by_tactic[t].proved), None)
        if closer is not None:
            out.trivial[p.name] = closer
        out.difficulty[p.name] = next((t for t in PORTFOLIO_TACTICS if by_tactic[t].proved), None)
    return out


def write_difficulty(measured: dict[str, str | None], path: Path = DATA / "core.jsonl") -> None:
    """Rewrite the `difficulty` field of each row of `path` with the measured value."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        row["difficulty"] = measured.get(row["name"], row.get("difficulty"))
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


# -- command line: python -m leangym.envs.problems ... ------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leangym.envs.problems", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the shipped sets, their splits and sizes")
    p = sub.add_parser("show", help="print the problems of a set as JSONL")
    p.add_argument("spec", help="SET[:SPLIT] or a file")
    p = sub.add_parser("derive-minif2f-core", help="check every miniF2F statement on the core library (one Lean run)")
    p.add_argument("--runtime", default="embedded")
    p.add_argument("--write", action="store_true", help=f"write the names to {DATA / 'minif2f_core.json'}")
    p.add_argument("--compare", type=Path, help="a JSON list of names to compare the result with")
    p = sub.add_parser("check-core", help="verify the core set: reference proofs, non-triviality, difficulty")
    p.add_argument("--runtime", default="embedded")
    p.add_argument("--update", action="store_true", help="rewrite `difficulty` in core.jsonl with the measured one")
    args = parser.parse_args(argv)
    if args.command == "list":
        for s in list_sets():
            counts = Counter(p.split for p in s.load())
            splits = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            print(f"{s.name:14} {sum(counts.values()):4} problems ({splits})  {s.description}")
        return 0
    if args.command == "show":
        for prob in load_problems(args.spec):
            print(json.dumps({"name": prob.name, "split": prob.split, "header": prob.header,
                              "formal_statement": prob.formal_statement}, ensure_ascii=False))  # fmt: skip
        return 0
    if args.command == "derive-minif2f-core":
        return _derive(args)
    return _check_core(args)


def _derive(args: argparse.Namespace) -> int:
    from leangym.lean_project import get_runtime

    with get_runtime(args.runtime) as lean:
        d = derive_minif2f_core(lean)
    splits = Counter(p.split for p in SETS["minif2f"].load() if p.name in set(d.names))
    print(f"{len(d.names)} of {len(d.names) + len(d.rejected) + len(d.undecided)} statements elaborate "
          f"({', '.join(f'{k} {v}' for k, v in sorted(splits.items()))}) on Lean {d.lean_version}")  # fmt: skip
    for reason, count in Counter(r.split("`")[0] + "`…" if "`" in r else r for r in d.rejected.values()).most_common(8):
        print(f"  rejected {count:4}: {reason[:100]}")
    if d.undecided:
        print(f"{len(d.undecided)} undecided (Lean gave no verdict): rerun; nothing written", file=sys.stderr)
        for name, why in list(d.undecided.items())[:10]:
            print(f"  {name}: {why[:200]}", file=sys.stderr)
        return 1
    if args.compare:
        other = set(json.loads(args.compare.read_text(encoding="utf-8")))
        print(f"compared with {args.compare}: only here {sorted(set(d.names) - other) or 'none'}; "
              f"only there {sorted(other - set(d.names)) or 'none'}")  # fmt: skip
    if args.write:
        target = DATA / "minif2f_core.json"
        target.write_text(json.dumps(d.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {target}")
    return 0


def _check_core(args: argparse.Namespace) -> int:
    report = check_core(args.runtime)
    n = len(report.difficulty)
    accepted = n - len(report.reference_failures)
    print(f"{n} core problems: {accepted} reference proofs accepted, {len(report.trivial)} closed by rfl/trivial "
          f"alone, {len(report.mismatches)} difficulty changes")  # fmt: skip
    print("difficulty:", dict(Counter(str(d) for d in report.difficulty.values()).most_common()))
    for name, why in report.reference_failures.items():
        print(f"  reference proof of {name} not accepted: {why[:300]}")
    for name, tactic in report.trivial.items():
        print(f"  {name} is trivial: `{tactic}` proves it")
    for name, (old, new) in report.mismatches.items():
        print(f"  {name}: recorded {old}, measured {new}")
    for key, why in report.undecided.items():
        print(f"  undecided {key}: {why[:200]}")
    if args.update and not report.undecided:
        write_difficulty(report.difficulty)
        print(f"wrote the measured difficulty to {DATA / 'core.jsonl'}")
    return 0 if report.ok or (args.update and not report.reference_failures and not report.trivial) else 1


if __name__ == "__main__":
    sys.exit(main())
