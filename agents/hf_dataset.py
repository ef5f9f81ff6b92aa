"""Problem sets as Hugging Face `datasets.Dataset`s, in the shape TRL's trainers read.

    from leangym.agents.hf_dataset import problems_dataset
    from leangym.rewards import lean_reward
    from trl import GRPOConfig, GRPOTrainer

    ds = problems_dataset("core:valid")                      # prompt + the problem's columns
    trainer = GRPOTrainer(model=..., reward_funcs=[lean_reward], train_dataset=ds, args=GRPOConfig(...))

`prompt` is a string (`style="plain"`: the Lean file up to the proof, the model continues it)
or, with `style="conversational"`, one user message asking for the proof in a ```lean4 block
(TRL applies the model's chat template). The other columns (`name`, `formal_statement`,
`header`, `informal_statement`, `split`) reach every reward function as keyword arguments, one
value per completion, which is what `leangym.rewards.lean_reward` verifies against. Needs the
`[trl]` extra (`datasets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from leangym.agents.prompts import chat_request, render_prompt
from leangym.rewards.problem import Problem

if TYPE_CHECKING:
    from datasets import Dataset

Style = Literal["plain", "conversational"]


def problems_dataset(problems: str | Sequence[Problem], style: Style = "plain") -> Dataset:
    """One row per problem: `prompt` in TRL's `style`, and the columns `lean_reward` reads."""
    from datasets import Dataset

    if isinstance(problems, str):
        from leangym.envs.problems import load_problems

        problems = load_problems(problems)
    if style not in ("plain", "conversational"):
        raise ValueError(f"unknown prompt style {style!r}: choose 'plain' or 'conversational'")
    rows = []
    for p in problems:
        prompt = render_prompt(p, "plain") if style == "plain" else [{"role": "user", "content": chat_request(p)}]
        rows.append(
            {
                "prompt": prompt,
                "name": p.name,
                "formal_statement": p.formal_statement,
                "header": p.header,
                "informal_statement": p.informal_statement,
                "split": p.split or "",
            }
        )
    return Dataset.from_list(rows)
