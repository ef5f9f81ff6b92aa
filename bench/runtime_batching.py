"""How much batching and warm start save: N small proofs checked four ways, in one run.

    python bench/runtime_batching.py [--sizes 1 16 64 256] [--per-proof-max 16]

(a) one Lean process per proof (through the runtime, `max_batch=1`, as many at once as cores);
(pure) one plain Lean run over a single file holding all N theorems (no runtime at all);
(b) the runtime API, cold: the N sources batched, Lean started when the batch arrives;
(b warm) the same with a warm spare that finished starting before the batch arrived.
Printed: wall seconds and the ratios (b)/(pure) (the runtime's overhead over a bare run of
the same proofs) and (a)/(b) (what batching saves). Proofs for (a) beyond --per-proof-max
are not run: that column is extrapolated from the largest measured size and marked `~`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

from leangym.lean import FileRuntime, embedded
from leangym.lean.process import private_dir


def theorem(i: int) -> str:
    kinds = [
        f"theorem b{i} (a b : Nat) (h : a < b) : a + {i} < b + {i} := by omega",
        f"theorem b{i} (xs : List Nat) : (xs ++ [{i}]).length = xs.length + 1 := by simp",
        f"theorem b{i} : {i} * 2 = {i} + {i} := by decide",
        f"theorem b{i} (n : Nat) : n + {i} = {i} + n := Nat.add_comm _ _",
    ]
    return kinds[i % len(kinds)]


def pure_run(launcher: embedded.EmbeddedLauncher, sources: list[str]) -> float:
    """One Lean process over one file with every theorem, no runtime involved."""
    workdir = private_dir("leangym-bench-")
    path = workdir / "all.lean"
    path.write_text("\n".join(sources) + "\n")
    argv, env = launcher.command(path, ["-DmaxErrors=0"])
    t0 = time.monotonic()
    done = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True)
    wall = time.monotonic() - t0
    assert done.returncode == 0, done.stdout[-2000:]
    return wall


def timed_check(runtime: FileRuntime, sources: list[str]) -> float:
    t0 = time.monotonic()
    results = runtime.check(sources, timeout=300)
    wall = time.monotonic() - t0
    assert all(r.ok for r in results), [r for r in results if not r.ok][:2]
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--per-proof-max", type=int, default=16, help="largest N for which (a) is really run")
    args = ap.parse_args()
    launcher = embedded.locate()
    cores = os.cpu_count() or 1
    print(f"embedded Lean {launcher.version}, {cores} cores; wall seconds\n")
    columns = ["N", "(a) per proof", "pure", "(b) cold", "(b) warm", "(b)/pure", "warm/pure", "(a)/(b warm)"]
    widths = [5, 14, 7, 9, 9, 9, 10, 13]
    header = " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    print(header)
    per_proof_rate = None
    for n in args.sizes:
        sources = [theorem(i) for i in range(n)]
        pure = pure_run(launcher, sources)
        with FileRuntime(launcher, warm=0) as cold_rt:
            cold = timed_check(cold_rt, sources)
        with FileRuntime(launcher, warm=1) as warm_rt:
            warm_rt.prewarm()
            deadline = time.monotonic() + 300
            while not warm_rt.warm_spares():
                if time.monotonic() > deadline:
                    raise SystemExit("no warm spare came up: another leangym process holds the spare slots")
                time.sleep(0.2)
            warm = timed_check(warm_rt, sources)
        if n <= args.per_proof_max:
            with FileRuntime(launcher, warm=0, max_batch=1) as single_rt:
                per_proof = timed_check(single_rt, sources)
            per_proof_rate = per_proof / n
            a_text = f"{per_proof:14.1f}"
        else:
            per_proof = (per_proof_rate or float("nan")) * n
            a_text = f"{'~' + format(per_proof, '.0f'):>14}"
        ratios = f"{cold / pure:9.2f} {warm / pure:10.2f} {per_proof / warm:13.1f}"
        print(f"{n:>5} {a_text} {pure:7.1f} {cold:9.1f} {warm:9.1f} {ratios}", flush=True)


if __name__ == "__main__":
    main()
