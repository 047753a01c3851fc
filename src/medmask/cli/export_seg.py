"""``medmask export-seg``: an archive's masks as a DICOM Segmentation on their series."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ops.sources import natural_key
from .common import echo, size, warn

HELP = "Write an archive's masks as a DICOM Segmentation (BINARY or LABELMAP) on their series."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", type=Path, help="a .mska archive")
    parser.add_argument(
        "--source", type=Path, required=True,
        help="folder of the image series (CT/MR) the masks were made on",
    )  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, required=True, help="DICOM SEG file to write")
    parser.add_argument(
        "-n", "--name", action="append", help="only this mask; repeatable", metavar="NAME"
    )
    parser.add_argument("--groups", action="store_true", help="also write the archive's groups")
    parser.add_argument(
        "--algorithm", default="medmask",
        help="algorithm named in the SEG; 'manual' for hand-drawn masks",
    )  # fmt: skip
    parser.add_argument("--algorithm-version", default="", help="its version")
    parser.add_argument(
        "--transfer-syntax", choices=("deflated", "explicit"), default="deflated",
        help="deflated (small) or explicit (uncompressed)",
    )  # fmt: skip
    parser.add_argument(
        "--type", choices=("binary", "labelmap"), default="binary", dest="seg_type",
        help="binary (overlapping masks kept) or labelmap (one segment per voxel, smaller)",
    )  # fmt: skip
    parser.add_argument(
        "--skip-empty", action="store_true",
        help="leave empty masks out (default: segments without frames)",
    )  # fmt: skip
    parser.add_argument("--series-uid", help="which series of --source, when it holds several")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")


def run(args: argparse.Namespace) -> int:
    from ..exchange.dicom.exchange import export_seg  # noqa: PLC0415 - pydicom for this command

    result = export_seg(
        args.archive, args.source, args.output, names=args.name, groups=args.groups,
        algorithm=None if args.algorithm.lower() == "manual" else args.algorithm,
        algorithm_version=args.algorithm_version, transfer_syntax=args.transfer_syntax,
        series_uid=args.series_uid, overwrite=args.overwrite,
        segmentation_type=args.seg_type, keep_empty=not args.skip_empty,
    )  # fmt: skip
    if result.empty and args.skip_empty:
        listed = ", ".join(sorted(result.empty, key=natural_key)[:8])
        more = f" and {len(result.empty) - 8} more" if len(result.empty) > 8 else ""
        warn(
            f"{len(result.empty)} empty masks have no voxels and are not segments of the "
            f"SEG (--skip-empty): {listed}{more}"
        )
    empty = f", {len(result.empty)} of them empty" if result.empty and not args.skip_empty else ""
    echo(
        f"{result.path}: {result.segmentation_type} SEG, {len(result.segments)} segments"
        f"{empty}, {result.frames} frames, {size(result.file_bytes)} ({result.transfer_syntax})"
    )
    return 0
