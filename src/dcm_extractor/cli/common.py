"""What every ``dcm-extract`` subcommand shares (the style of docs/cli.md, as ``medmask``'s)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["PROG", "CommandParser", "echo", "positive"]

PROG = "dcm-extract"


class CommandParser(argparse.ArgumentParser):
    """argparse without abbreviated options: ``--merge-al`` is a typo, not ``--merge-all``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def echo(text: str = "") -> None:
    """A result line on stdout."""
    print(text, flush=True)


def positive(text: str) -> int:
    """A whole number of 1 or more (argparse ``type``)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
