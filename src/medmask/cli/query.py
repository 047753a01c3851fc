"""``medmask query``: SQL over catalogs (DuckDB, embedded), printed or written to a file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..ops.catalog import query, write_result
from .common import UsageError, echo

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


def run(args: argparse.Namespace) -> int:
    if args.output is not None and args.output.suffix.lower() not in (".csv", ".parquet", ".json"):
        raise UsageError(f"-o {args.output}: give a .csv, .parquet or .json file")
    table = query(args.catalogs, args.sql)
    if args.output is not None:
        write_result(table, args.output)
        echo(f"{args.output}: {table.num_rows:,} rows")
        return 0
    _print(table, args.max_rows)
    return 0


def _print(table: Any, limit: int) -> None:
    names = table.column_names
    rows = table.slice(0, max(limit, 0)).to_pylist()
    cells = [[_cell(row[name]) for name in names] for row in rows]
    widths = [max([len(n), *(len(c[i]) for c in cells)]) for i, n in enumerate(names)]
    echo("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip())
    for cell in cells:
        echo("  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip())
    more = table.num_rows - len(rows)
    echo(f"({table.num_rows:,} rows{f', {more:,} not shown' if more > 0 else ''})")


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
