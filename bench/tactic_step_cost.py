"""Cost of one tactic step of `LeanTactic-v0` on a runtime, for the ways of reading a proof state.

    python bench/tactic_step_cost.py [--runtime embedded] [--reps 3]

Every way re-elaborates the statement with the state's tactics plus the new one (no Lean
process outlives a check on the embedded runtime); they differ in how the goals come back
and in how many candidates share a Lean run:

* `unsolved-goals` (what `ElaborationTactics` does): the goals are read from the one
  "unsolved goals" error Lean reports at the `by`;
* `trace_state`: the block ends with `trace_state` and `all_goals sorry`, the goals come
  back in an information message;
* `batch-of-8`: `unsolved-goals` with 8 candidate tactics for one state in one check
  (`try_tactics`), reported per candidate;
* `after-pause`: `unsolved-goals`, each step taken 25 s after the previous one, so the warm
  spare Lean that the runtime starts after every check is ready (an agent that thinks slowly);
* `cold`: `unsolved-goals` on a runtime with no warm spare (every run starts Lean).

Back-to-back steps wait for the spare's start-up, which is most of their cost. It prints
the minimum and median seconds of each, and the ratio of medians to `unsolved-goals`, all
measured in this one run, with the machine's load (other Lean jobs queue on the same cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from leangym.envs.tactic_backend import ElaborationTactics, TacticState, _layout
from leangym.lean import get_runtime

HEADER = "set_option autoImplicit false"
STATEMENT = "theorem bench_step (n : Nat) : 0 + n = n ∧ n + 0 = n := by sorry"
PREFIX = ("constructor",)
CANDIDATES = ["simp", "omega", "rfl", "exact Nat.zero_add n", "induction n", "decide", "simp_all", "intro h"]


def _state() -> TacticState:
    return TacticState((), "", HEADER, STATEMENT, PREFIX)


def _time(fn) -> float:
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", default="embedded")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with get_runtime(args.runtime) as lean:
        lean.prewarm()
        time.sleep(25)  # let the first spare come up, as in a running session
        for rep in range(args.reps):
            tactic = CANDIDATES[rep % len(CANDIDATES)]
            fresh = ElaborationTactics(lean)  # an empty cache: every call reaches Lean
            results.setdefault("unsolved-goals", []).append(_time(lambda: fresh.apply(_state(), tactic)))  # noqa: B023
            traced = _layout(HEADER, STATEMENT, (*PREFIX, tactic, "trace_state", "all_goals sorry"), None).source
            results.setdefault("trace_state", []).append(_time(lambda: lean.check([traced])))  # noqa: B023
        batch = ElaborationTactics(lean)
        results["batch-of-8"] = [_time(lambda: batch.apply_many(_state(), CANDIDATES)) / len(CANDIDATES)]
        for rep in range(args.reps):
            time.sleep(25)
            fresh = ElaborationTactics(lean)
            tactic = CANDIDATES[rep % len(CANDIDATES)]
            results.setdefault("after-pause", []).append(_time(lambda: fresh.apply(_state(), tactic)))  # noqa: B023
    with get_runtime(args.runtime, warm=0) as cold:
        results["cold"] = [_time(lambda: ElaborationTactics(cold).apply(_state(), "simp"))]
    base = statistics.median(results["unsolved-goals"])
    print(f"runtime {args.runtime}, {args.reps} reps, load average {os.getloadavg()[0]:.1f}; seconds per tactic step")
    print(f"  {'method':15s} {'min':>6s} {'median':>7s}  median/unsolved-goals  (every run)")
    for name, secs in results.items():
        med = statistics.median(secs)
        runs = ", ".join(f"{s:.1f}" for s in secs)
        print(f"  {name:15s} {min(secs):6.1f} {med:7.1f}  x{med / base:4.2f}  ({runs})")


if __name__ == "__main__":
    main()
