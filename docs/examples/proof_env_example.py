"""`leangym/LeanProof-v0` in a GRPO-style loop: N proofs of one problem, one Lean batch per step.

    python docs/examples/proof_env_example.py

A real trainer samples the N proofs from its policy; here they are fixed, one right, one
wrong, one hacked, so the rewards are easy to read.
"""

from __future__ import annotations

import gymnasium as gym

import leangym.envs  # registers the ids (Gymnasium 1.x loads no plugins by itself)

gym.register_envs(leangym.envs)

PROBLEM = "core_nt_linear_congruence"  # theorem … (n : Nat) (h₀ : 3 * n % 7 = 1) : n % 7 = 5 := by
PROOFS = ("\n  omega", "\n  simp", "\n  sorry", "\n  exact h₀")

envs = gym.make_vec("leangym/LeanProof-v0", num_envs=len(PROOFS), problems="core:test")  # LeanProofVectorEnv
obs, info = envs.reset(seed=0, options={"problem": PROBLEM})  # a GRPO group: one problem for every env
print(obs["formal_statement"][0])
obs, rewards, terminated, truncated, info = envs.step(PROOFS)  # one Lean run for the four proofs
for proof, reward, verdict, reasons in zip(PROOFS, rewards, info["verdict"], info["reasons"], strict=True):
    print(f"{reward:.0f}  {verdict:9s} {','.join(reasons) or '-':22s} {proof.strip()}")
envs.close()
