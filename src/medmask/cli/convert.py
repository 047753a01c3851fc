"""``medmask convert``: an archive (medmask 0.1.3's, say) copied into the current format."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..codecs import DEFAULT_LEVEL
from ..files.archive import convert_legacy_archive
from .common import echo, level

HELP = "Copy an archive (e.g. medmask 0.1.3's) into the current format."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="a medmask 0.1.3 (or any) archive")
    parser.add_argument("-o", "--output", type=Path, required=True, help="new .mska file")
    parser.add_argument("--level", type=level, default=DEFAULT_LEVEL, help="19 smallest, 3 faster")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")


def run(args: argparse.Namespace) -> int:
    count = convert_legacy_archive(
        args.source, args.output, level=args.level, overwrite=args.overwrite
    )
    echo(f"{args.output}: {count} masks converted from {args.source}")
    return 0
