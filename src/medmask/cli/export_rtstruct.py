"""``medmask export-rtstruct``: an archive's masks as a DICOM RT Structure Set on their series."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import echo, size

HELP = "Write an archive's masks as a DICOM RT Structure Set (contours) on their image series."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", type=Path, help="a .mska archive")
    parser.add_argument(
        "--source", type=Path, required=True,
        help="folder of the image series (CT/MR) the masks were made on",
    )  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, required=True, help="RTSTRUCT file to write")
    parser.add_argument(
        "-n", "--name", action="append", help="only this mask; repeatable", metavar="NAME"
    )
    parser.add_argument("--groups", action="store_true", help="also write the archive's groups")
    parser.add_argument(
        "--algorithm", default="medmask",
        help="ROI generation algorithm AUTOMATIC; 'manual' for hand-drawn masks",
    )  # fmt: skip
    parser.add_argument(
        "--interpreted-type", default="ORGAN", help="RT ROI Interpreted Type of every ROI"
    )
    parser.add_argument(
        "--contours", choices=("voxel-edges", "inset"), default="voxel-edges",
        help="along the pixels' edges (exact for centre-inside readers), or 0.49 pixel "
        "inside them (exact also for readers that round points to pixels: rt-utils)",
    )  # fmt: skip
    parser.add_argument("--series-uid", help="which series of --source, when it holds several")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")


def run(args: argparse.Namespace) -> int:
    from ..exchange.dicom.exchange import export_rtstruct  # noqa: PLC0415 - pydicom for this

    result = export_rtstruct(
        args.archive, args.source, args.output, names=args.name, groups=args.groups,
        algorithm=None if args.algorithm.lower() == "manual" else args.algorithm,
        interpreted_type=args.interpreted_type, series_uid=args.series_uid,
        overwrite=args.overwrite, contours=args.contours,
    )  # fmt: skip
    empty = f", {len(result.empty)} of them empty (no contours)" if result.empty else ""
    echo(
        f"{result.path}: RTSTRUCT, {len(result.rois)} ROIs{empty}, {result.contours} contours, "
        f"{result.points} points, {size(result.file_bytes)}"
    )
    return 0
