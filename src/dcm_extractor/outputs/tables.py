"""Writing the tables: CSV (UTF-8, optionally with a BOM for Excel), JSON records, Parquet,
and Excel workbooks whose IDs stay text (:mod:`.xlsx`).

Values are written as text exactly as read: PatientID ``000123`` stays ``000123`` and
dates stay ``YYYYMMDD``; nothing re-reads a table with type guessing. Every file is
written atomically (temp file + rename).

Merged tables and the report are written as streams (:class:`TableStream`): rows go to
a temporary file as cases finish, Parquet in row groups of one fixed schema, so memory
does not grow with the number of files; the file appears under its name at
:meth:`TableStream.commit`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from ..sources.cases import ReportEntry
from ..sources.instances import INSTANCE_COLUMNS, INSTANCE_INTEGERS
from ..sources.rows import FIXED_COLUMNS
from ..sources.series import SERIES_COLUMNS, SERIES_FLOATS, SERIES_INTEGERS
from .arrowcolumns import column
from .atomic import AtomicFile, names_its_file
from .xlsx import XlsxTable

__all__ = [
    "CASE_TABLE",
    "INSTANCE_TABLE",
    "PARQUET_SCHEMA",
    "REPORT_COLUMNS",
    "SERIES_TABLE",
    "ReportStream",
    "TableShape",
    "TableStream",
    "formula_like",
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


@dataclass(frozen=True)
class TableShape:
    """A table's columns in order, which hold integers or decimals (the rest text), and
    which hold a new value in every row (``unique``: Parquet writes them without a
    dictionary, which would only cost)."""

    names: tuple[str, ...]
    integers: frozenset[str] = frozenset()
    floats: frozenset[str] = frozenset()
    unique: frozenset[str] = frozenset()

    def with_columns(self, extra: Iterable[str]) -> TableShape:
        """This shape with ``extra`` text columns after its own (those it has are kept once)."""
        added = tuple(name for name in dict.fromkeys(extra) if name not in self.names)
        if not added:  # (itself: its schema is made once, not for every case's files)
            return self
        return TableShape(self.names + added, self.integers, self.floats, self.unique)

    @cached_property
    def schema(self) -> pa.Schema:
        """The Parquet schema: int64, float64 or string per column, whatever the values."""
        return pa.schema(
            [
                (
                    name,
                    pa.int64()
                    if name in self.integers
                    else pa.float64()
                    if name in self.floats
                    else pa.string(),
                )
                for name in self.names
            ]
        )


CASE_TABLE: Final = TableShape(tuple(FIXED_COLUMNS), frozenset(_INTEGER_COLUMNS))
SERIES_TABLE: Final = TableShape(tuple(SERIES_COLUMNS), SERIES_INTEGERS, SERIES_FLOATS)
INSTANCE_TABLE: Final = TableShape(
    tuple(INSTANCE_COLUMNS),
    INSTANCE_INTEGERS,
    unique=frozenset({"ContentFingerprint", "SOPInstanceUID"}),
)
PARQUET_SCHEMA: Final = CASE_TABLE.schema
REPORT_COLUMNS: Final = ["case", "location", "reason", "detail"]
# Rows of a Parquet table's first row groups; they grow with the table (TableStream).
PARQUET_ROW_GROUP: Final = 1_000

TableFormat = Literal["csv", "json", "parquet", "xlsx"]


class TableStream(AtomicFile):
    """One table written row batch by row batch into a temporary file, renamed at commit.

    Produces exactly the bytes of :func:`write_csv` / :func:`write_json` (and the same
    table as :func:`write_parquet`) for the same rows, without holding them all.
    Used as a context manager, an exception discards the temporary file.

    Parquet row groups hold ``row_group`` rows (:data:`PARQUET_ROW_GROUP`), growing with
    the table: a hundredth of the rows written so far, up to ten times ``row_group``. The
    rows waiting for their group are held (a series row ~2 KB: 50,000 of them held ~100
    MB), and the writer keeps the footer in memory (~18 KB a row group of the instance
    table: 10^7 rows in groups of 1,000 would hold ~180 MB of it, ~22 MB so).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fmt: TableFormat,
        *,
        excel: bool = False,
        shape: TableShape = CASE_TABLE,
        row_group: int | None = None,
        in_memory: bool = False,
    ) -> None:
        if fmt not in ("csv", "json", "parquet", "xlsx"):
            raise ValueError(f"unknown table format {fmt!r}")
        super().__init__(path, in_memory=in_memory)
        self.fmt = fmt
        self.names = shape.names
        self.shape = shape
        self._count = 0
        # Parquet: the rows of the next row group, column by column (lists of plain
        # values: a row group of 50,000 dicts would be 50,000 objects for the garbage
        # collector to walk on every collection)
        self._pending: dict[str, list[Any]] = {name: [] for name in self.names}
        self._held = 0
        self._row_group = row_group
        numbers = shape.integers | shape.floats  # (the schema's columns that are not text)
        self._numeric = [name for name in self.names if name in numbers]
        self._parquet: pq.ParquetWriter | None = None
        self._xlsx: XlsxTable
        # --excel CSVs: cells Excel would take for formulas, by column (formula_like)
        self.formula_cells: Counter[str] = Counter()
        self._excel_csv = excel and fmt == "csv"
        if fmt == "csv":
            terminator = "\r\n" if excel else "\n"
            text = self._text_file(excel)
            self._csv = csv.writer(text, lineterminator=terminator)
            # csv quotes a field with a line break of its terminator only: a bare CR (a
            # text value may hold one) would end the row for every reader. Rows with one
            # are written with every field quoted.
            self._csv_quoted = csv.writer(text, lineterminator=terminator, quoting=csv.QUOTE_ALL)
            self._csv.writerow(self.names)
        elif fmt == "parquet":
            plain = [name for name in self.names if name not in shape.unique]
            self._parquet = pq.ParquetWriter(self._file, shape.schema, use_dictionary=plain)
        elif fmt == "xlsx":
            numeric = shape.integers | shape.floats
            self._xlsx = XlsxTable(
                self._file, self.names, numeric, self.path.stem, beside=self.path.parent
            )

    @names_its_file
    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append ``rows`` (dicts keyed by column; missing columns are empty)."""
        if self.fmt == "csv":
            for row in rows:
                # (csv writes None as "" and any other value as str() - floats by repr(),
                # the same in Python 3: the values go to it as they are)
                self._csv_row(list(map(row.get, self.names)))
        elif self.fmt == "json":
            for row in rows:
                record = {column: row.get(column) for column in self.names}
                text = json.dumps(record, ensure_ascii=False, indent=1).replace("\n", "\n ")
                self._file.write(((",\n " if self._count else "[\n ") + text).encode("utf-8"))
                self._count += 1
        elif self.fmt == "xlsx":
            self._xlsx.write([row.get(column) for column in self.names] for row in rows)
        else:
            for row in rows:
                for name, values in self._pending.items():
                    values.append(row.get(name))
                self._held += 1
            if self._held >= self._group_rows():
                self._flush_parquet()

    @names_its_file
    def write_columns(self, columns: Mapping[str, Sequence[Any]], count: int) -> None:
        """Append ``count`` rows given column by column (a column not given is empty):
        the same file as :meth:`write` of the rows, without a dict per row."""
        if self.fmt == "parquet":
            for name, values in self._pending.items():
                given = columns.get(name)
                values.extend([None] * count if given is None else given)
            self._held += count
            if self._held >= self._group_rows():
                self._flush_parquet()
        elif self.fmt == "csv":
            blank = [""] * count
            ordered = [columns.get(name, blank) for name in self.names]
            if any(_has_cr(column) for column in ordered):
                for cells in zip(*ordered, strict=True):
                    self._csv_row(cells)
            else:
                if self._excel_csv:
                    self._count_formulas(self.names, ordered)
                self._csv.writerows(zip(*ordered, strict=True))
        else:
            names = [name for name in self.names if name in columns]
            self.write(
                dict(zip(names, row, strict=True))
                for row in zip(*(columns[name] for name in names), strict=True)
            )

    def _count_formulas(self, names: Sequence[str], columns: Sequence[Sequence[Any]]) -> None:
        for name, values in zip(names, columns, strict=True):
            found = sum(map(formula_like, values))
            if found:
                self.formula_cells[name] += found

    def _group_rows(self) -> int:
        first = PARQUET_ROW_GROUP if self._row_group is None else self._row_group
        return max(first, min(10 * first, self._count // 100))

    def _csv_row(self, cells: Sequence[Any]) -> None:
        if self._excel_csv:
            self._count_formulas(self.names, [[cell] for cell in cells])
        if _cr_in(cells):
            self._csv_quoted.writerow(cells)
        else:
            self._csv.writerow(cells)

    def _finish(self) -> None:
        if self.fmt == "xlsx":
            self._xlsx.close()
        elif self.fmt == "json":
            self._file.write(b"\n]\n" if self._count else b"[]\n")
        elif self._parquet is not None:
            if self._held or self._count == 0:
                self._flush_parquet()
            self._parquet.close()

    def discard(self) -> None:
        """Drop the temporary file (a Parquet writer closed first: left to the garbage
        collector, it would write its footer into a closed file)."""
        try:
            if self._parquet is not None and self._parquet.is_open:
                with contextlib.suppress(Exception):  # (the file goes anyway)
                    self._parquet.close()
            if self.fmt == "xlsx":
                self._xlsx.discard()
        finally:
            super().discard()

    def _flush_parquet(self) -> None:
        assert self._parquet is not None
        columns = self._pending
        for name in self._numeric:  # "" in a number column is null
            if "" in columns[name]:  # (a search in C: most number columns hold none)
                columns[name] = [None if v == "" else v for v in columns[name]]
        schema = self.shape.schema
        arrays = [column(columns[field.name], field.type) for field in schema]
        self._parquet.write_table(pa.Table.from_arrays(arrays, schema=schema))
        self._count += self._held
        self._pending = {name: [] for name in self.names}
        self._held = 0


class ReportStream(AtomicFile):
    """The report (every skipped or failed file, with its reason), written as it grows.

    With ``labels`` (case -> pseudonym) it names no case, file or patient.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        excel: bool = False,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(path)
        self.labels = labels
        text = self._text_file(excel)
        self._writer = csv.DictWriter(text, fieldnames=REPORT_COLUMNS, lineterminator="\n")
        self._quoted = csv.DictWriter(  # (lines naming a file with a CR: see TableStream)
            text, fieldnames=REPORT_COLUMNS, lineterminator="\n", quoting=csv.QUOTE_ALL
        )
        self._writer.writeheader()

    @names_its_file
    def write(self, entries: Iterable[ReportEntry]) -> None:
        """Append report lines."""
        for entry in entries:
            line = entry.to_dict(self.labels)
            writer = self._quoted if _has_cr(list(line.values())) else self._writer
            writer.writerow(line)


def write_csv(
    path: str | os.PathLike[str],
    rows: Sequence[dict[str, Any]],
    *,
    excel: bool = False,
    shape: TableShape = CASE_TABLE,
) -> None:
    """The rows as CSV with the fixed columns (or ``shape``'s); ``excel`` adds a UTF-8 BOM so
    Excel shows Chinese. Made in memory (the rows are), and not written again when
    ``path`` holds it already."""
    with TableStream(path, "csv", excel=excel, shape=shape, in_memory=True) as stream:
        stream.write(rows)


def write_json(
    path: str | os.PathLike[str], rows: Sequence[dict[str, Any]], *, shape: TableShape = CASE_TABLE
) -> None:
    """The rows as a JSON list of records (same values as the CSV; numbers as numbers),
    made in memory as :func:`write_csv`'s."""
    with TableStream(path, "json", shape=shape, in_memory=True) as stream:
        stream.write(rows)


def write_parquet(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> None:
    """The rows as Parquet with :data:`PARQUET_SCHEMA` (one schema whatever the values)."""
    with TableStream(path, "parquet") as stream:
        stream.write(rows)


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
    with ReportStream(path, excel=excel, labels=labels) as stream:
        stream.write(entries)


def _has_cr(values: Sequence[Any]) -> bool:
    """Whether a text among ``values`` holds a carriage return."""
    try:
        return "\r" in "".join(values)  # (a column of text: one pass in C)
    except TypeError:
        return _cr_in(values)


_FORMULA_START: Final = re.compile(r"[=+\-@\t\r]")
_NUMBER: Final = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def formula_like(value: Any) -> bool:
    r"""Whether a spreadsheet opening a CSV takes ``value`` for a formula: text beginning
    with ``= + - @`` (or a tab or CR) that is not a number (OWASP, "CSV Injection";
    LibreOffice takes ``=``, Excel all four). A PatientName with only its ideographic
    group (``=张三``) is one, and so is an ImagePositionPatient like ``-125\-130\55``.

    Examples
    --------
    >>> [formula_like(v) for v in ("=张三^", "-125.3\\-130\\55", "-100", "1e-3", "CT", 7)]
    [True, True, False, False, False, False]
    """
    return (
        isinstance(value, str)
        and _FORMULA_START.match(value) is not None
        and _NUMBER.fullmatch(value) is None
    )


def _cr_in(values: Iterable[Any]) -> bool:
    """:func:`_has_cr` for the cells of a row: text, numbers, None (whose str() holds no CR)."""
    return "\r" in "".join(map(str, values))
