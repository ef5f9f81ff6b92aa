"""The `leangym` command. Each sub-package adds its own subcommands from its `cli.py`.

leangym setup | doctor | check        (leangym.lean_project.cli)
leangym verify                        (leangym.rewards.cli)
leangym problems                      (leangym.envs.cli)
leangym eval | train                  (leangym.agents.cli)
leangym serve                         (leangym.server_cli)
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import leangym

# Modules whose `register(subparsers)` adds subcommands, in help order.
_PROVIDERS = (
    "leangym.lean_project.cli",
    "leangym.rewards.cli",
    "leangym.envs.cli",
    "leangym.agents.cli",
    "leangym.server_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leangym",
        description="Reinforcement learning for formal proof in Lean 4: the Lean kernel's verdict is the reward.",
    )
    parser.add_argument("--version", action="version", version=f"leangym {leangym.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _PROVIDERS:  # a missing one is an error, not a silent gap
        importlib.import_module(module).register(sub)
    return parser


class CommandError(Exception):
    """A command cannot go on, for a reason its user can act on (a file, a flag): said in one line."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; what keeps it from running (no Lean, no server or a server's refusal, a bad
    file or setting) is one `error:` line and exit 2."""
    from leangym.client import ServerError
    from leangym.lean_project.types import LeanRuntimeError
    from leangym.rewards.adapters import VerifierUnavailable

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CommandError, LeanRuntimeError, VerifierUnavailable, ServerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
