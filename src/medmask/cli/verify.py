"""``medmask verify``: every checksum checked and every mask decoded."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..ops.inspection import archives_in, verify_archive
from .common import echo, note

HELP = "Check every checksum and decode every mask; exit 1 if anything is damaged."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "archives", nargs="+", type=Path, metavar="ARCHIVE",
        help="archives, or folders: every .mska under each",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    damaged = 0
    archives = archives_in(args.archives)
    for path in archives:
        result = verify_archive(path)
        for line in result.notes:
            note(f"{path}: {line}")
        if result.ok:
            echo(f"ok       {path} ({result.checked} masks)")
            continue
        damaged += 1
        echo(f"DAMAGED  {path}")
        for line in result.damaged:
            echo(f"  {line}")
    if damaged:
        print(f"{damaged} of {len(archives)} archives damaged", file=sys.stderr)
        return 1
    return 0
