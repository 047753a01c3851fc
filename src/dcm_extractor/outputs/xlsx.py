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

What the file holds (ECMA-376 Part 1, SpreadsheetML; the parts a workbook needs and no
more): ``[Content_Types].xml``, ``_rels/.rels``, ``xl/workbook.xml`` (the sheets, in
order), ``xl/_rels/workbook.xml.rels``, ``xl/styles.xml`` (three cell formats: default,
bold for the header, text "@" - number format 49 - for text columns) and one
``xl/worksheets/sheetN.xml`` per sheet: the frozen pane, the column widths and styles,
then the rows. Text cells are inline strings (``t="inlineStr"``), so no shared-string
table has to be held; numbers are plain ``<v>`` values (``repr``: the double exactly).
Text is XML-escaped (``&<>``); characters XML 1.0 cannot hold (control characters, lone
surrogates) and carriage returns (which XML readers turn into line feeds) are written as
``_xHHHH_``, and a literal ``_xHHHH_`` in the text has its underscore escaped
(``_x005F_``), as ST_Xstring says; text with leading or trailing spaces keeps them
(``xml:space="preserve"``).

Written by this module rather than XlsxWriter: XlsxWriter spends ~5 us a cell (12 s for
the 2.1 million cells of 100,000 instance rows; benchmarks/index_query.py), this writer
under 1 us. The rows go to a temporary file per sheet as they come (memory stays flat),
in a temporary folder beside the workbook (``.<name>.<random>.tmp``: the folder a run's
lock clears when a killed run left it, ``runner/runlock.py``; not the system's temporary
folder, where a killed run's rows - patients' names - stayed), and
:meth:`XlsxTable.close` zips the parts into the target (:meth:`XlsxTable.discard`
removes them instead). tests/dcm_extractor/
test_xlsx.py reads the files with openpyxl and compares every cell with what XlsxWriter
(the reference) writes for the same rows.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any, Final

__all__ = ["MAX_CELL_TEXT", "MAX_SHEET_ROWS", "XlsxTable", "sheet_name"]

log = logging.getLogger(__name__)

MAX_SHEET_ROWS: Final = 1_048_576  # Excel's rows a sheet, the header row included
MAX_CELL_TEXT: Final = 32_767  # Excel's characters a cell
_WIDTH_ROWS: Final = 1_000  # rows the column widths are taken from
_MIN_WIDTH, _MAX_WIDTH = 6, 60
_NOT_IN_SHEET_NAMES: Final = re.compile(r"[\[\]:*?/\\]")
_MAIN: Final = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELATIONSHIPS: Final = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE: Final = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD: Final = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# what XML text cannot hold as it is: markup characters, characters XML 1.0 forbids,
# and text that reads as an ST_Xstring escape
_SPECIAL: Final = re.compile(
    r"[&<>\x00-\x08\x0b\x0c\r\x0e-\x1f\ud800-\udfff\ufffe\uffff]|_x[0-9A-Fa-f]{4}_"
)
_ENTITIES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_STYLES: Final = (
    f'{_HEAD}<styleSheet xmlns="{_MAIN}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
    "</cellStyleXfs>"
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_BOLD, _TEXT = 1, 2  # cellXfs indexes


def sheet_name(name: str, part: int = 1) -> str:
    """A sheet name Excel accepts (31 characters, none of ``[]:*?/\\``); ``part`` > 1 adds
    `` (2)`` and so on."""
    suffix = f" ({part})" if part > 1 else ""
    clean = _NOT_IN_SHEET_NAMES.sub("_", name).strip("'") or "table"
    return clean[: 31 - len(suffix)] + suffix


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _escape_one(match: re.Match[str]) -> str:
    found = match.group()
    if found in _ENTITIES:
        return _ENTITIES[found]
    if len(found) > 1:  # a literal _xHHHH_: its underscore escaped
        return "_x005F_" + found[1:]
    return f"_x{ord(found):04X}_"


def _escape(text: str) -> str:
    return _SPECIAL.sub(_escape_one, text) if _SPECIAL.search(text) else text


def _text_cell(ref: str, text: str, style: str = "") -> str:
    space = ' xml:space="preserve"' if text[:1].isspace() or text[-1:].isspace() else ""
    return f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{_escape(text)}</t></is></c>'


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
    beside : Path, optional
        The folder the sheets are spooled in until :meth:`close` (in a temporary folder
        of their own): the workbook's. Default: the system's temporary folder.
    """

    def __init__(
        self,
        target: IO[bytes],
        names: Sequence[str],
        numeric: Iterable[str],
        name: str,
        beside: Path | None = None,
    ) -> None:
        self.target = target
        self.names = list(names)
        wanted = set(numeric)
        self.numeric = [n in wanted for n in self.names]
        self.letters = [_column_letters(i) for i in range(len(self.names))]
        self.name = name
        self.first: list[list[Any]] | None = []  # rows held until the widths are known
        self.widths: list[int] = []
        self.folder = Path(tempfile.mkdtemp(prefix=f".{name}.xlsx.", suffix=".tmp", dir=beside))
        self.sheets: list[tuple[str, Path]] = []
        self.sheet: IO[str] | None = None
        self.row = 0  # the row number last written in the current sheet (1: the header)
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
        """Write the workbook (an empty table: its header alone) into the target."""
        try:
            if self.first is not None:
                self._start_writing()
            self._end_sheet()
            self._zip()
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the spooled sheets without writing the workbook (a failed run's, a full
        disk's); never raises. (A sheet left open would be flushed by the garbage
        collector, into a full disk: Python's "Exception ignored" lines.)"""
        sheet, self.sheet = self.sheet, None
        if sheet is not None:
            with contextlib.suppress(OSError):  # (closed even when its last flush fails)
                sheet.close()
        shutil.rmtree(self.folder, ignore_errors=True)

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
        self._end_sheet()
        number = len(self.sheets) + 1
        path = self.folder / f"sheet{number}.xml"
        self.sheets.append((sheet_name(self.name, number), path))
        sheet = self.sheet = path.open("w", encoding="utf-8", errors="surrogatepass")
        selected = ' tabSelected="1"' if number == 1 else ""
        columns = "".join(
            f'<col min="{i + 1}" max="{i + 1}" width="{w + 0.7109375}" customWidth="1"'
            + ("" if numeric else f' style="{_TEXT}"')
            + "/>"
            for i, (w, numeric) in enumerate(zip(self.widths, self.numeric, strict=True))
        )
        header = "".join(
            _text_cell(f"{letters}1", name, f' s="{_BOLD}"')
            for letters, name in zip(self.letters, self.names, strict=True)
        )
        sheet.write(
            f'{_HEAD}<worksheet xmlns="{_MAIN}" xmlns:r="{_RELATIONSHIPS}">'
            f'<sheetViews><sheetView{selected} workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft"/></sheetView></sheetViews>'
            '<sheetFormatPr defaultRowHeight="15"/>'
            f"<cols>{columns}</cols><sheetData>"
            f'<row r="1">{header}</row>'
        )
        self.row = 1

    def _end_sheet(self) -> None:
        if self.sheet is not None:
            self.sheet.write("</sheetData></worksheet>")
            self.sheet.close()
            self.sheet = None

    def _row(self, values: Sequence[Any]) -> None:
        if self.row >= MAX_SHEET_ROWS:
            self._new_sheet()
        self.row += 1
        row, numeric, letters = str(self.row), self.numeric, self.letters
        cells = [f'<row r="{row}">']
        for column, value in enumerate(values):
            if value is None or value == "":
                continue
            ref = letters[column] + row
            if numeric[column] and type(value) in (int, float):
                if math.isfinite(value):
                    cells.append(f'<c r="{ref}"><v>{value!r}</v></c>')
                else:  # NaN, infinity: no number Excel has
                    cells.append(_text_cell(ref, str(value)))
                continue
            text = value if type(value) is str else _shown(value)
            if len(text) > MAX_CELL_TEXT:
                log.warning(
                    "%s: column %s, row %d: %d characters, cut to Excel's %d a cell",
                    self.name, self.names[column], self.rows + 1, len(text), MAX_CELL_TEXT,
                )  # fmt: skip
                text = text[:MAX_CELL_TEXT]
            cells.append(_text_cell(ref, text))
        cells.append("</row>")
        assert self.sheet is not None
        self.sheet.write("".join(cells))
        self.rows += 1

    def _zip(self) -> None:
        sheets = "".join(
            f'<sheet name="{_escape(name).replace(chr(34), "&quot;")}" sheetId="{i}" '
            f'r:id="rId{i}"/>'
            for i, (name, _) in enumerate(self.sheets, start=1)
        )
        links = "".join(
            f'<Relationship Id="rId{i}" Type="{_RELATIONSHIPS}/worksheet" '
            f'Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, len(self.sheets) + 1)
        )
        styles_id = len(self.sheets) + 1
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for i in range(1, len(self.sheets) + 1)
        )
        parts = {
            "[Content_Types].xml": (
                f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                'content-types"><Default Extension="rels" ContentType="application/'
                'vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                '<Override PartName="/xl/workbook.xml" ContentType="application/'
                'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                '<Override PartName="/xl/styles.xml" ContentType="application/'
                'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
                f"{overrides}</Types>"
            ),
            "_rels/.rels": (
                f'{_HEAD}<Relationships xmlns="{_PACKAGE}"><Relationship Id="rId1" '
                f'Type="{_RELATIONSHIPS}/officeDocument" Target="xl/workbook.xml"/>'
                "</Relationships>"
            ),
            "xl/workbook.xml": (
                f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_RELATIONSHIPS}">'
                f"<sheets>{sheets}</sheets></workbook>"
            ),
            "xl/_rels/workbook.xml.rels": (
                f'{_HEAD}<Relationships xmlns="{_PACKAGE}">{links}'
                f'<Relationship Id="rId{styles_id}" Type="{_RELATIONSHIPS}/styles" '
                'Target="styles.xml"/></Relationships>'
            ),
            "xl/styles.xml": _STYLES,
        }
        with zipfile.ZipFile(self.target, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as book:
            for name, text in parts.items():
                book.writestr(name, text)
            for i, (_, path) in enumerate(self.sheets, start=1):
                book.write(path, f"xl/worksheets/sheet{i}.xml")


def _shown(value: Any) -> str:
    """A value as its cell's text."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
