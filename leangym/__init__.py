"""lean-gym: reinforcement-learning environments for formal proof in Lean 4.

The Lean kernel's verdict is the reward. Sub-packages, one concern each:

* `leangym.lean_project` — running Lean (embedded WebAssembly build, native toolchain, REPL)
* `leangym.rewards`      — kernel-checked, hack-resistant verification and the binary reward
* `leangym.envs`         — Gymnasium environments and problem sets
* `leangym.agents`       — GRPO training, baselines and evaluation
"""

__version__ = "0.1.0"
