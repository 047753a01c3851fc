"""``medmask report``: one self-contained HTML page about a cohort of archives."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ops.report import cohort_report
from .common import echo, warn

HELP = "Write report.html about a cohort: organs found, volumes, outliers, missing organs."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", type=Path, help="folder of .mska archives, or a catalog (.parquet)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="the page to write")


def run(args: argparse.Namespace) -> int:
    report = cohort_report(args.source, args.output)
    for archive, reason in report.unread:
        warn(f"{archive}: not in the report: {reason}")
    k = report.kpis
    echo(
        f"{args.output}: {k['cases']:,} cases, {k['organs']:,} organs, "
        f"{len(report.outliers):,} outlying volumes, {len(report.missing):,} cases missing "
        "common organs" + (f", {len(report.unread):,} archives not read" if report.unread else "")
    )
    return 1 if report.unread else 0
