"""Placeholder while the train subcommand is being built."""


def register(sub) -> None:
    return None
