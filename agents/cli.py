"""Subcommands about agents: `eval` (benchmarking, agents/evaluate.py) and `train` (GRPO, agents/train.py)."""

from __future__ import annotations

import argparse

from leangym.agents import evaluate, train


def register(sub: argparse._SubParsersAction) -> None:
    evaluate.register(sub)
    train.register(sub)
