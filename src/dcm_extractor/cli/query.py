"""``dcm-extract query OUT "SQL"``: SQL over an output folder's tables (DuckDB, embedded)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..outputs.query import (
    OUTPUT_FORMATS,
    VIEWS,
    path_list,
    query_paths,
    query_rows,
    query_to_file,
)
from .common import PROG, echo

HELP = (
    "Run SQL over the tables of an output folder (views: "
    + ", ".join(VIEWS)
    + "); print the result or write it (-o)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="an output folder of dcm-extract")
    parser.add_argument(
        "sql", help='e.g. "SELECT Modality, count(*) FROM series GROUP BY Modality"'
    )
    parser.add_argument(
        "-o", "--output", type=Path,
        help="write the result: .csv, .parquet, .json (one object per row) or .xlsx",
    )  # fmt: skip
    parser.add_argument(
        "--excel", action="store_true", help="-o x.csv with a UTF-8 BOM so Excel shows Chinese"
    )
    parser.add_argument(
        "--max-rows", type=int, default=50, help="rows printed (default 50; -o writes all)"
    )
    parser.add_argument(
        "--paths", action="store_true",
        help="print the files the query selects, one a line (FilePath, or FilePath::ZipMember "
        "for zip members; the query returns FilePath and ZipMember from instances)",
    )  # fmt: skip
    parser.add_argument(
        "-d", "--data-root", type=Path,
        help="with --paths: the run's data root, so that the paths are absolute",
    )  # fmt: skip
    parser.add_argument(
        "-0", "--null", action="store_true",
        help="with --paths: end each path with a NUL byte, not a line end (for xargs -0)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    with _warnings_to_stderr():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.paths:
        if args.output is not None:
            raise argparse.ArgumentTypeError("--paths prints paths; -o writes a table: not both")
        listed = path_list(query_paths(args.out, args.sql, args.data_root), null=args.null)
        sys.stdout.flush()
        sys.stdout.buffer.write(listed)
        sys.stdout.buffer.flush()
        return 0
    if args.null:
        raise argparse.ArgumentTypeError("-0 ends the paths of --paths: give --paths")
    if args.excel and (args.output is None or args.output.suffix.lower() != ".csv"):
        raise argparse.ArgumentTypeError(
            "--excel: give -o FILE.csv (the byte order mark is for a CSV file)"
        )
    if args.output is not None:
        if args.output.suffix.lower() not in OUTPUT_FORMATS:
            raise argparse.ArgumentTypeError(
                f"-o {args.output}: give a {', '.join(OUTPUT_FORMATS)} file"
            )
        rows = query_to_file(args.out, args.sql, args.output, excel=args.excel)
        echo(f"{args.output}: {rows:,} rows")
        return 0
    names, shown, total = query_rows(args.out, args.sql, args.max_rows)
    cells = [[_cell(value) for value in row] for row in shown]
    widths = [max([_width(n), *(_width(c[i]) for c in cells)]) for i, n in enumerate(names)]
    for line in [names, *cells]:
        echo("  ".join(_pad(c, w) for c, w in zip(line, widths, strict=True)).rstrip())
    more = total - len(shown)
    echo(f"({total:,} rows{f', {more:,} not shown' if more > 0 else ''})")
    return 0


@contextlib.contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """The library's warnings while the query runs (a cell cut to Excel's limit) as
    ``dcm-extract: warning:`` lines, the style of both tools' warnings (docs/cli.md)."""
    handler = _Stderr()
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter(f"{PROG}: warning: %(message)s"))
    package = logging.getLogger(__name__.split(".")[0])
    package.addHandler(handler)
    try:
        yield
    finally:
        package.removeHandler(handler)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to ``sys.stderr`` as it is when a record comes."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _width(text: str) -> int:
    """Columns a text takes on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
