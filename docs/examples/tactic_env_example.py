"""`leangym/LeanTactic-v0`: expand a state, step, fail, backtrack, prove; then export the search graph.

    python docs/examples/tactic_env_example.py      # writes search.graphml and search.dot here

Five Lean runs: the initial state, one expansion (every candidate in one run), the failing
tactic, and the last tactic with the verifier's check of the whole proof. Steps whose
result the expansion already holds, and the backtrack, cost none.
"""

from __future__ import annotations

import gymnasium as gym

import leangym.envs

gym.register_envs(leangym.envs)

env = gym.make("leangym/LeanTactic-v0", problems="core:test", render_mode="ansi")
search = env.unwrapped  # goto, try_tactics, graph: on the unwrapped env
obs, info = env.reset(options={"problem": "core_nt_no_solution_6x_9y"})
root = info["state_id"]
print(obs["goals"])  # ⊢ ¬∃ x y, 6 * x + 9 * y = 100

for out in search.try_tactics(root, ["rintro ⟨x, y, h⟩", "intro h", "decide"]):  # one Lean run, nothing moves
    print(f"  {out.tactic!r:20} -> {out.error.splitlines()[0] if out.failed else out.goals}")

env.step("intro h")  # answered from the expansion
obs, reward, terminated, truncated, info = env.step("exact h")  # fails: the state stays, Lean says why
print("failed:", info["error"].splitlines()[0], "| goals unchanged:", obs["goals"].endswith("⊢ False"))

search.goto(root)  # backtrack to the start, and take the other way
env.step("rintro ⟨x, y, h⟩")
obs, reward, terminated, truncated, info = env.step("omega")  # no goal left: the verifier's reward
print(env.render())
print(f"reward {reward} ({info['verdict']}), {search.graph.number_of_nodes()} states")
search.export_graph("search.graphml")
search.export_graph("search.dot")  # render with: dot -Tpng search.dot -o search.png
env.close()
