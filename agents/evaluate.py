"""`leangym eval`: benchmark an agent on a problem set, pass@k per split.

    leangym eval --problems core:test --agent portfolio
    leangym eval --problems minif2f-core:test --agent search --expansions 8
    leangym eval --problems core:test --agent hf:deepseek-ai/DeepSeek-Prover-V1.5-RL -k 8 --out runs/ds

The run directory (`--out`) holds:

* `run.json`: what was run (problems, agent, k, runtime, Lean version) and the wall time;
* `results.jsonl`: one row per problem, with every sample's proof, verdict, reasons, seconds;
* `summary.json`: pass@k per split (unbiased estimator, `agents/passk.py`), solved by category;
* `pass_at_k.png`: pass@k against k, and the problems solved in each category.

Problems go to the agent in batches of `--batch`; each finished batch is appended to
`results.jsonl` at once, so a rerun with the same `--out` skips the problems already
there. Problems where Lean gave no verdict (a crash, a timeout of the runtime itself)
are tried again. Agents: docs/eval.md and `agents/prover.py`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leangym.agents.passk import ks_up_to, pass_at_k_table
from leangym.cli import CommandError

if TYPE_CHECKING:
    from leangym.agents.prover import Attempt, Prover
    from leangym.rewards.problem import Problem
    from leangym.rewards.verifier import BaseVerifier

BUILTIN_AGENTS = ("portfolio", "search", "hf:PATH_OR_NAME", "MODULE:FACTORY")


class EvalError(RuntimeError):
    """A run that cannot start or continue: said plainly, before any Lean run where possible."""


# -- the command line -------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    from leangym.rewards.cli import add_server_flag

    p = sub.add_parser(
        "eval",
        help="benchmark an agent on a problem set (pass@k per split)",
        description=__doc__.split("\n\n")[0] + " Outputs: results.jsonl, summary.json, pass_at_k.png.",
        epilog="Problem sets: leangym problems list. Agents and outputs: docs/eval.md.",
    )
    p.add_argument("--problems", required=True, help="SET[:SPLIT] (core, minif2f-core, minif2f) or a .jsonl/.json file")
    p.add_argument("--agent", required=True, help="portfolio, search, hf:PATH_OR_NAME, or MODULE:FACTORY")
    p.add_argument("-k", type=int, default=1, help="samples per problem for pass@k (default 1)")
    p.add_argument("--out", type=Path, help="run directory (default runs/eval/SET-SPLIT-AGENT)")
    p.add_argument("--runtime", default="embedded", choices=["embedded", "native"], help="native for Mathlib")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per proof inside Lean (default 60)")
    p.add_argument("--batch", type=int, default=32, help="problems per batch: the unit of progress and resume")
    p.add_argument("--limit", type=int, help="only the first N problems (a quick try)")
    p.add_argument(
        "--ray", nargs="?", const="local", metavar="ADDRESS", help="verify on a Ray cluster (default address: local)"
    )
    add_server_flag(p)
    g = p.add_argument_group("portfolio and search")
    g.add_argument("--tactic", action="append", dest="tactics", metavar="TACTIC", help="replace the tactic list")
    g.add_argument("--expansions", type=int, default=8, help="search: node expansions per problem (default 8)")
    g = p.add_argument_group("hf:PATH_OR_NAME agents")
    g.add_argument("--template", default="plain", choices=["plain", "fence", "chat"], help="prompt template")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--max-new-tokens", type=int, default=512)
    g.add_argument("--stop", action="append", metavar="TEXT", help="end completions here (default: the template's)")
    g.add_argument("--backend", default="auto", choices=["auto", "vllm", "transformers"])
    g.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from leangym.envs.problems import ProblemSetError

    if args.k < 1 or args.batch < 1:
        raise CommandError("-k and --batch must be at least 1")
    out = args.out or Path("runs/eval") / f"{_slug(args.problems)}-{_slug(args.agent)}"
    try:
        verifier = _verifier(args.runtime, args.timeout, args.ray, args.server)
        summary = run_eval(args.problems, args.agent, k=args.k, out=out, verifier=verifier, batch=args.batch,
                           limit=args.limit, agent_options=_agent_options(args))  # fmt: skip
    except (EvalError, ProblemSetError, ValueError) as e:
        raise CommandError(str(e)) from e
    print(format_table(summary))
    print(f"verified by {verifier.describe()}")
    print(f"\nresults: {out}/results.jsonl  summary: {out}/summary.json  plot: {out}/pass_at_k.png")
    return 0


def _agent_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.agent in ("portfolio", "search"):
        opts: dict[str, Any] = {"tactics": args.tactics} if args.tactics else {}
        return {**opts, "max_expansions": args.expansions} if args.agent == "search" else opts
    if args.agent.startswith("hf:"):
        return {"template": args.template, "temperature": args.temperature, "top_p": args.top_p,
                "max_new_tokens": args.max_new_tokens, "stop": args.stop, "backend": args.backend,
                "seed": args.seed}  # fmt: skip
    return {}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", Path(text).name if "/" in text and ":" not in text else text).strip("-")


# -- agents ------------------------------------------------------------------------------


def make_agent(spec: str, **options: Any) -> Prover:
    """An agent from its command-line name (see `BUILTIN_AGENTS`)."""
    from leangym.agents import baselines

    if spec == "portfolio":
        return baselines.PortfolioAgent(**options)
    if spec == "search":
        return baselines.SearchAgent(**options)
    if spec.startswith("hf:"):
        from leangym.agents.hf_agent import HFAgent

        return HFAgent(spec[3:], **options)
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise EvalError(f"unknown agent {spec!r}: choose one of {', '.join(BUILTIN_AGENTS)}")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise EvalError(f"agent {spec!r}: cannot load {attr} from {module}: {e}") from e
    agent = factory(**options)
    missing = [a for a in ("name", "deterministic", "attempt") if not hasattr(agent, a)]
    if missing:
        raise EvalError(f"agent {spec!r} lacks {', '.join(missing)} (see leangym.agents.prover.Prover)")
    return agent


# -- the run -------------------------------------------------------------------------------


@dataclass
class RunDir:
    """The files of a run directory (see the module docstring)."""

    path: Path
    results: Path = field(init=False)  # results.jsonl: a row per problem, appended as each is decided
    config: Path = field(init=False)  # run.json: what ran (a resumed run must match it)
    summary: Path = field(init=False)  # summary.json: pass@k and the reasons
    plot: Path = field(init=False)  # pass_at_k.png

    def __post_init__(self) -> None:
        self.results, self.config = self.path / "results.jsonl", self.path / "run.json"
        self.summary, self.plot = self.path / "summary.json", self.path / "pass_at_k.png"

    def rows(self) -> list[dict[str, Any]]:
        """Every complete row (a line torn by a stopped run is left out)."""
        if not self.results.exists():
            return []
        rows = []
        for line in self.results.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def resume(self) -> list[dict[str, Any]]:
        """Rows of decided problems; the file is rewritten without torn lines and undecided rows (to retry)."""
        rows = [r for r in self.rows() if not _undecided(r)]
        if self.results.exists():
            self.results.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return rows

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        with self.results.open("a", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def run_eval(
    problems: str | Sequence[Problem],
    agent: str | Prover,
    *,
    k: int = 1,
    out: str | Path,
    runtime: str = "embedded",
    timeout: float = 60.0,
    verifier: BaseVerifier | None = None,
    batch: int = 32,
    limit: int | None = None,
    agent_options: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate `agent` on `problems`, writing the run directory `out`; return the summary.

    A set that needs what the runtime lacks (miniF2F's Mathlib on the embedded runtime) is
    refused before any Lean run and before the agent (a model, say) is loaded.
    """
    from leangym.envs.problems import load_problems, require_runtime

    run = RunDir(Path(out))
    verifier = verifier if verifier is not None else _verifier(runtime, timeout)
    label = problems if isinstance(problems, str) else "the problems"
    todo_all = load_problems(problems)[:limit]
    require_runtime(todo_all, verifier.runtime, str(label))  # what runs must be loadable here
    agent_name = agent if isinstance(agent, str) else agent.name
    config = {
        "problems": label,
        "limit": limit,
        "agent": agent_name,
        "agent_options": agent_options or {},
        "k": k,
        "runtime": verifier.runtime.name,
        "lean_version": verifier.runtime.version,
    }
    wall = _check_config(run, config)
    done = {r["name"]: r for r in run.resume()}
    todo = [p for p in todo_all if p.name not in done]
    if done and progress:
        print(f"resuming {run.path}: {len(todo_all) - len(todo)} of {len(todo_all)} problems done", file=sys.stderr)
    if todo:
        prover = make_agent(agent, **(agent_options or {})) if isinstance(agent, str) else agent
        n = 1 if prover.deterministic else k
        config["deterministic"] = prover.deterministic  # the summary reports the agent's flag
        started = time.monotonic()
        try:
            _attempt_all(prover, todo, n, verifier, run, batch, progress)
        finally:
            _save_config(run, config, wall + time.monotonic() - started)
            if isinstance(agent, str) and hasattr(prover, "close"):
                prover.close()
        done = {r["name"]: r for r in run.rows()}
    rows = [done[p.name] for p in todo_all if p.name in done]
    summary = summarize(rows, k, json.loads(run.config.read_text(encoding="utf-8")))
    run.summary.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    plot(summary, run.plot)
    return summary


def _verifier(runtime: str, timeout: float, ray: str | None = None, server: str | None = None) -> BaseVerifier:
    from leangym.rewards import Policy
    from leangym.rewards.distributed import make_verifier

    return make_verifier(ray, runtime, Policy(timeout=timeout), server=server)


def _check_config(run: RunDir, config: dict[str, Any]) -> float:
    """Create the run directory, or check that the one there holds the same run; its wall time so far."""
    run.path.mkdir(parents=True, exist_ok=True)
    if not run.config.exists():
        _save_config(run, config, 0.0)
        return 0.0
    old = json.loads(run.config.read_text(encoding="utf-8"))
    keys = ("problems", "limit", "agent", "agent_options", "k", "runtime", "lean_version")
    diff = [f"{key}: {old.get(key)!r} there, {config[key]!r} now" for key in keys if old.get(key) != config[key]]
    if diff:
        raise EvalError(f"{run.path} holds another run ({'; '.join(diff)}): choose another --out, or delete it")
    return float(old.get("wall_seconds", 0.0))


def _save_config(run: RunDir, config: dict[str, Any], wall: float) -> None:
    run.config.write_text(json.dumps({**config, "wall_seconds": round(wall, 1)}, indent=1) + "\n", encoding="utf-8")


def _attempt_all(
    prover: Prover, todo: list[Problem], n: int, verifier: BaseVerifier, run: RunDir, batch: int, bar: bool
) -> None:
    from tqdm import tqdm

    solved = 0
    with tqdm(total=len(todo), desc=f"eval {prover.name}", unit="problem", disable=not bar) as progress:
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            attempts = prover.attempt(chunk, n, verifier)
            if len(attempts) != len(chunk):
                raise EvalError(f"agent {prover.name} answered for {len(attempts)} of {len(chunk)} problems")
            rows = [_row(p, a) for p, a in zip(chunk, attempts, strict=True)]
            run.append(rows)
            solved += sum(r["correct"] > 0 for r in rows)
            progress.set_postfix(solved=solved, refresh=False)
            progress.update(len(chunk))


def _undecided(row: dict[str, Any]) -> bool:
    """Lean gave no verdict on some sample (crash, runtime timeout): reported, and retried by a rerun."""
    return any(s["verdict"] == "error" for s in row["samples"])


def _row(problem: Problem, attempts: Sequence[Attempt]) -> dict[str, Any]:
    return {
        "name": problem.name,
        "split": problem.split,
        "category": category_of(problem),
        "n": len(attempts),
        "correct": sum(a.verdict.proved for a in attempts),
        "samples": [a.to_json() for a in attempts],
    }


def category_of(problem: Problem) -> str:
    """The problem's category, or for miniF2F its source read from the name (`mathd_algebra`, `amc12a`, `imo`)."""
    if problem.category:
        return problem.category
    parts = problem.name.split("_")
    return "_".join(parts[:2]) if parts[0] == "mathd" and len(parts) > 2 else parts[0]


# -- the summary ---------------------------------------------------------------------------------


def summarize(rows: Sequence[dict[str, Any]], k: int, config: dict[str, Any]) -> dict[str, Any]:
    """pass@k per split and overall, solved problems per category, and how many Lean could not decide."""
    # The agent's flag (a run from before it was recorded: one attempt where k were asked).
    deterministic = bool(config.get("deterministic", k > 1 and all(r["n"] == 1 for r in rows)))
    ks = ks_up_to(k)
    by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_split[r["split"] or "all"].append(r)
    if len(by_split) > 1 or "all" not in by_split:
        by_split["all"] = list(rows)

    def stats(group: list[dict[str, Any]]) -> dict[str, Any]:
        counts = [(r["n"], r["correct"]) for r in group]
        table = pass_at_k_table(counts, [1]) if deterministic else pass_at_k_table(counts, ks)
        if deterministic:  # one attempt stands for every k
            table = {kk: table.get(1, 0.0) for kk in ks}
        return {
            "problems": len(group),
            "solved": sum(c > 0 for _, c in counts),
            "undecided": sum(_undecided(r) for r in group),
            "pass_at_k": {str(kk): round(v, 4) for kk, v in table.items()},
        }

    categories: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        categories[r["category"]]["problems"] += 1
        categories[r["category"]]["solved"] += r["correct"] > 0
    return {
        **{key: config.get(key) for key in ("problems", "agent", "k", "runtime", "lean_version")},
        "deterministic": deterministic,
        "samples_per_problem": max((r["n"] for r in rows), default=0),
        "splits": {s: stats(g) for s, g in sorted(by_split.items(), key=lambda kv: (kv[0] == "all", kv[0]))},
        "categories": {c: dict(v) for c, v in sorted(categories.items())},
        "wall_seconds": config.get("wall_seconds"),  # of every session of the run, the agent's work included
        "proof_seconds": round(sum(s["seconds"] for r in rows for s in r["samples"]), 1),
    }


def format_table(summary: dict[str, Any]) -> str:
    """The terminal table: one line per split, pass@k as percentages."""
    ks = list(next(iter(summary["splits"].values()), {}).get("pass_at_k", {}))
    head = f"{'split':8} {'problems':>8} {'solved':>7} " + " ".join(f"{'pass@' + k:>8}" for k in ks)
    lines = [f"{summary['agent']} on {summary['problems']} ({summary['runtime']} Lean {summary['lean_version']})", head]
    for split, s in summary["splits"].items():
        if split == "all" and len(summary["splits"]) == 2:
            continue  # one split: "all" repeats it
        cells = " ".join(f"{100 * v:7.1f}%" for v in s["pass_at_k"].values())
        extra = f"  ({s['undecided']} undecided: rerun to retry)" if s["undecided"] else ""
        lines.append(f"{split:8} {s['problems']:8d} {s['solved']:7d} {cells}{extra}")
    if summary["deterministic"]:
        lines.append("deterministic agent: one attempt per problem stands for every k")
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: Path) -> None:
    """pass@k against k per split (left), solved / total problems per category (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 1.2]})
    splits = {s: v for s, v in summary["splits"].items() if s != "all" or len(summary["splits"]) > 2}
    ks = [int(k) for k in next(iter(splits.values()))["pass_at_k"]] if splits else [1]
    if len(ks) > 1:
        for split, s in splits.items():
            values = [100 * v for v in s["pass_at_k"].values()]
            left.plot(ks, values, marker="o", label=f"{split} ({s['problems']})", lw=2.5 if split == "all" else 1.5)
        left.set_xscale("log", base=2)
        left.set_xticks(ks, [str(k) for k in ks])
        left.set_xlabel("k (samples per problem)")
        left.legend(title="split (problems)")
    else:  # one sample per problem: pass@1 per split
        names = [f"{split} ({s['problems']})" for split, s in splits.items()]
        values = [100 * s["pass_at_k"]["1"] for s in splits.values()]
        left.bar(names, values, color="#2a7ab9", width=0.5)
        left.set_xlim(-0.75, len(names) - 0.25)
        for i, v in enumerate(values):
            left.text(i, v + 1.5, f"{v:.1f}%", ha="center", fontsize=9)
        left.set_xlabel("split (problems)")
    left.set_ylim(0, 100)
    left.set_ylabel(f"pass@{ks[0]} (%)" if len(ks) == 1 else "pass@k (%)")
    left.set_title(f"{summary['agent']} on {summary['problems']}")
    left.grid(alpha=0.3, axis="y")
    cats = summary["categories"]
    names = list(cats)[::-1]
    height = 0.6
    right.barh(names, [cats[c]["problems"] for c in names], height=height, color="#d9d9d9")
    right.barh(names, [cats[c]["solved"] for c in names], height=height, color="#2a7ab9")
    for i, c in enumerate(names):
        right.text(cats[c]["problems"], i, f" {cats[c]['solved']}/{cats[c]['problems']}", va="center", fontsize=8)
    right.set_xlabel("problems")
    right.set_title("solved (blue) of all problems (grey), by category")
    right.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
