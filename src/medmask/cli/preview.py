"""``medmask preview``: axial, coronal and sagittal slices through the masks, as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ops.preview import render_preview
from ..ops.sources import natural_key
from .common import echo


def _width(text: str) -> float:
    value = float(text)
    if not value >= 1e-3:
        raise argparse.ArgumentTypeError(f"must be at least 0.001, got {text}")
    return value


HELP = "Draw axial, coronal and sagittal slices through the masks, with a legend."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", type=Path, help="a .mska archive")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    parser.add_argument(
        "-n", "--name", action="append", help="only this mask; repeatable", metavar="NAME"
    )
    parser.add_argument(
        "--image", type=Path, help="the scan to draw under: a NIfTI file or a DICOM series folder"
    )
    parser.add_argument("--window-center", type=float, default=40.0, help="image window centre")
    parser.add_argument("--window-width", type=_width, default=400.0, help="image window width")
    parser.add_argument(
        "--font",
        type=Path,
        help="font file (.ttf/.ttc/.otf) for the legend; default: one that has the names' letters",
    )


def run(args: argparse.Namespace) -> int:
    centre, width = args.window_center, args.window_width
    window = (centre - width / 2, centre + width / 2)
    result = render_preview(
        args.archive, args.output, names=args.name, image=args.image, window=window, font=args.font
    )
    cuts = ", ".join(f"{view} {index}" for view, index in result.cuts.items())
    echo(f"{result.path}: {len(result.shown)} masks shown ({cuts})")
    if result.hidden:
        hidden = sorted(result.hidden, key=natural_key)
        more = f" and {len(hidden) - 8} more" if len(hidden) > 8 else ""
        echo(f"not in these slices: {', '.join(hidden[:8])}{more}")
    if result.numbered:
        echo(
            "the legend numbers these: " + ", ".join(f"{k} {v}" for k, v in result.numbered.items())
        )
    if result.empty:
        echo(f"{len(result.empty)} empty masks (no voxels) not drawn")
    return 0
