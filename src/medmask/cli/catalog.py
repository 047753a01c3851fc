"""``medmask catalog``: one Parquet row per mask of every archive under a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ops.catalog import build_catalog
from .common import echo, warn

HELP = "Catalog every mask of the archives under a folder, from their indexes (Parquet)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archives", type=Path, help="folder of .mska archives, or one archive")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="the catalog to write (.parquet)"
    )
    parser.add_argument(
        "--rebuild", action="store_true",
        help="read every archive again (default: only new or changed ones)",
    )  # fmt: skip
    cluster = parser.add_argument_group("on a Dask cluster (its workers see the archives)")
    cluster.add_argument("--scheduler", help="read the archives on a Dask cluster: tcp://HOST:PORT")
    cluster.add_argument("--scheduler-file", help="the Dask scheduler's JSON file")


def run(args: argparse.Namespace) -> int:
    result = build_catalog(
        args.archives, args.output, incremental=not args.rebuild,
        scheduler=args.scheduler, scheduler_file=args.scheduler_file,
    )  # fmt: skip
    for archive, reason in result.failures:
        warn(f"{archive}: not catalogued: {reason}")
    parts = [f"{result.read} read", f"{result.kept} unchanged"]
    if result.dropped:
        parts.append(f"{result.dropped} gone")
    if result.decoded:
        parts.append(f"{result.decoded} masks decoded for their centroid (older archives)")
    failed = f", {len(result.failures)} failed" if result.failures else ""
    echo(
        f"{result.output}: {result.rows:,} masks of {result.archives:,} archives "
        f"({', '.join(parts)}{failed}) in {result.seconds:.1f} s"
    )
    return 1 if result.failures else 0
