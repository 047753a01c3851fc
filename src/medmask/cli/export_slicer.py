"""``medmask export-slicer``: an archive's masks as a 3D Slicer ``.seg.nrrd``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import UsageError, echo, size

HELP = "Write an archive's masks as a 3D Slicer segmentation (.seg.nrrd), overlaps as layers."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", type=Path, help="a .mska archive")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="the .seg.nrrd file to write"
    )
    parser.add_argument(
        "-n", "--name", action="append", help="only this mask; repeatable", metavar="NAME"
    )
    parser.add_argument("--groups", action="store_true", help="also write the archive's groups")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")


def run(args: argparse.Namespace) -> int:
    from ..exchange.slicer import export_seg_nrrd  # noqa: PLC0415 - pynrrd for this command

    if not str(args.output).lower().endswith(".seg.nrrd"):
        raise UsageError("-o: the file name must end in .seg.nrrd")
    result = export_seg_nrrd(
        args.archive, args.output, names=args.name, groups=args.groups, overwrite=args.overwrite
    )
    echo(
        f"{result.path}: {len(result.segments)} segments in {result.layers} layer(s), "
        f"{size(result.file_bytes)}"
    )
    return 0
