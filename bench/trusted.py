"""What the trusted judge costs, measured in one run against the untrusted check alone.

    python bench/trusted.py [--proofs 64]

Before the judge, a verdict was read off the untrusted Lean run's messages; now the judge
replays every accepted proof through the kernel in a second process (`lean_project/kernel.py`).

1. Cold: the first verdict of one small proof with no warm Lean process, wall seconds and peak
   private memory of the Lean processes: the untrusted check alone (`runtime.check`: the old
   verdict path) against a verdict with the judge (`Verifier.verify_batch`).
2. Warm: `--proofs` new small proofs (the mix of bench/runtime_batching.py), steady state: the
   untrusted check alone against `verify_batch` with the judge (the same proofs' twins, so
   no answer is cached), the judge working beside the check (each proof as soon as the check has
   answered for it) and after it (as before), and the judge's resident memory after the run.
3. Large: one proof whose term is large (`grind` on `core_nt_digit_sum_mod9`, a ~2 MB export):
   the untrusted check without and with the export of its declarations, and the judge's replay
   (its reference already elaborated). The export once copied its whole table for every entry
   (quadratic: 25 s of export for this proof); this is where that would show again.

Ratios are printed beside each pair; every number comes from this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

from runtime_batching import problem_and_proof  # the same small proofs (bench/ is on sys.path)
from session import SMALL, PeakSampler, row, timed

from leangym.envs.problems import load_problems
from leangym.lean_project import SourceResult, get_runtime
from leangym.lean_project.kernel import KernelCheck, name_parts, reference_source
from leangym.lean_project.toolchain import locate
from leangym.rewards import Problem, Verifier

PROBLEM = Problem("small", SMALL.split(":= by")[0] + ":= by")


def cold() -> None:
    print("1. cold: first verdict of one small proof, no warm process")
    with PeakSampler() as peak:
        runtime = get_runtime("embedded")
        base = timed(lambda: runtime.check([SMALL]))
        runtime.close()
    row("untrusted check alone (the old verdict path)", base, peak.peak)
    with PeakSampler() as peak:
        runtime = get_runtime("embedded")
        verdicts: list = []
        wall = timed(lambda: verdicts.append(Verifier(runtime).verify(PROBLEM, "  omega")))
        runtime.close()
    assert verdicts[0].proved, verdicts
    row("verdict with the judge", wall, peak.peak, base)


def warm(n: int) -> None:
    print(f"\n2. {n} new small proofs, steady state")
    pairs = [problem_and_proof(i) for i in range(3 * n + 4)]
    runtime = get_runtime("embedded")
    verifier = Verifier(runtime)
    verifier.verify_batch(pairs[-4:])  # the session and the judge are up and have answered
    sources = [f"{p.header}{p.formal_statement}\n{b}" for p, b in pairs[n : 2 * n]]
    base = timed(lambda: runtime.check(sources))
    verdicts: list = []
    wall = timed(lambda: verdicts.extend(verifier.verify_batch(pairs[:n])))
    # The judge after the whole check, as before `LeanRuntime.check_judged` overlapped them: the runtime
    # reports the results only once the batch is over.
    check_each = runtime.check_each

    def after_the_check(sources: list[str], on_result: Callable, **options: Any) -> list[SourceResult]:
        results = check_each(sources, lambda i, result: None, **options)
        for i, result in enumerate(results):
            on_result(i, result)
        return results

    runtime.check_each = after_the_check
    after = timed(lambda: verdicts.extend(verifier.verify_batch(pairs[2 * n : 3 * n])))
    assert all(v.proved for v in verdicts), [v for v in verdicts if not v.proved][:1]
    judge_before = runtime.judge.pool.answered()
    judge_mb = runtime.judge.health().memory_mb  # resident after the run: the judge's own cost
    runtime.close()
    row("untrusted check alone", base)
    row("verify_batch, the judge after the check", after, None, base)
    row("verify_batch, the judge beside the check", wall, None, base)
    print(f"  {'':<46} ({wall / n * 1000:.0f} ms a proof; judge requests so far {judge_before})")
    print(f"  the judge process after the run: {judge_mb / 1024:.2f} GB resident")


def large() -> None:
    print("\n3. one large proof: grind on core_nt_digit_sum_mod9")
    problem = next(p for p in load_problems("core") if p.name == "core_nt_digit_sum_mod9")
    source = f"{problem.header}{problem.formal_statement}\n  grind\n"
    runtime = get_runtime("embedded")
    runtime.check(["theorem warm : True := trivial"])
    base = timed(lambda: runtime.check([source]))
    results: list[SourceResult] = []
    wall = timed(lambda: results.extend(runtime.check([source], export=True)))
    constants = results[0].constants
    assert constants is not None, results
    size = len(json.dumps(constants)) / 1e6
    item = KernelCheck(reference_source(problem.header, problem.formal_statement), name_parts(problem.name), constants)
    runtime.kernel_check([item])  # the judge elaborates the reference once
    answers: list = []
    replay = timed(lambda: answers.extend(runtime.kernel_check([item])))
    assert answers[0].status == "ok", answers
    runtime.close()
    row("untrusted check", base)
    row(f"untrusted check and export ({size:.1f} MB)", wall, None, base)
    row("the judge's replay", replay, None, base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proofs", type=int, default=64)
    ap.add_argument("--only", choices=["cold", "warm", "large"])
    args = ap.parse_args()
    print(f"embedded Lean {locate().version}, {os.cpu_count()} cores\n")
    t0 = time.monotonic()
    if args.only in (None, "cold"):
        cold()
    if args.only in (None, "warm"):
        warm(args.proofs)
    if args.only in (None, "large"):
        large()
    print(f"\n(total {time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
