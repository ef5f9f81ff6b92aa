"""`leangym problems`: list and show the problem sets, and the maintenance commands that re-derive them.

    leangym problems list                          the shipped sets, their splits and sizes
    leangym problems show SPEC                     a set (or file) as JSONL
    leangym problems derive-minif2f-core [--write] which miniF2F statements the core library states
    leangym problems check-core [--update]         the `core` set against the kernel: reference
                                                   proofs, non-triviality, `difficulty`

Loading is `leangym.envs.problems` (`list` and `show` print what it loads); the two maintenance
commands run Lean over the shipped sets to keep their derived data (`minif2f_core.json`,
`core.jsonl`'s `difficulty`) true to the kernel.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leangym.envs.problems import DATA, MINIF2F_CORE_PRELUDE, PORTFOLIO_TACTICS, SETS, list_sets, load_problems
from leangym.rewards.problem import Problem

if TYPE_CHECKING:
    from leangym.lean_project.runtime import LeanRuntime


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
        elif any(m.uses_sorry for m in res.messages):
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


# -- command line -------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    """Add `leangym problems …` (see the module docstring)."""
    problems = sub.add_parser("problems", help="list, show and re-derive the shipped problem sets")
    commands = problems.add_subparsers(dest="problems_command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="the shipped sets, their splits and sizes").set_defaults(func=_list)
    p = commands.add_parser("show", help="print the problems of a set as JSONL")
    p.add_argument("spec", help="SET[:SPLIT] or a file")
    p.set_defaults(func=_show)
    p = commands.add_parser("derive-minif2f-core", help="check every miniF2F statement on the core library (one batch)")
    p.add_argument("--runtime", default="embedded")
    p.add_argument("--write", action="store_true", help=f"write the names to {DATA / 'minif2f_core.json'}")
    p.add_argument("--compare", type=Path, help="a JSON list of names to compare the result with")
    p.set_defaults(func=_derive)
    p = commands.add_parser("check-core", help="verify the core set: reference proofs, non-triviality, difficulty")
    p.add_argument("--runtime", default="embedded")
    p.add_argument("--update", action="store_true", help="rewrite `difficulty` in core.jsonl with the measured one")
    p.set_defaults(func=_check_core)


def _list(args: argparse.Namespace) -> int:
    for s in list_sets():
        counts = Counter(p.split for p in s.load())
        splits = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"{s.name:14} {sum(counts.values()):4} problems ({splits})  {s.description}")
    return 0


def _show(args: argparse.Namespace) -> int:
    for prob in load_problems(args.spec):
        print(json.dumps({"name": prob.name, "split": prob.split, "header": prob.header,
                          "formal_statement": prob.formal_statement}, ensure_ascii=False))  # fmt: skip
    return 0


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
