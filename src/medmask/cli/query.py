"""``medmask query``: SQL over catalogs (DuckDB, embedded), printed or written to a file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..ops.query import OUTPUT_FORMATS, query_rows, query_to_file
from .common import UsageError, columns, echo, pad

HELP = "Run SQL over catalogs (the view `masks`); print the result or write it (-o)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("catalogs", type=Path, nargs="+", metavar="CATALOG",
                        help="catalog(s) written by `medmask catalog`")  # fmt: skip
    parser.add_argument("sql", help='e.g. "SELECT mask, count(*) FROM masks GROUP BY mask"')
    parser.add_argument(
        "-o", "--output", type=Path,
        help="write the result: .csv, .parquet or .json (one object per row)",
    )  # fmt: skip
    parser.add_argument(
        "--max-rows", type=int, default=50, help="rows printed (default 50; -o writes all)"
    )
    parser.add_argument(
        "--excel", action="store_true", help="-o x.csv with a UTF-8 BOM so Excel shows Chinese"
    )


def run(args: argparse.Namespace) -> int:
    if args.output is not None and args.output.suffix.lower() not in OUTPUT_FORMATS:
        raise UsageError(f"-o {args.output}: give a {', '.join(OUTPUT_FORMATS)} file")
    if args.excel and (args.output is None or args.output.suffix.lower() != ".csv"):
        raise UsageError("--excel: give -o FILE.csv (the byte order mark is for a CSV file)")
    if args.output is not None:
        rows = query_to_file(args.catalogs, args.sql, args.output, excel=args.excel)
        echo(f"{args.output}: {rows:,} rows")
        return 0
    names, shown, total = query_rows(args.catalogs, args.sql, args.max_rows)
    cells = [[_cell(value) for value in row] for row in shown]
    widths = [max([columns(n), *(columns(c[i]) for c in cells)]) for i, n in enumerate(names)]
    for line in [names, *cells]:
        echo("  ".join(pad(c, w) for c, w in zip(line, widths, strict=True)).rstrip())
    more = total - len(shown)
    echo(f"({total:,} rows{f', {more:,} not shown' if more > 0 else ''})")
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
