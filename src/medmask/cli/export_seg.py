"""``medmask export-seg``: an archive's masks as a DICOM Segmentation on their series."""

from __future__ import annotations

import argparse

from ..ops.sources import natural_key
from .common import add_export_arguments, echo, size, warn

HELP = "Write an archive's masks as a DICOM Segmentation (BINARY or LABELMAP) on their series."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_export_arguments(parser, "DICOM SEG file to write")
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
