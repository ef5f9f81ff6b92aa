"""Placeholder while the evaluate subcommand is being built."""


def register(sub) -> None:
    return None
