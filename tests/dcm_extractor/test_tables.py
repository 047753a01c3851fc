"""Streamed tables equal the tables written in one go, whatever the batches; atomic files."""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.utils.escape import unescape

from dcm_extractor.outputs import tables
from dcm_extractor.outputs.tables import PARQUET_SCHEMA, TableStream
from dcm_extractor.sources.rows import FIXED_COLUMNS

INTEGERS = {field.name for field in PARQUET_SCHEMA if pa.types.is_integer(field.type)}
text = st.one_of(st.none(), st.text(alphabet="0123456789AZaz 张伟王芳,\"'\n\r^=", max_size=8))
number = st.one_of(st.none(), st.integers(min_value=-(2**40), max_value=2**40))
row = st.fixed_dictionaries({c: number if c in INTEGERS else text for c in FIXED_COLUMNS})


def reference_csv(rows: list[dict[str, object]], excel: bool) -> bytes:
    """The CSV as the csv module writes it in one go."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n" if excel else "\n")
    writer.writerow(FIXED_COLUMNS)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else str(r.get(c)) for c in FIXED_COLUMNS])
    return buffer.getvalue().encode("utf-8-sig" if excel else "utf-8")


def batches(rows: list[dict[str, object]], cuts: list[int]) -> list[list[dict[str, object]]]:
    edges = sorted({0, len(rows), *(c % (len(rows) + 1) for c in cuts)})
    return [rows[a:b] for a, b in itertools.pairwise(edges)]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(row, max_size=12), cuts=st.lists(st.integers(0, 12), max_size=4))
def test_streams_equal_one_go_writes(
    tmp_path: Path, rows: list[dict[str, object]], cuts: list[int]
) -> None:
    parts = batches(rows, cuts)
    for excel in (False, True):
        with TableStream(tmp_path / "t.csv", "csv", excel=excel) as stream:
            for part in parts:
                stream.write(part)
        assert (tmp_path / "t.csv").read_bytes() == reference_csv(rows, excel)
    with TableStream(tmp_path / "t.json", "json") as stream:
        for part in parts:
            stream.write(part)
    records = [{c: r.get(c) for c in FIXED_COLUMNS} for r in rows]
    expected = json.dumps(records, ensure_ascii=False, indent=1) + "\n"
    assert (tmp_path / "t.json").read_text(encoding="utf-8") == expected
    with TableStream(tmp_path / "t.parquet", "parquet") as stream:
        for part in parts:
            stream.write(part)
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.schema.equals(PARQUET_SCHEMA)
    assert table.to_pylist() == records
    with TableStream(tmp_path / "t.xlsx", "xlsx") as stream:
        for part in parts:
            stream.write(part)
    sheet = openpyxl.load_workbook(tmp_path / "t.xlsx")["t"]
    # (OOXML writes a carriage return as _x000D_; openpyxl leaves inline text escaped)
    cells = [
        [unescape(c.value) if isinstance(c.value, str) else c.value for c in row]
        for row in sheet.iter_rows(max_row=1 + len(rows), max_col=len(FIXED_COLUMNS))
    ]
    assert cells[0] == FIXED_COLUMNS
    for record, back in zip(records, cells[1:], strict=True):
        assert back == [None if v in (None, "") else v for v in record.values()]


def test_parquet_is_written_in_row_groups_of_one_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tables, "PARQUET_ROW_GROUP", 4)
    rows = [{"PatientID": f"{i:06d}", "ProjectID": i} for i in range(10)]
    with TableStream(tmp_path / "t.parquet", "parquet") as stream:
        for r in rows:
            stream.write([r])
    meta = pq.ParquetFile(tmp_path / "t.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [4, 4, 2]
    back = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert [r["PatientID"] for r in back] == [f"{i:06d}" for i in range(10)]  # zeros kept


def test_a_failed_stream_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "all_cases.csv"
    target.write_text("previous run\n", encoding="utf-8")
    with pytest.raises(RuntimeError), TableStream(target, "csv") as stream:
        stream.write([{"PatientID": "1"}])
        raise RuntimeError("the run died")
    assert target.read_text(encoding="utf-8") == "previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["all_cases.csv"]  # no temp left
    with pytest.raises(ValueError, match="unknown table format"):
        TableStream(target, "ods")  # type: ignore[arg-type]
