"""Which project files one environment step runs through, and which calls cross a layer boundary.

    python bench/step_path.py [--env proof|tactic]

The measurement behind docs/ARCHITECTURE.md's "path of one reward": one warm step (Lean
started, the problem seen before, the proof's text new, so no cache answers it) is profiled on
every thread (`sys.setprofile` and `threading.setprofile`). It prints the project files that ran,
with the threads they ran on, and every call from one layer into another
(envs > rewards > lean_project), down or up, by caller file and callee function.
A count, not a timing: it is the same on any machine.
"""

from __future__ import annotations

import argparse
import collections
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import gymnasium as gym

import leangym.envs  # noqa: F401 - registers the environments

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"envs": 3, "rewards": 2, "lean_project": 1}  # a higher layer may call a lower one
ENVS = {"proof": "leangym/LeanProof-v0", "tactic": "leangym/LeanTactic-v0"}
WARM_UP = ("decide", "omega", "simp")  # one of them proves the toy set's first problem


def project_file(path: str) -> str | None:
    """`path` relative to the repository, when it is the project's own code (not a test, not a library)."""
    p = Path(path)
    if not p.is_absolute() or ".venv" in p.parts or "tests" in p.parts:
        return None
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return None


class StepProfile:
    """What one profiled call did: files by thread, and the calls that crossed a layer boundary."""

    def __init__(self) -> None:
        self.files: dict[str, set[str]] = collections.defaultdict(set)
        self.down: collections.Counter[tuple[str, str]] = collections.Counter()
        self.up: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or (callee := project_file(frame.f_code.co_filename)) is None:
            return
        caller = project_file(frame.f_back.f_code.co_filename) if frame.f_back is not None else None
        with self._lock:
            self.files[callee].add(threading.current_thread().name)
            if caller is None:
                return
            a, b = LAYERS.get(caller.split("/")[0]), LAYERS.get(callee.split("/")[0])
            if a is not None and b is not None and a != b:
                (self.down if a > b else self.up)[(caller, f"{callee}:{frame.f_code.co_name}")] += 1

    def report(self) -> str:
        main = sum("MainThread" in threads for threads in self.files.values())
        lines = [f"{len(self.files)} project files ran ({main} on the main thread):"]
        lines += [f"  {f}  [{', '.join(sorted(t))}]" for f, t in sorted(self.files.items())]
        for name, calls in (("down", self.down), ("up", self.up)):
            lines.append(f"calls {name} a layer: {sum(calls.values())}")
            lines += [f"  {n:>3}  {a} -> {b}" for (a, b), n in sorted(calls.items())]
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", choices=sorted(ENVS), default="proof")
    args = parser.parse_args(argv)

    env = gym.make(ENVS[args.env], problems="toy")
    proof = None
    for tactic in WARM_UP:  # warm: Lean started, the problem's statement and reference known
        env.reset(seed=0)
        if env.step(tactic)[1] == 1.0:
            proof = tactic
            break
    if proof is None:
        print(f"none of {WARM_UP} proves the toy set's first problem: nothing to measure", file=sys.stderr)
        return 1
    env.reset(seed=0)
    profile = StepProfile()
    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        reward = env.step(f"{proof} ")[1]  # the same proof, new text: no cache answers it
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    env.close()
    print(f"one warm {ENVS[args.env]} step, reward {reward}")
    print(profile.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
