"""Verification on Ray against the local verifier: proofs per second, and what Ray adds per proof.

    python bench/ray_throughput.py [--n 128] [--actors 1 2]

Starts a local Ray instance (`ray.init(num_cpus=cores)`), then verifies the same kind of new
small proofs (the mix of bench/runtime_batching.py) with the local verifier and with a
`RayVerifier` of 1 and 2 actors, each warm (its Lean session up) before it is timed. A second
pass over the same proofs measures the caches (the local verifier's; the actors'). Printed:
seconds, proofs/s, and the ratio to the local verifier. On a 2-core machine the cores bound
any speed-up; the point is the overhead: Ray's cost per proof next to Lean's.
"""

from __future__ import annotations

import argparse
import os
import time

import ray
from runtime_batching import problem_and_proof  # the same small proofs (bench/ is on sys.path)

from leangym.lean_project import get_runtime
from leangym.rewards import Problem, Verifier
from leangym.rewards.distributed import RayVerifier


def proofs(n: int, salt: int) -> list[tuple[Problem, str]]:
    return [problem_and_proof(i) for i in range(salt, salt + n)]


def timed(verifier, pairs) -> float:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    verdicts = verifier.verify_batch(pairs)
    wall = time.monotonic() - t0
    assert all(v.proved for v in verdicts), [v for v in verdicts if not v.proved][:2]
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    print(f"{args.n} new small proofs a batch, {os.cpu_count()} cores\n")
    print(f"{'':28} {'seconds':>8} {'proofs/s':>9} {'vs local':>9} {'cached s':>9}")
    salt = 0
    with Verifier(get_runtime("embedded")) as local:
        timed(local, proofs(4, 10**6))  # the session is up
        base = timed(local, proofs(args.n, salt))
        cached = timed(local, proofs(args.n, salt))
        print(f"{'local verifier':28} {base:8.2f} {args.n / base:9.1f} {1.0:9.2f} {cached:9.3f}", flush=True)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    for n_actors in args.actors:
        salt += args.n
        with RayVerifier("local", actors=n_actors, shard_size=16) as remote:
            remote.prewarm()
            timed(remote, proofs(4 * n_actors, 2 * 10**6))  # every actor has answered
            wall = timed(remote, proofs(args.n, salt))
            cached = timed(remote, proofs(args.n, salt))
            label = f"Ray, {n_actors} actor{'s' if n_actors > 1 else ''}"
            print(f"{label:28} {wall:8.2f} {args.n / wall:9.1f} {base / wall:9.2f} {cached:9.3f}", flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
