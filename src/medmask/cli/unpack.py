"""``medmask unpack``: an archive's masks back to NIfTI, one file each or one label map."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ops.unpack import unpack_archive, write_multilabel
from .common import UsageError, echo, warn

HELP = "Write an archive's masks back to NIfTI with their exact geometry."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", type=Path, help="a .mska archive")
    parser.add_argument("-o", "--output", type=Path, help="folder for <name>.nii.gz files")
    parser.add_argument(
        "-n", "--name", action="append", help="only this mask; repeatable", metavar="NAME"
    )
    parser.add_argument(
        "--multilabel", type=Path, metavar="FILE",
        help="write one multi-label NIfTI with label names instead",
    )  # fmt: skip
    parser.add_argument(
        "--overlap", choices=("error", "first", "last"), default="error",
        help="multi-label only: where masks overlap, refuse or let first/last win",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")


def run(args: argparse.Namespace) -> int:
    if (args.output is None) == (args.multilabel is None):
        raise UsageError("give either --output DIR or --multilabel FILE")
    if args.multilabel is not None:
        result = write_multilabel(
            args.archive, args.multilabel, names=args.name, overlap=args.overlap,
            overwrite=args.overwrite,
        )  # fmt: skip
        for (kept, lost), voxels in result.overlaps.items():
            warn(f"{voxels} voxels of {lost} given to {kept}")
        echo(f"{result.path}: {len(result.mapping)} labels")
        return 0
    written = unpack_archive(args.archive, args.output, names=args.name, overwrite=args.overwrite)
    echo(f"{len(written)} masks written to {args.output}")
    return 0
