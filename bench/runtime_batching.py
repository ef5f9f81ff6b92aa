"""What isolation costs and what batching saves: N small proofs checked several ways, in one run.

    python bench/runtime_batching.py [--sizes 1 16 64 256] [--per-proof-max 2] [--repeat 3]

(pure) one plain `lean --json` run over a single file holding all N theorems: no isolation
       (each theorem sees every one before it), the cheapest Lean can do (the fastest of
       `--repeat` runs: this machine's timings vary by seconds from run to run);
(a)    one Lean process per proof (`FileRuntime(max_batch=1)`, as many at once as cores);
(b)    a one-shot batch (`FileRuntime`): the session program over a request file, each proof
       elaborated from the imports alone;
(s)    a warm session (`get_runtime("embedded")`): the same program, started before the batch.

Printed: wall seconds, and two ratios. `(b)/pure` is a whole run against a whole run: it
includes the session program's fixed start-up (its own elaboration and `import
Lean.Elab.Frontend`). `per proof` compares what one more proof costs: the session's seconds per
proof against the slope of the pure runs ((pure(N) - pure(smallest N)) / (N - smallest N)), the
cost of isolation itself. Proofs for (a) beyond --per-proof-max are not run: that column is
extrapolated from the largest measured size and marked `~`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

from leangym.lean_project import FileRuntime, LeanRuntime, get_runtime, toolchain
from leangym.lean_project.process import private_dir
from leangym.rewards import Problem


def theorem(i: int) -> str:
    kinds = [
        f"theorem b{i} (a b : Nat) (h : a < b) : a + {i} < b + {i} := by omega",
        f"theorem b{i} (xs : List Nat) : (xs ++ [{i}]).length = xs.length + 1 := by simp",
        f"theorem b{i} : {i} * 2 = {i} + {i} := by decide",
        f"theorem b{i} (n : Nat) : n + {i} = {i} + n := Nat.add_comm _ _",
    ]
    return kinds[i % len(kinds)]


def problem_and_proof(i: int) -> tuple[Problem, str]:
    """`theorem(i)` as the verifier takes it: the statement (a `Problem`) and the proof body."""
    statement, _, proof = theorem(i).partition(":= ")
    if proof.startswith("by "):
        return Problem(f"b{i}", statement + ":= by"), "  " + proof[3:]
    return Problem(f"b{i}", statement + ":="), " " + proof


def pure_run(launcher: toolchain.EmbeddedLauncher, sources: list[str]) -> float:
    """One Lean process over one file with every theorem, no runtime involved."""
    workdir = private_dir("leangym-bench-")
    path = workdir / "all.lean"
    path.write_text("\n".join(sources) + "\n")
    argv = [str(launcher.node), str(launcher.glue), "--json", "-DmaxErrors=0", str(path)]
    env = {**os.environ, "LEAN_PATH": str(launcher.library)}
    t0 = time.monotonic()
    done = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True)
    wall = time.monotonic() - t0
    assert done.returncode == 0, done.stdout[-2000:]
    return wall


def timed_check(runtime: LeanRuntime, sources: list[str]) -> float:
    t0 = time.monotonic()
    results = runtime.check(sources, timeout=300)
    wall = time.monotonic() - t0
    assert all(r.error_free for r in results), [r for r in results if not r.error_free][:2]
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--per-proof-max", type=int, default=2, help="largest N for which (a) is really run")
    ap.add_argument("--repeat", type=int, default=3, help="pure runs per size; the fastest counts")
    args = ap.parse_args()
    launcher = toolchain.locate()
    print(f"embedded Lean {launcher.version}, {os.cpu_count()} cores; wall seconds\n")
    columns = ["N", "(a) per proof", "pure", "(b) one-shot", "(s) session", "(b)/pure", "per proof (s)/pure"]
    widths = [5, 14, 7, 13, 12, 9, 19]
    print(" ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    per_proof_rate = None
    first: tuple[int, float] | None = None
    with get_runtime("embedded") as session:
        timed_check(session, [theorem(10_000)])  # started and warm before any measured batch
        for n in args.sizes:
            sources = [theorem(i) for i in range(n)]
            pure = min(pure_run(launcher, sources) for _ in range(args.repeat))
            with FileRuntime(launcher, warm=0) as oneshot:
                cold = timed_check(oneshot, sources)
            warm = timed_check(session, sources)  # the runtime keeps no cache: every source is elaborated
            if n <= args.per_proof_max:
                with FileRuntime(launcher, warm=0, max_batch=1) as single:
                    per_proof = timed_check(single, sources)
                per_proof_rate = per_proof / n
                a_text = f"{per_proof:14.1f}"
            else:
                per_proof = (per_proof_rate or float("nan")) * n
                a_text = f"{'~' + format(per_proof, '.0f'):>14}"
            if first is None:
                first = (n, pure)
                marginal = "—"
            else:
                slope = (pure - first[1]) / (n - first[0])
                marginal = f"{(warm / n) / slope:.2f}" if slope > 0 else "—"
            print(
                f"{n:>5} {a_text} {pure:7.1f} {cold:13.1f} {warm:12.2f} {cold / pure:9.2f} {marginal:>19}", flush=True
            )


if __name__ == "__main__":
    main()
