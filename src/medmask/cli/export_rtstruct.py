"""``medmask export-rtstruct``: an archive's masks as a DICOM RT Structure Set on their series."""

from __future__ import annotations

import argparse

from .common import add_export_arguments, echo, size

HELP = "Write an archive's masks as a DICOM RT Structure Set (contours) on their image series."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_export_arguments(parser, "RTSTRUCT file to write")
    parser.add_argument(
        "--algorithm", default="medmask",
        help="ROI generation algorithm AUTOMATIC; 'manual' for hand-drawn masks",
    )  # fmt: skip
    parser.add_argument(
        "--interpreted-type", default="ORGAN", help="RT ROI Interpreted Type of every ROI"
    )
    parser.add_argument(
        "--contours", choices=("voxel-edges", "inset"), default="voxel-edges",
        help="along the pixels' edges (exact for centre-inside readers), or 0.25 pixel "
        "inside them (exact also for readers that round points to pixels: rt-utils)",
    )  # fmt: skip


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
