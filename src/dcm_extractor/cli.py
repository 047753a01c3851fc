"""The ``dcm-extract`` command line: one argparse parser per subcommand, no logic.

``dcm-extract [OPTIONS]`` is the extraction with the original tool's options (also run
as ``python -m src.dcm_extractor.extractor`` and ``python -m dcm_extractor``);
``dcm-extract sample OUT_DIR`` writes generated data, ``dcm-extract keygen FILE`` a new
pseudonym key, ``dcm-extract --version`` the version. Exit codes: 0 done, 1 a failure
(a case, an unwritable folder), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .errors import DcmExtractorError
from .extractor import main as extract_main
from .privacy import generate_key
from .sample import generate_dicom_dataset

__all__ = ["main"]

PROG = "dcm-extract"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _sample_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # --merge-al is a typo, not --merge-all
        prog=f"{PROG} sample",
        description="Generate DICOM cases in every layout the extractor must handle, "
        "with ground truth.",
    )
    parser.add_argument("out_dir", help="folder for dicom_cases/ and ground_truth.json")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files")
    parser.add_argument("--bulk-cases", type=int, default=0, help="extra benchmark cases")
    parser.add_argument("--series-per-case", type=_positive, default=2)
    parser.add_argument("--images-per-series", type=_positive, default=3)
    parser.add_argument("--image-size", type=_positive, default=32, help="rows and columns")
    parser.add_argument("--template", help="a real CT file whose header every image reuses")
    parser.add_argument(
        "--showcase", action=argparse.BooleanOptionalAction, default=True,
        help="write the showcase cases",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an existing data set")
    return parser


def _sample(argv: Sequence[str]) -> int:
    args = _sample_parser().parse_args(argv)
    if args.bulk_cases < 0:
        _sample_parser().error("--bulk-cases must be 0 or more")
    try:
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
    except (DcmExtractorError, OSError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    print(f"{result.file_count} files in {result.cases_root}")
    print(f"ground truth: {result.truth_path}")
    return 0


def _keygen(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # --merge-al is a typo, not --merge-all
        prog=f"{PROG} keygen",
        description="Write a new secret key for keyed pseudonyms; keep it outside the outputs.",
    )
    parser.add_argument("path", help="where to write the new key (mode 0600)")
    args = parser.parse_args(argv)
    try:
        fingerprint = generate_key(args.path)
    except (DcmExtractorError, OSError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    print(f"new pseudonym key in {args.path} (fingerprint {fingerprint})")
    print("back it up and keep it private: the same key gives the same pseudonyms")
    return 0


_SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"sample": _sample, "keygen": _keygen}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dcm-extract`` with ``argv`` (default: the process arguments); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--version"]:
        print(f"{PROG} (medkit) {__version__}")
        return 0
    command = _SUBCOMMANDS.get(args[0]) if args else None
    try:
        if command is not None:
            return command(args[1:])
        return extract_main(args, prog=PROG)
    except SystemExit as done:  # argparse: 0 after --help, 2 on usage errors
        return int(done.code or 0)


if __name__ == "__main__":
    sys.exit(main())
