"""Excel workbooks whose IDs stay text: read back with openpyxl (another library than
the writer), against the CSV of the same run; sheets split at Excel's row limit; and,
where Debian's LibreOffice is installed, converted by it to CSV with the IDs intact."""

from __future__ import annotations

import csv
import io
import logging
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import openpyxl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from openpyxl.utils.escape import unescape

from dcm_extractor.extractor import main
from dcm_extractor.outputs import xlsx
from dcm_extractor.outputs.tables import CASE_TABLE, SERIES_TABLE, TableStream
from dcm_extractor.outputs.xlsx import MAX_CELL_TEXT, sheet_name
from dcm_extractor.sample import generate_dicom_dataset


def read_book(path: Path) -> dict[str, list[list[Any]]]:
    """Every sheet's cells as openpyxl reads them: (value, type) per cell."""
    book = openpyxl.load_workbook(path, read_only=False)
    return {
        sheet.title: [[(c.value, c.data_type) for c in row] for row in sheet.iter_rows()]
        for sheet in book.worksheets
    }


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.reader(stream))


@pytest.fixture(scope="module")
def run_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("xlsx")
    sample = generate_dicom_dataset(root / "sample", bulk_cases=4)
    out = root / "out"
    argv = ["-d", str(sample.cases_root), "-o", str(out), "--merge-all", "--series"]
    assert main([*argv, "--format", "csv,xlsx", "--log", str(root / "run.log")]) == 0
    return out


@pytest.mark.parametrize(
    ("table", "shape"), [("all_cases", CASE_TABLE), ("all_series", SERIES_TABLE)]
)
def test_every_cell_is_the_csvs_text_ids_as_text_counts_as_numbers(
    run_out: Path, table: str, shape: Any
) -> None:
    rows = read_csv(run_out / f"{table}.csv")
    book = openpyxl.load_workbook(run_out / f"{table}.xlsx")
    assert book.sheetnames == [table]
    sheet = book[table]
    assert sheet.freeze_panes == "A2"  # the header stays in view
    cells = [[(c.value, c.data_type) for c in row] for row in sheet.iter_rows()]
    assert [v for v, _ in cells[0]] == rows[0]  # the header
    assert all(sheet.cell(1, i + 1).font.b for i in range(len(rows[0])))
    assert len(cells) == len(rows) and len(rows) > 3
    numeric = shape.integers | shape.floats
    leading_zeros = 0
    for csv_row, xlsx_row in zip(rows[1:], cells[1:], strict=True):
        for name, text, (value, kind) in zip(rows[0], csv_row, xlsx_row, strict=True):
            if text == "":
                assert value is None, name
            elif name in numeric:
                assert kind == "n" and value == (float(text) if name in shape.floats else int(text))
            else:  # IDs, UIDs, dates, names: text cells holding the CSV's text exactly
                assert (kind, value) == ("s", text), name
                leading_zeros += name == "PatientID" and text.startswith("0")
    if table == "all_cases":
        assert leading_zeros > 0  # the sample's PatientIDs with leading zeros stayed so
    widths = {}  # column number -> width (a <col> element may span several columns)
    for dimension in sheet.column_dimensions.values():
        for number in range(dimension.min, dimension.max + 1):
            widths[number] = dimension.width
    assert all(widths[i + 1] >= len(name) for i, name in enumerate(rows[0]))


def test_chinese_formula_like_and_long_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [
        {"PatientID": "000456", "PatientName": "张三^李四", "StudyDate": "20240102",
         "ProjectID": 7, "ImageCount": 12,
         "StudyInstanceUID": "1.2.840.10008.5.1.4.1.1.2.12345678901234567890"},
        {"PatientID": "=HYPERLINK(\"http://x\")", "PatientName": "+1-2", "ProjectID": None,
         "Manufacturer": "x" * (MAX_CELL_TEXT + 5)},
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING), TableStream(tmp_path / "t.xlsx", "xlsx") as stream:
        stream.write(rows)
    assert "Manufacturer, row 2" in caplog.text and "cut to Excel's 32767" in caplog.text
    sheet = openpyxl.load_workbook(tmp_path / "t.xlsx")["t"]
    header = [c.value for c in sheet[1]]
    first = {h: (c.value, c.data_type) for h, c in zip(header, sheet[2], strict=True)}
    assert first["PatientID"] == ("000456", "s") and first["PatientName"] == ("张三^李四", "s")
    assert first["StudyDate"] == ("20240102", "s") and first["ImageCount"] == (12, "n")
    assert first["StudyInstanceUID"][0] == rows[0]["StudyInstanceUID"]
    second = {h: (c.value, c.data_type) for h, c in zip(header, sheet[3], strict=True)}
    assert second["PatientID"] == (rows[1]["PatientID"], "s")  # text, not a formula
    assert second["PatientName"] == ("+1-2", "s")
    assert second["Manufacturer"][0] == "x" * MAX_CELL_TEXT
    with zipfile.ZipFile(tmp_path / "t.xlsx") as book:
        assert not any(b"<f>" in book.read(n) for n in book.namelist())  # no formula anywhere


def test_query_says_a_cut_cell_as_a_warning_line(
    run_out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dcm-extract query -o x.xlsx` cutting a value to Excel's limit says so on stderr as
    both tools say warnings (`dcm-extract: warning: ...`), once, and leaves no handler."""
    from dcm_extractor.cli import main as cli_main

    package = logging.getLogger("dcm_extractor")
    handlers = list(package.handlers)
    sql = f"SELECT repeat('a', {MAX_CELL_TEXT + 10}) AS long_text, 'short' AS other"
    assert cli_main(["query", str(run_out), sql, "-o", str(tmp_path / "q.xlsx")]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"dcm-extract: warning: q: column long_text, row 1: {MAX_CELL_TEXT + 10} characters, "
        f"cut to Excel's {MAX_CELL_TEXT} a cell"
    ]
    assert package.handlers == handlers
    sheet = openpyxl.load_workbook(tmp_path / "q.xlsx")["q"]
    assert sheet["A2"].value == "a" * MAX_CELL_TEXT and sheet["B2"].value == "short"


def test_a_table_longer_than_a_sheet_goes_on_in_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx, "MAX_SHEET_ROWS", 4)  # Excel's 1,048,576, made small
    rows = [{"PatientID": f"{i:06d}", "ImageCount": i} for i in range(7)]
    with TableStream(tmp_path / "all_cases.xlsx", "xlsx") as stream:
        stream.write(rows[:2])
        stream.write(rows[2:])
    book = read_book(tmp_path / "all_cases.xlsx")
    assert list(book) == ["all_cases", "all_cases (2)", "all_cases (3)"]
    ids = []
    for cells in book.values():
        header = [value for value, _ in cells[0]]
        assert header[0] == "ProjectID"  # each sheet has the header
        ids += [row[header.index("PatientID")][0] for row in cells[1:]]
        assert len(cells) <= 4
    assert ids == [r["PatientID"] for r in rows]


def test_sheet_names() -> None:
    assert sheet_name("all_series") == "all_series"
    assert sheet_name("a/b:c[1]*?") == "a_b_c_1___"
    assert sheet_name("x" * 40, 12) == "x" * 26 + " (12)"


@pytest.mark.skipif(
    shutil.which("soffice") is None, reason="no LibreOffice (Debian: libreoffice-calc)"
)
def test_libreoffice_reads_the_ids_as_text(run_out: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        ["soffice", "--headless", "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76",
         "--outdir", str(tmp_path), str(run_out / "all_cases.xlsx")],
        capture_output=True, timeout=300, check=False,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    converted = list(csv.reader(io.StringIO((tmp_path / "all_cases.csv").read_text("utf-8"))))
    original = read_csv(run_out / "all_cases.csv")
    column = original[0].index("PatientID")
    assert [r[column] for r in converted] == [r[column] for r in original]


def reference_book(path: Path, names: list[str], numeric: set[str], rows: list[list[Any]]) -> None:
    """The same table as XlsxWriter writes it (the library this writer is checked against)."""
    import xlsxwriter

    options = {"strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False}
    book = xlsxwriter.Workbook(str(path), options)
    sheet = book.add_worksheet(path.stem)
    for column, name in enumerate(names):
        sheet.write_string(0, column, name)
    for r, values in enumerate(rows, start=1):
        for column, value in enumerate(values):
            if value is None or value == "":
                continue
            if names[column] in numeric and isinstance(value, int | float):
                sheet.write_number(r, column, value)
            else:
                sheet.write_string(r, column, str(value))
    book.close()


def cells_of(path: Path) -> list[list[tuple[Any, str]]]:
    sheet = openpyxl.load_workbook(path).worksheets[0]
    return [
        [(unescape(c.value) if isinstance(c.value, str) else c.value, c.data_type) for c in row]
        for row in sheet.iter_rows()
    ]


TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["000456", "=1+1", " lead", "trail ", "_x0041_", "a\r\nb", "\x01\x1f", "张三^李四", "<&>"]
)
ESCAPE_LIKE = re.compile(r"_x[0-9A-Fa-f]{4}_")
NAMES, NUMERIC = ["PatientID", "ImageCount", "PatientName", "ZExtent"], {"ImageCount", "ZExtent"}
ROWS = st.lists(
    st.tuples(
        st.none() | TEXT, st.none() | st.integers(-(2**50), 2**50),
        st.none() | TEXT, st.none() | st.floats(-1e300, 1e300),  # (XlsxWriter: 1.8e308 -> inf)
    ),
    max_size=15,
)  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=ROWS)
@example(rows=[(None, None, None, 1000000000000000.5)])  # XlsxWriter: "1000000000000000"
def test_every_cell_equals_what_xlsxwriter_writes(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    ours, theirs = tmp_path / "ours.xlsx", tmp_path / "theirs.xlsx"
    with ours.open("wb") as target:
        table = xlsx.XlsxTable(target, NAMES, NUMERIC, "ours")
        table.write([list(r) for r in rows])
        table.close()
    got = cells_of(ours)
    expected = [[(name, "s") for name in NAMES]] + [
        [(None, "n") if v in (None, "") else (v, "n" if NAMES[i] in NUMERIC else "s")
         for i, v in enumerate(r)]
        for r in rows
    ]  # fmt: skip
    width = len(NAMES)
    assert [row + [(None, "n")] * (width - len(row)) for row in got] == expected[: len(got)]
    assert all(all(v in (None, "") for v in r) for r in rows[len(got) - 1 :])  # blank rows
    with zipfile.ZipFile(ours) as book:  # every part well-formed XML
        for name in book.namelist():
            ElementTree.fromstring(book.read(name))
    # the reference: XlsxWriter, where it writes the text as given (it leaves a literal
    # _xHHHH_ unescaped, so a reader decodes it: ours escapes it, as ST_Xstring says)
    if not any(isinstance(v, str) and ESCAPE_LIKE.search(v) for r in rows for v in r):
        reference_book(theirs, NAMES, NUMERIC, [list(r) for r in rows])
        # (XlsxWriter writes 16 significant digits, this writer repr's 17: the same double
        # to 1e-15, ours exactly)
        flat = [cell for row in got for cell in row]
        reference = [cell for row in cells_of(theirs) for cell in row]
        assert [kind for _, kind in flat] == [kind for _, kind in reference]
        for (mine, _), (its, _) in zip(flat, reference, strict=True):
            # (a whole number XlsxWriter writes without a point reads back as an int)
            number = isinstance(its, int | float) and not isinstance(its, bool)
            assert mine == (pytest.approx(float(its), rel=1e-15) if number else its)


def test_excel_csv_cells_a_spreadsheet_takes_for_formulas_are_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PatientName of only its ideographic group (``=张三^``) and a description like
    ``-30 deg``: in an --excel CSV a spreadsheet takes them for formulas (LibreOffice,
    below, makes the ``=`` one a formula). The CSV keeps them as read, the run says which
    tables and columns hold such cells and points at xlsx, where they stay text."""
    import pydicom
    from pydicom.data import get_testdata_file

    from dcm_extractor.cli import main as cli_main

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]
    ds.SpecificCharacterSet = "GB18030"
    ds.PatientName = "=张三^"
    ds.StudyDescription = "-30 deg"
    (tmp_path / "d" / "c1").mkdir(parents=True)
    ds.save_as(tmp_path / "d" / "c1" / "IM1.dcm")
    out = tmp_path / "out"
    argv = [
        "-d",
        str(tmp_path / "d"),
        "--merge-all",
        "--series",
        "-q",
        "--log",
        str(tmp_path / "l"),
    ]
    assert cli_main([*argv, "-o", str(out), "--excel", "--format", "csv,xlsx"]) == 0
    err = capsys.readouterr().err
    assert err.count("--excel: cells begin with = + - or @") == 1
    assert "all_cases.csv: PatientName 1" in err and "all_series.csv: StudyDescription 1" in err
    assert "each case's tables: PatientName 1" in err and "--format xlsx" in err
    rows = read_csv(out / "all_cases.csv")
    assert rows[1][rows[0].index("PatientName")] == "=张三^"  # as read
    book = read_book(out / "all_cases.xlsx")["all_cases"]
    column = [value for value, _ in book[0]].index("PatientName")
    assert book[1][column] == ("=张三^", "s")
    assert cli_main([*argv, "-o", str(tmp_path / "plain")]) == 0
    assert "warning" not in capsys.readouterr().err  # (not asked for Excel: not said)
    if shutil.which("soffice") is None:
        pytest.skip("no LibreOffice (Debian: libreoffice-calc) to show the formula")
    done = subprocess.run(
        ["soffice", "--headless", "--infilter=CSV:44,34,76", "--convert-to", "xlsx",
         "--outdir", str(tmp_path / "lo"), str(out / "all_cases.csv")],
        capture_output=True, timeout=300, check=False,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    converted = read_book(tmp_path / "lo" / "all_cases.xlsx")
    (sheet,) = converted.values()
    assert sheet[1][column][1] == "f"  # LibreOffice made it a formula
