"""Tables as Excel workbooks (.xlsx) whose IDs stay text.

A CSV opened by double-click in Excel is read with type guessing: PatientID ``000456``
becomes 456, a 26-digit UID becomes ``1.23457E+25``, a date ``20240102`` a number. An
.xlsx cell carries its type, so here every value is written as a text cell - IDs, UIDs,
dates, names (Chinese included), values that look like numbers or formulas - except in
the columns a table declares numeric (:class:`~.tables.TableShape` ``integers`` and
``floats``: counts, ages, sizes), which are numbers. Text columns also get Excel's text
format ("@"), so that a value typed into them later stays text too.

Each sheet has its header row in bold and frozen, and column widths from the header and
the first 1,000 rows (a CJK character counts two). A sheet holds at most 1,048,576 rows,
header included (Excel's limit): a longer table goes on over sheets ``<name> (2)``,
``<name> (3)`` ..., each with the header. A text longer than Excel's 32,767 characters a
cell is cut there, and said (a warning in the log naming the column and row).

Written with XlsxWriter's constant-memory mode: each row goes to a temporary file as it
comes, so memory stays flat in the number of rows; the workbook is assembled at
:meth:`XlsxTable.close`.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import IO, Any, Final

__all__ = ["MAX_CELL_TEXT", "MAX_SHEET_ROWS", "XlsxTable", "sheet_name"]

log = logging.getLogger(__name__)

MAX_SHEET_ROWS: Final = 1_048_576  # Excel's rows a sheet, the header row included
MAX_CELL_TEXT: Final = 32_767  # Excel's characters a cell
_WIDTH_ROWS: Final = 1_000  # rows the column widths are taken from
_MIN_WIDTH, _MAX_WIDTH = 6, 60
_NOT_IN_SHEET_NAMES: Final = re.compile(r"[\[\]:*?/\\]")


def sheet_name(name: str, part: int = 1) -> str:
    """A sheet name Excel accepts (31 characters, none of ``[]:*?/\\``); ``part`` > 1 adds
    `` (2)`` and so on."""
    suffix = f" ({part})" if part > 1 else ""
    clean = _NOT_IN_SHEET_NAMES.sub("_", name).strip("'") or "table"
    return clean[: 31 - len(suffix)] + suffix


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


class XlsxTable:
    """One table written row by row into a workbook of one or more sheets.

    Parameters
    ----------
    target : file object
        Where the workbook goes (binary, writable); written at :meth:`close`.
    names : sequence of str
        The columns, in order.
    numeric : set of str
        The columns written as numbers (their values int or float; None and "" blank).
    name : str
        The sheet's name (:func:`sheet_name`).
    """

    def __init__(
        self, target: IO[bytes], names: Sequence[str], numeric: Iterable[str], name: str
    ) -> None:
        import xlsxwriter  # noqa: PLC0415 - only runs that write xlsx need it

        self.book = xlsxwriter.Workbook(
            target,
            {
                "constant_memory": True,
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "nan_inf_to_errors": True,
            },
        )
        self.names = list(names)
        self.numeric = [n in set(numeric) for n in self.names]
        self.name = name
        self.bold = self.book.add_format({"bold": True})
        self.text = self.book.add_format({"num_format": "@"})
        self.first: list[list[Any]] | None = []  # rows held until the widths are known
        self.widths: list[int] = []
        self.sheet: Any = None
        self.parts = 0
        self.row = 0  # the next row of the current sheet
        self.rows = 0  # data rows written, all sheets

    def write(self, rows: Iterable[Sequence[Any]]) -> None:
        """Append rows, each a sequence of values in column order."""
        for values in rows:
            if self.first is not None:
                self.first.append(list(values))
                if len(self.first) >= _WIDTH_ROWS:
                    self._start_writing()
            else:
                self._row(values)

    def close(self) -> None:
        """Write the workbook (an empty table: its header alone)."""
        if self.first is not None:
            self._start_writing()
        self.book.close()

    def _start_writing(self) -> None:
        held, self.first = self.first or [], None
        self.widths = [
            min(_MAX_WIDTH, max(_MIN_WIDTH, _width(name) + 2, *(
                _width(_shown(row[i])) + 1 for row in held if i < len(row)
            )))
            for i, name in enumerate(self.names)
        ]  # fmt: skip
        self._new_sheet()
        for values in held:
            self._row(values)

    def _new_sheet(self) -> None:
        self.parts += 1
        self.sheet = self.book.add_worksheet(sheet_name(self.name, self.parts))
        for column, (width, numeric) in enumerate(zip(self.widths, self.numeric, strict=True)):
            self.sheet.set_column(column, column, width, None if numeric else self.text)
        self.sheet.freeze_panes(1, 0)
        for column, name in enumerate(self.names):
            self.sheet.write_string(0, column, name, self.bold)
        self.row = 1

    def _row(self, values: Sequence[Any]) -> None:
        if self.row >= MAX_SHEET_ROWS:
            self._new_sheet()
        # (a cell's type - text or number - is what keeps an ID text; the column's text
        # format covers what is typed in later, so cells carry no format of their own:
        # 20 % faster for 2 million cells)
        write_string, write_number = self.sheet.write_string, self.sheet.write_number
        row, numeric = self.row, self.numeric
        for column, value in enumerate(values):
            if value is None or value == "":
                continue
            if numeric[column] and type(value) in (int, float):
                if math.isfinite(value):
                    write_number(row, column, value)
                else:  # NaN, infinity: no number Excel has
                    write_string(row, column, str(value))
                continue
            text = value if type(value) is str else _shown(value)
            if len(text) > MAX_CELL_TEXT:
                log.warning(
                    "%s: column %s, row %d: %d characters, cut to Excel's %d a cell",
                    self.name, self.names[column], self.rows + 1, len(text), MAX_CELL_TEXT,
                )  # fmt: skip
                text = text[:MAX_CELL_TEXT]
            write_string(row, column, text)
        self.row += 1
        self.rows += 1


def _shown(value: Any) -> str:
    """A value as its cell's text."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
