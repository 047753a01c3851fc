"""``medmask pack``: NIfTI masks, label maps, DICOM SEG or Slicer files into archives."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..codecs import DEFAULT_LEVEL
from ..ops.pack import PackFailure, PackResult, pack, pack_many, parse_group
from ..ops.sources import grid_of
from .common import UsageError, echo, level, positive, ratio, size, warn

HELP = "Pack NIfTI masks, label maps, DICOM SEG or Slicer files into .mska archives."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sources",
        nargs="+",
        type=Path,
        metavar="SRC",
        help="folder(s) of per-organ NIfTI masks, multi-label NIfTI, DICOM SEG or .seg.nrrd",
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True,
        help="archive file (one SRC) or folder for <SRC name>.mska",
    )  # fmt: skip
    parser.add_argument(
        "--group", action="append", default=[], metavar="NAME=GLOB",
        help="store NAME as the union of the matching masks; repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--level", type=level, default=DEFAULT_LEVEL,
        help="level 1-22: 19 smallest, 3 faster and a little larger",
    )  # fmt: skip
    parser.add_argument("--workers", type=positive, default=1, help="sources packed at once")
    parser.add_argument("--overwrite", action="store_true", help="replace existing archives")
    parser.add_argument(
        "--strict-geometry", action="store_true",
        help="refuse files whose geometry differs from the first's at all",
    )  # fmt: skip
    parser.add_argument(
        "--source",
        type=Path,
        help="DICOM SEG or RTSTRUCT input: its image series (folder), to read it onto",
    )
    parser.add_argument(
        "--like",
        type=Path,
        help="DICOM SEG or RTSTRUCT input: an archive or NIfTI whose grid to read it onto",
    )


def run(args: argparse.Namespace) -> int:
    try:
        groups = dict(parse_group(text) for text in args.group)
    except ValueError as err:
        raise UsageError(f"--group: {err}") from err
    sources: list[Path] = args.sources
    output: Path = args.output
    many = len(sources) > 1 or output.is_dir() or str(output).endswith(("/", "\\"))
    if (args.source or args.like) and (many or (args.source and args.like)):
        raise UsageError("give one SRC and one of --source / --like")
    if not many:
        packed = pack(
            sources[0], output, groups=groups, level=args.level, overwrite=args.overwrite,
            strict_geometry=args.strict_geometry, reference=_reference(args.source, args.like),
        )  # fmt: skip
        _print(packed)
        return 0
    outcomes = _with_progress(
        sources, output, groups, args.level, args.workers, args.overwrite,
        args.strict_geometry, quiet=args.quiet,
    )  # fmt: skip
    failed = [o for o in outcomes if isinstance(o, PackFailure)]
    for outcome in outcomes:
        if isinstance(outcome, PackResult):
            _print(outcome)
        else:
            print(f"medmask: error: {outcome.reason}", file=sys.stderr)
    echo(f"{len(outcomes) - len(failed)} packed, {len(failed)} failed, in {output}")
    return 1 if failed else 0


def _reference(source: Path | None, like: Path | None) -> Any:
    """The grid ``--source`` (an image series) or ``--like`` (an archive, a NIfTI) names."""
    if source is not None:
        from ..exchange.dicom.source import read_source_series  # noqa: PLC0415 - pydicom

        return read_source_series(source)  # pack checks the SEG is of this series
    return None if like is None else grid_of(like)


def _with_progress(
    sources: Sequence[Path],
    output: Path,
    groups: dict[str, str],
    level: int,
    workers: int,
    overwrite: bool,
    strict_geometry: bool,
    *,
    quiet: bool,
) -> list[PackResult | PackFailure]:
    packing = functools.partial(
        pack_many, sources, output, groups=groups, level=level, workers=workers,
        overwrite=overwrite, strict_geometry=strict_geometry,
    )  # fmt: skip
    if quiet or not sys.stderr.isatty():
        return packing()
    from rich.progress import Progress  # noqa: PLC0415 - only on a terminal

    with Progress(transient=True) as bar:
        task = bar.add_task("packing", total=len(sources))
        return packing(on_done=lambda _: bar.advance(task))


def _print(result: PackResult) -> None:
    for name, reason in result.skipped:
        warn(f"{result.source}: skipped {name}: {reason}")
    groups = f" + {len(result.groups)} group(s)" if result.groups else ""
    empty = f" ({len(result.empty)} empty)" if result.empty else ""
    echo(
        f"{result.target}: {len(result.masks)} masks{empty}{groups}, "
        f"{size(result.input_bytes)} of {result.kind_label} -> {size(result.archive_bytes)} "
        f"({ratio(result.input_bytes, result.archive_bytes)})"
    )
