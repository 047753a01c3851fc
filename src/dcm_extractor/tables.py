"""Writing the tables: CSV (UTF-8, optionally with a BOM for Excel), JSON records, Parquet.

Values are written as text exactly as read: PatientID ``000123`` stays ``000123`` and
dates stay ``YYYYMMDD``; nothing re-reads a table with type guessing. Every file is
written atomically (temp file + rename).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from .cases import ReportEntry
from .projectids import write_atomic
from .rows import FIXED_COLUMNS

__all__ = [
    "PARQUET_SCHEMA",
    "REPORT_COLUMNS",
    "write_csv",
    "write_json",
    "write_parquet",
    "write_report",
]

_INTEGER_COLUMNS: Final = {
    "ProjectID",
    "PatientAge",
    "Rows",
    "Columns",
    "ImageCount",
    "SeriesCount",
}
PARQUET_SCHEMA: Final = pa.schema(
    [(name, pa.int64() if name in _INTEGER_COLUMNS else pa.string()) for name in FIXED_COLUMNS]
)
REPORT_COLUMNS: Final = ["case", "location", "reason", "detail"]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def write_csv(
    path: str | os.PathLike[str], rows: Sequence[dict[str, Any]], *, excel: bool = False
) -> None:
    """The rows as CSV with the fixed columns; ``excel`` adds a UTF-8 BOM so Excel shows Chinese."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n" if excel else "\n")
    writer.writerow(FIXED_COLUMNS)
    for row in rows:
        writer.writerow([_text(row.get(column)) for column in FIXED_COLUMNS])
    write_atomic(path, buffer.getvalue().encode("utf-8-sig" if excel else "utf-8"))


def write_json(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> None:
    """The rows as a JSON list of records (same values as the CSV; numbers as numbers)."""
    records = [{column: row.get(column) for column in FIXED_COLUMNS} for row in rows]
    write_atomic(path, (json.dumps(records, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))


def write_parquet(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> None:
    """The rows as Parquet with :data:`PARQUET_SCHEMA` (one schema whatever the values)."""
    columns = {column: [row.get(column) for row in rows] for column in FIXED_COLUMNS}
    table = pa.table(columns, schema=PARQUET_SCHEMA)
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    write_atomic(path, buffer.getvalue().to_pybytes())


def write_report(
    path: str | os.PathLike[str],
    entries: Iterable[ReportEntry],
    *,
    excel: bool = False,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Every skipped or failed file and every row problem, one per line, with its reason.

    With ``labels`` (case -> pseudonym) the report names no case, file or patient.
    """
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for entry in entries:
        writer.writerow(entry.to_dict(labels))
    write_atomic(path, buffer.getvalue().encode("utf-8-sig" if excel else "utf-8"))
