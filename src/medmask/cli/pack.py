"""``medmask pack``: NIfTI masks, label maps, DICOM SEG or Slicer files into archives."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..codecs import DEFAULT_LEVEL
from ..ops.cohort import (
    FAILURES,
    LAYOUTS,
    CohortLayout,
    detect_cohort,
    pack_cohort,
    read_series_map,
)
from ..ops.pack import PackFailure, PackResult, pack, pack_many, parse_groups
from ..ops.sources import grid_of, source_series
from .common import UsageError, echo, level, ratio, size, warn, workers

HELP = "Pack NIfTI masks, label maps, DICOM SEG or Slicer files into .mska archives."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sources",
        nargs="+",
        type=Path,
        metavar="SRC",
        help="folder(s) of per-organ NIfTI masks, label maps (.nii, .nrrd), DICOM SEG, .seg.nrrd",
    )
    parser.add_argument(
        "-o", "--output", type=str, required=True,
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
    parser.add_argument(
        "--workers", type=workers, default=1,
        help="sources packed at once, in local processes (1 to 4 a core)",
    )  # fmt: skip
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
        help="DICOM SEG or RTSTRUCT input: an archive or NIfTI (a mask or the scan) whose grid "
        "to read it onto",
    )
    parser.add_argument(
        "--series-uid",
        help="the SeriesInstanceUID of the images the masks were drawn on (recorded); with "
        "--source, which of its series (default: the one a SEG or RTSTRUCT names)",
    )
    cluster = parser.add_argument_group(
        "cohorts (one SRC: a folder of case folders or of multi-label files; docs/cohorts.md)"
    )
    cluster.add_argument("--scheduler", help="pack the cases on a Dask cluster: tcp://HOST:PORT")
    cluster.add_argument("--scheduler-file", help="the Dask scheduler's JSON file")
    cluster.add_argument(
        "--layout", choices=LAYOUTS, default="auto",
        help="auto (default): NIfTI files right in SRC are cases when they are label maps; "
        "folders: only case folders are cases; label-files: every NIfTI file in SRC is a case",
    )  # fmt: skip
    cluster.add_argument(
        "--series-map", type=Path, metavar="CSV",
        help="CSV with columns case, SeriesInstanceUID (and FrameOfReferenceUID, "
        "StudyInstanceUID): each case's image series, recorded in its archive",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    try:
        groups = parse_groups(args.group)
    except ValueError as err:
        raise UsageError(f"--group: {err}") from err
    sources: list[Path] = args.sources
    typed: str = args.output  # (as typed: a trailing / asks for a folder)
    output = args.output = Path(typed)
    layout = detect_cohort(sources[0], args.layout) if len(sources) == 1 else None
    if layout is None and args.layout != "auto":
        raise UsageError(f"--layout {args.layout}: {sources[0]} is no cohort folder of that kind")
    if layout is not None and output.suffix.lower() != ".mska":
        if args.series_uid or args.source or args.like:
            raise UsageError(
                "--series-uid, --source and --like are for one case; a cohort's series "
                "come from --series-map"
            )
        return _cohort(args, groups, layout)
    for flag, given in (("--scheduler", args.scheduler or args.scheduler_file),
                        ("--series-map", args.series_map),
                        ("--layout", args.layout != "auto")):  # fmt: skip
        if given:
            raise UsageError(f"{flag} is for a cohort: give one SRC folder of cases")
    many = len(sources) > 1 or output.is_dir() or typed.endswith(("/", os.sep))
    if (args.source or args.like) and (many or (args.source and args.like)):
        raise UsageError("give one SRC and one of --source / --like")
    if args.series_uid and many:
        raise UsageError("--series-uid names one case's series: give one SRC")
    if not many:
        packed = pack(
            sources[0], output, groups=groups, level=args.level, overwrite=args.overwrite,
            strict_geometry=args.strict_geometry,
            reference=_reference(sources[0], args.source, args.like, args.series_uid),
            series_uid=args.series_uid,
        )  # fmt: skip
        _print(packed, sources[0])
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


def _cohort(args: argparse.Namespace, groups: dict[str, str], layout: CohortLayout) -> int:
    """One archive per case of a cohort folder, resumable (docs/cohorts.md)."""
    series = read_series_map(args.series_map) if args.series_map else None
    echo(layout.describe())
    for line in layout.skipped_lines(out_dir=args.output):
        warn(line)
    with _CohortProgress(quiet=args.quiet) as progress:
        result = pack_cohort(
            args.sources[0], args.output, groups=groups, level=args.level,
            workers=args.workers, scheduler=args.scheduler, scheduler_file=args.scheduler_file,
            overwrite=args.overwrite, strict_geometry=args.strict_geometry,
            layout=layout, series=series,
            on_start=progress.start, on_done=progress.done,
        )  # fmt: skip
    if result.unmapped:
        warn(
            f"{args.series_map}: no series for {len(result.unmapped):,} case(s), e.g. "
            f"{', '.join(result.unmapped[:3])}: their archives record none"
        )
    if result.strangers:
        warn(
            f"{args.series_map}: {len(result.strangers):,} case(s) not in the cohort, e.g. "
            f"{', '.join(result.strangers[:3])}"
        )
    for line in result.skipped_lines():
        warn(line)
    for failure in result.failures:
        print(f"medmask: error: {failure.reason}", file=sys.stderr)
    rate = len(result.packed) / result.seconds if result.seconds else 0.0
    failed = f", {len(result.failures)} failed (listed in {args.output / FAILURES})" if (
        result.failures
    ) else ""  # fmt: skip
    echo(
        f"{args.output}: {len(result.packed):,} packed, {len(result.unchanged):,} unchanged"
        f"{failed} in {result.seconds:.1f} s ({rate:.1f} cases/s)"
    )
    return 1 if result.failures else 0


class _CohortProgress:
    """A progress bar with cases/s and the time left, on a terminal only."""

    def __init__(self, *, quiet: bool) -> None:
        self.bar: Any = None
        self.task: Any = None
        self.quiet = quiet or not sys.stderr.isatty()

    def __enter__(self) -> _CohortProgress:
        return self

    def __exit__(self, *_: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def start(self, total: int) -> None:
        if self.quiet or not total:
            return
        from rich.progress import (  # noqa: PLC0415 - only on a terminal
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("packing"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(), transient=True,
        )  # fmt: skip
        self.task = self.bar.add_task("packing", total=total, rate="")
        self.bar.start()

    def done(self, _: object) -> None:
        if self.bar is None:
            return
        self.bar.advance(self.task)
        speed = self.bar.tasks[0].speed
        self.bar.update(self.task, rate=f"{speed:.1f} cases/s" if speed else "")


def _reference(src: Path, source: Path | None, like: Path | None, series_uid: str | None) -> Any:
    """The grid ``--source`` (an image series) or ``--like`` (an archive, a NIfTI) names."""
    if source is not None:
        return source_series(src, source, series_uid)  # pack checks SRC is of this series
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


def _print(result: PackResult, given: Path | None = None) -> None:
    for name, reason in result.skipped:
        warn(f"{result.source}: skipped {name}: {reason}")
    groups = f" + {len(result.groups)} group(s)" if result.groups else ""
    empty = f" ({len(result.empty)} empty)" if result.empty else ""
    inside = f" (in {result.source})" if given is not None and result.source != given else ""
    echo(
        f"{result.target}: {len(result.masks)} masks{empty}{groups}, "
        f"{size(result.input_bytes)} of {result.kind_label}{inside} -> "
        f"{size(result.archive_bytes)} ({ratio(result.input_bytes, result.archive_bytes)})"
    )
