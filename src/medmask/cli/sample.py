"""``medmask sample``: generated organ masks in TotalSegmentator's layout."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator

from ..sample import generate_masks
from .common import echo

HELP = "Write generated organ masks (TotalSegmentator layout) to OUT_DIR."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder for the masks and label map")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same masks")
    parser.add_argument(
        "--scale", choices=("small", "medium", "full"), default="small",
        help="grid size: small, medium, or full body (512x512x600)",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace masks generated earlier")
    parser.add_argument(
        "--ct-series", action="store_true", help="also write the CT as a DICOM series"
    )


def run(args: argparse.Namespace) -> int:
    with _naming(args.out_dir):
        result = generate_masks(
            args.out_dir, seed=args.seed, scale=args.scale, overwrite=args.overwrite,
            ct_series=args.ct_series,
        )  # fmt: skip
    echo(f"{len(result.names)} masks in {result.masks_dir}")
    echo(f"multi-label: {result.multilabel_path}")
    if result.ct_series_dir is not None:
        echo(f"CT series: {result.ct_series_dir}")
    return 0


@contextlib.contextmanager
def _naming(out_dir: str | os.PathLike[str]) -> Iterator[None]:
    """A write the system refused as it passes it on naming no file (a full disk's
    "[Errno 28] No space left on device") as one naming the sample's folder."""
    try:
        yield
    except OSError as err:
        if err.filename is not None or err.errno is None:
            raise
        what = f"{err.strerror} (the sample is incomplete: --overwrite replaces it)"
        raise OSError(err.errno, what, os.fspath(out_dir)) from err
