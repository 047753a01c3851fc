"""``dcm-extract sample OUT_DIR``: generated DICOM cases in every layout, with ground truth."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator

from ..sample import generate_dicom_dataset
from .common import echo, positive

HELP = "Generate DICOM cases in every layout the extractor must handle, with ground truth."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", help="folder for dicom_cases/ and ground_truth.json")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files")
    parser.add_argument("--bulk-cases", type=int, default=0, help="extra benchmark cases")
    parser.add_argument(
        "--series-per-case", type=positive, default=2, help="series in each bulk case"
    )
    parser.add_argument(
        "--images-per-series", type=positive, default=3, help="images in each bulk series"
    )
    parser.add_argument("--image-size", type=positive, default=32, help="rows and columns")
    parser.add_argument("--template", help="a real CT file whose header every image reuses")
    parser.add_argument(
        "--showcase", action=argparse.BooleanOptionalAction, default=True,
        help="write the showcase cases",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an existing data set")


def run(args: argparse.Namespace) -> int:
    if args.bulk_cases < 0:
        raise argparse.ArgumentTypeError("--bulk-cases must be 0 or more")
    with _naming(args.out_dir):
        result = generate_dicom_dataset(
            args.out_dir,
            seed=args.seed,
            showcase=args.showcase,
            bulk_cases=args.bulk_cases,
            series_per_case=args.series_per_case,
            images_per_series=args.images_per_series,
            image_size=args.image_size,
            template=args.template,
            overwrite=args.overwrite,
        )
    echo(f"{result.file_count} files in {result.cases_root}")
    echo(f"ground truth: {result.truth_path}")
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
