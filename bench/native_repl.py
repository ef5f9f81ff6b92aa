"""Proofs per second on a native Lean REPL: header reuse against one REPL process per proof.

    python bench/native_repl.py --problems minif2f.jsonl [--limit 64] [--workers 2] [--proof sorry]
    python bench/native_repl.py --replay     # smoke test of this script on recorded answers: NOT a measurement

Both runs check the same miniF2F-style sources (`header` + `formal_statement` + proof) with the
same pool of `--workers` REPL processes; the only difference is how long a process lives:

* header reuse (the default runtime): each process elaborates a header (`import Mathlib`, the
  `open`s, options) once, then checks every proof that shares it on top of that environment;
* one process per proof (`max_requests=2`): every proof starts a REPL, elaborates the header,
  checks the proof and ends it — the cost of running `lean` on a file per proof.

It prints proofs/s for each and their ratio, and checks that both runs gave the same verdicts.
It needs a native Lean with the REPL built (and Mathlib for miniF2F): see docs/native.md.
`--replay` runs the same code on the recorded-transcript double (tests/repl_replay.py), which
replays Lean answers from the REPL's test suite: it shows the script works, and its numbers
say nothing about Lean.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from leangym.lean_project.pool import ReplCommand, ReplPool
from leangym.lean_project.repl_runtime import ReplRuntime, native_repl_runtime
from leangym.lean_project.types import LeanRuntimeError, SourceResult

ROOT = Path(__file__).resolve().parent.parent


def sources_from(path: Path, limit: int, proof: str) -> list[str]:
    """`header` + `formal_statement` + `proof` for the first `limit` problems of a JSONL file."""
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            statement = row["formal_statement"].rstrip()
            out.append(f"{row.get('header', '')}{statement}\n  {proof}")
            if len(out) == limit:
                break
    return out


def replay_sources(limit: int) -> list[str]:
    """Three miniF2F proofs Lean accepted in the REPL's tests (Mathlib/test/H20231020), repeated."""
    sys.path.insert(0, str(ROOT / "tests"))
    import repl_replay

    path = repl_replay.TRANSCRIPTS / "Mathlib/test/H20231020.in"
    header, *bodies = [json.loads(b)["cmd"] for b in repl_replay.requests_of(path.open(encoding="utf-8"))]
    return [f"{header}\n{bodies[i % len(bodies)]}" for i in range(limit)]


def make_runtime(args: argparse.Namespace, max_requests: int) -> ReplRuntime:
    if args.replay:
        import repl_replay

        pool = ReplPool(
            ReplCommand(repl_replay.argv()), workers=args.workers, max_requests=max_requests, machine_slots=False
        )
        return ReplRuntime(pool, version="recorded transcripts (not Lean)", timeout=args.timeout)
    return native_repl_runtime(workers=args.workers, timeout=args.timeout, max_requests=max_requests)


def timed_check(lean: ReplRuntime, sources: Sequence[str], label: str, chunk: int) -> tuple[float, list[SourceResult]]:
    """Check `sources` in chunks (for the progress bar), starting from cold processes; wall seconds."""
    results: list[SourceResult] = []
    started = time.perf_counter()
    with tqdm(total=len(sources), desc=label, unit="proof", file=sys.stderr) as bar:
        for k in range(0, len(sources), chunk):
            results += lean.check(sources[k : k + chunk])
            bar.update(len(sources[k : k + chunk]))
    return time.perf_counter() - started, results


def verdict(r: SourceResult) -> str:
    return r.status if r.status != "ok" else ("rejected" if r.has_errors else "accepted")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=Path, help="JSONL with `header` and `formal_statement` (miniF2F)")
    parser.add_argument("--limit", type=int, default=64, help="how many problems")
    parser.add_argument("--proof", default="sorry", help="the proof appended to each statement (after `:= by`)")
    parser.add_argument("--workers", type=int, default=2, help="REPL processes in both runs")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per proof")
    parser.add_argument("--replay", action="store_true", help="use the recorded-transcript double: NOT a measurement")
    args = parser.parse_args(argv)

    if args.replay:
        sources = replay_sources(args.limit)
        print("REPLAY DOUBLE: recorded answers, not Lean — this checks the script, it measures nothing.")
    elif args.problems is None:
        parser.error("--problems FILE is needed (a miniF2F JSONL with `header` and `formal_statement`)")
    else:
        sources = sources_from(args.problems, args.limit, args.proof)
    try:
        reuse_lean, fresh_lean = make_runtime(args, max_requests=1_000_000), make_runtime(args, max_requests=2)
    except LeanRuntimeError as e:
        print(f"this benchmark needs a native Lean with the REPL built: {e}", file=sys.stderr)
        return 2
    with reuse_lean, fresh_lean:
        print(f"{len(sources)} proofs, {args.workers} worker(s), runtime {reuse_lean.version}")
        chunk = max(1, 4 * args.workers)  # four sources a worker per call
        reuse_s, reuse = timed_check(reuse_lean, sources, "header reuse", chunk)
        fresh_s, fresh = timed_check(fresh_lean, sources, "one process per proof", chunk)
    mismatches = sum(verdict(a) != verdict(b) for a, b in zip(reuse, fresh, strict=True))
    counts = {v: [verdict(r) for r in reuse].count(v) for v in ("accepted", "rejected", "timeout", "error")}
    print(f"verdicts (header reuse): {counts}; runs disagree on {mismatches}")
    tag = "[REPLAY DOUBLE, not Lean] " if args.replay else ""
    print(f"{tag}header reuse:           {len(sources) / reuse_s:8.2f} proofs/s ({reuse_s:.1f} s)")
    print(f"{tag}one process per proof: {len(sources) / fresh_s:8.2f} proofs/s ({fresh_s:.1f} s)")
    print(f"{tag}ratio (header reuse / one process per proof): {fresh_s / reuse_s:.1f}x")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
