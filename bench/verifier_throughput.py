"""Verifier throughput on the embedded runtime: N correct proofs, cold, warm and cached, in one run.

    python bench/verifier_throughput.py [--n 200]

cold:   a new verifier; the batch waits for the session's start-up (~7 s on 2 cores).
warm:   another N proofs on the running session (what a training loop sees from its
        second step on).
cached: the first N again: answered from the verifier's cache, no Lean run (a GRPO group
        that repeats samples).
Printed: wall seconds and proofs per second for each, and that every proof was accepted.
"""

from __future__ import annotations

import argparse
import time

from leangym.rewards import Problem, Verifier


def proofs(n: int, salt: int) -> list[tuple[Problem, str]]:
    """N distinct correct (problem, proof body) pairs in four styles: omega, simp, decide, a term."""
    kinds = [
        ("(a b : Nat) (h : a < b) : a + {k} < b + {k} := by", "  omega"),
        ("(xs : List Nat) : (xs ++ [{k}]).length = xs.length + 1 := by", "  simp"),
        (": {k} * 2 = {k} + {k} := by", "  decide"),
        ("(n : Nat) : n + {k} = {k} + n :=", " Nat.add_comm _ _"),
    ]
    pairs = []
    for i in range(n):
        statement, body = kinds[i % len(kinds)]
        k = salt * n + i
        name = f"bench_{k}"
        pairs.append((Problem(name, f"theorem {name} " + statement.format(k=k)), body))
    return pairs


def timed(verifier: Verifier, pairs: list[tuple[Problem, str]]) -> float:
    t0 = time.monotonic()
    verdicts = verifier.verify_batch(pairs)
    wall = time.monotonic() - t0
    bad = [v for v in verdicts if not v.proved]
    assert not bad, bad[:2]
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="proofs per batch (default 200)")
    args = ap.parse_args()
    first, second = proofs(args.n, 0), proofs(args.n, 1)
    with Verifier("embedded") as verifier:
        runtime = verifier.runtime
        print(f"embedded Lean {runtime.version}; {args.n} proofs per batch\n")
        print(f"{'':8} {'seconds':>8} {'proofs/s':>9}")
        cold = timed(verifier, first)
        print(f"{'cold':8} {cold:8.1f} {args.n / cold:9.1f}", flush=True)
        warm = timed(verifier, second)
        print(f"{'warm':8} {warm:8.1f} {args.n / warm:9.1f}", flush=True)
        cached = timed(verifier, first)
        print(f"{'cached':8} {cached:8.3f} {args.n / cached:9.0f}")


if __name__ == "__main__":
    main()
