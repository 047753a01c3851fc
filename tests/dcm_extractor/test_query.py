"""dcm-extract query: SQL over an output folder's tables (DuckDB), from CSV and Parquet
alike, IDs as text and counts as numbers; results printed or written; errors in one line."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dcm_extractor.cli import main as cli_main
from dcm_extractor.extractor import main
from dcm_extractor.outputs.query import (
    NUMBER_COLUMNS,
    QueryError,
    query,
    query_to_file,
    views_of,
)
from dcm_extractor.outputs.studies import STUDY_TABLE
from dcm_extractor.outputs.tables import CASE_TABLE, INSTANCE_TABLE, SERIES_TABLE
from dcm_extractor.sample import generate_dicom_dataset


@pytest.fixture(scope="module")
def outs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same sample extracted twice: CSV tables only, and Parquet tables (with CSV)."""
    root = tmp_path_factory.mktemp("query")
    sample = generate_dicom_dataset(root / "sample", bulk_cases=4)
    found = {}
    for name, formats in (("csv", "csv"), ("parquet", "csv,parquet")):
        out = root / name
        argv = ["-d", str(sample.cases_root), "-o", str(out), "--merge-all", "--series"]
        assert main([*argv, "--format", formats, "--log", str(root / f"{name}.log")]) == 0
        found[name] = out
    return found


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.DictReader(stream))


def test_questions_stay_offline(outs: dict[str, Path]) -> None:
    """A remote path is refused: DuckDB never fetches an extension (httpfs) for it."""
    for remote in ("https://example.com/x.parquet", "s3://bucket/x.csv"):
        with pytest.raises(QueryError, match="requires the extension httpfs to be loaded"):
            query(outs["parquet"], f"SELECT * FROM read_parquet('{remote}')")


def test_the_views_read_parquet_where_written_else_csv(outs: dict[str, Path]) -> None:
    assert {v: p.name for v, p in views_of(outs["csv"]).items()} == {
        "cases": "all_cases.csv", "series": "all_series.csv", "studies": "all_studies.csv",
        "problems": "extraction_report.csv",
    }  # fmt: skip
    assert views_of(outs["parquet"])["cases"].name == "all_cases.parquet"


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_answers_equal_the_tables_ids_as_text(outs: dict[str, Path], kind: str) -> None:
    out = outs[kind]
    rows = read_csv(out / "all_cases.csv")
    table = query(out, "SELECT FileName, PatientID, StudyDate, ImageCount FROM cases")
    got = {r["FileName"]: r for r in table.to_pylist()}
    assert len(got) == len(rows)
    for row in rows:
        answer = got[row["FileName"]]
        assert answer["PatientID"] == row["PatientID"]  # 000123 stays 000123
        assert answer["StudyDate"] == row["StudyDate"]
        assert answer["ImageCount"] == int(row["ImageCount"])  # a number, summable
    series = read_csv(out / "all_series.csv")
    by_modality = query(out, "SELECT Modality, sum(ImageCount) AS n FROM series GROUP BY ALL")
    expected: dict[str, int] = {}
    for row in series:
        expected[row["Modality"]] = expected.get(row["Modality"], 0) + int(row["ImageCount"])
    assert {r["Modality"]: r["n"] for r in by_modality.to_pylist()} == expected
    problems = query(out, "SELECT reason, count(*) AS n FROM problems GROUP BY ALL")
    report = read_csv(out / "extraction_report.csv")
    assert sum(r["n"] for r in problems.to_pylist()) == len(report)


def test_the_command_line_prints_and_writes(
    outs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = outs["csv"]
    sql = "SELECT PatientID, PatientName, ImageCount FROM cases ORDER BY FileName"
    assert cli_main(["query", str(out), sql]) == 0
    printed = capsys.readouterr().out.splitlines()
    rows = sorted(read_csv(out / "all_cases.csv"), key=lambda r: r["FileName"])
    assert printed[0].split() == ["PatientID", "PatientName", "ImageCount"]
    assert [line.split()[0] for line in printed[1:-1]] == [r["PatientID"] for r in rows]
    assert printed[-1] == f"({len(rows)} rows)"
    # the third column starts at one terminal column on every line, Chinese names or not
    starts = {display_width(line[: line.rindex(line.split()[-1])]) for line in printed[:-1]}
    assert len(starts) == 1 and any("孙" in line or "王" in line for line in printed)
    for suffix in (".csv", ".parquet", ".json", ".xlsx"):
        target = tmp_path / f"answer{suffix}"
        assert cli_main(["query", str(out), sql, "-o", str(target)]) == 0
        assert f"{target}: {len(rows)} rows" in capsys.readouterr().out
        if suffix == ".csv":
            back = [r["PatientID"] for r in read_csv(target)]
        elif suffix == ".parquet":
            back = pq.read_table(target).column("PatientID").to_pylist()
        elif suffix == ".json":
            lines = target.read_text(encoding="utf-8").splitlines()
            back = [json.loads(line)["PatientID"] for line in lines]
        else:
            sheet = openpyxl.load_workbook(target).active
            cells = list(sheet.iter_rows(min_row=2))
            assert all(c[0].data_type == "s" and c[2].data_type == "n" for c in cells)
            back = [c[0].value for c in cells]
        assert back == [r["PatientID"] for r in rows], suffix
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left


def test_excel_csv_begins_with_the_byte_order_mark(
    outs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`query -o x.csv --excel`, as the run's --excel: Excel reads the CSV as UTF-8 only
    with the BOM (Chinese names otherwise mojibake); the same rows as without it."""
    sql = "SELECT PatientID, PatientName FROM cases ORDER BY FileName"
    plain, marked = tmp_path / "plain.csv", tmp_path / "marked.csv"
    assert cli_main(["query", str(outs["csv"]), sql, "-o", str(plain)]) == 0
    assert cli_main(["query", str(outs["csv"]), sql, "-o", str(marked), "--excel"]) == 0
    assert not plain.read_bytes().startswith(b"\xef\xbb\xbf")
    assert marked.read_bytes() == b"\xef\xbb\xbf" + plain.read_bytes()
    assert any("孙" in r["PatientName"] or "王" in r["PatientName"] for r in read_csv(marked))
    capsys.readouterr()
    for how in ([], ["-o", str(tmp_path / "a.parquet")]):
        assert cli_main(["query", str(outs["csv"]), sql, "--excel", *how]) == 2
        assert "--excel: give -o FILE.csv" in capsys.readouterr().err
    assert not (tmp_path / "a.parquet").exists()
    with pytest.raises(QueryError, match=r"byte order mark for Excel is for a \.csv file"):
        query_to_file(outs["csv"], sql, tmp_path / "b.json", excel=True)


FULL_DISK_QUERY = """
import resource, signal, sys
from dcm_extractor.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (300, resource.RLIM_INFINITY))
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json", ".xlsx"])
def test_a_full_disk_under_a_query_answer_is_one_line_naming_it(
    outs: dict[str, Path], tmp_path: Path, suffix: str
) -> None:
    """`query -o` onto a full disk (a file-size limit: EFBIG for ENOSPC) said DuckDB's
    "IO Error: Async write failed for range [offset=0, size=...]: {"exception_type": ...}"
    naming the temporary file, or "[Errno 27] File too large" naming none (the workbook);
    now the file asked for and the system's words, and nothing left."""
    answer = tmp_path / f"answer{suffix}"
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK_QUERY, "query", str(outs["parquet"]),
         "SELECT * FROM cases", "-o", str(answer)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == f"dcm-extract: error: {answer}: File too large\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_question_loads_no_reading_code(outs: dict[str, Path], kind: str) -> None:
    """`dcm-extract query` imports DuckDB, not the extraction's pydicom and pyarrow (half
    its cold start): in a fresh process, over CSV and over Parquet tables, the answer is
    right (a number: CSV views cast the numeric columns) and neither was loaded."""
    script = (
        "import sys\n"
        "from dcm_extractor.cli import main\n"
        "code = main(['query', sys.argv[1], 'SELECT sum(ImageCount) AS n, "
        "typeof(sum(ImageCount)) AS kind FROM cases'])\n"
        "print(sorted(m for m in ('pydicom', 'pyarrow') if m in sys.modules))\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(outs[kind])], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    images = sum(int(row["ImageCount"]) for row in read_csv(outs[kind] / "all_cases.csv"))
    assert lines[1].split() == [str(images), "HUGEINT"]  # (a sum of BIGINT: a number)
    assert lines[-1] == "[]"


def test_the_views_number_columns_are_the_tables() -> None:
    """The query's own list of numeric columns (it does not import the tables' modules)
    is what the tables write as numbers."""
    shapes = {"cases": CASE_TABLE, "series": SERIES_TABLE, "studies": STUDY_TABLE,
              "instances": INSTANCE_TABLE}  # fmt: skip
    assert set(NUMBER_COLUMNS) == set(shapes)
    for view, shape in shapes.items():
        assert NUMBER_COLUMNS[view] == (shape.integers, shape.floats), view


def test_errors_are_one_line(
    outs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["query", str(tmp_path / "nowhere"), "SELECT 1"]) == 1
    assert capsys.readouterr().err.strip().endswith("no such output folder")
    assert cli_main(["query", str(tmp_path), "SELECT 1"]) == 1
    assert "no tables to query" in capsys.readouterr().err
    assert cli_main(["query", str(outs["csv"]), "SELEC 1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "syntax error" in err and "Traceback" not in err
    assert cli_main(["query", str(outs["csv"]), "SELECT PatientNam FROM cases"]) == 1
    err = capsys.readouterr().err  # DuckDB's offer of names is kept on the one line
    assert err.count("\n") == 1 and '(Candidate bindings: "PatientName"' in err
    assert cli_main(["query", str(outs["csv"]), "SELECT * FROM serie"]) == 1
    assert '(Did you mean "series"?)' in capsys.readouterr().err
    assert cli_main(["query", str(outs["csv"]), "SELECT 1", "-o", str(tmp_path / "a.txt")]) == 2
    assert "give a .csv, .parquet, .json, .xlsx file" in capsys.readouterr().err
    target = tmp_path / "kept.csv"
    target.write_text("earlier answer\n", encoding="utf-8")
    assert cli_main(["query", str(outs["csv"]), "SELECT * FROM nope", "-o", str(target)]) == 1
    assert target.read_text(encoding="utf-8") == "earlier answer\n"  # a failed query keeps it
    with pytest.raises(QueryError, match="nope"):
        query(outs["csv"], "SELECT * FROM nope")
    capsys.readouterr()
    copy = tmp_path / "copy.csv"
    for statement in ("DROP VIEW cases", f"COPY cases TO '{copy}'", "SELECT 1; SELECT 2"):
        for how in ([], ["--paths"], ["-o", str(tmp_path / "answer.csv")]):
            assert cli_main(["query", str(outs["csv"]), statement, *how]) == 1
            assert "the SQL must be one question" in capsys.readouterr().err
        with pytest.raises(QueryError, match="one question"):
            query(outs["csv"], statement)
    assert not copy.exists() and not (tmp_path / "answer.csv").exists()
    assert cli_main(["query", str(outs["csv"]), "DESCRIBE cases"]) == 0  # questions all
    assert "PatientID" in capsys.readouterr().out
    # a table the run did not write: which option writes it, and what the folder has
    assert cli_main(["query", str(outs["csv"]), "SELECT count(*) FROM instances"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no all_instances table" in err
    assert "--instances writes it; this folder has: cases, series, studies, problems" in err


def test_a_damaged_table_costs_only_the_questions_that_name_it(
    outs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Parquet file cut short and a CSV that is not UTF-8 (a table opened and saved by
    another program): a question naming one gets one line naming the file and why, no
    traceback; questions over the other tables are answered."""
    damaged = tmp_path / "damaged"
    shutil.copytree(outs["parquet"], damaged)
    cases = damaged / "all_cases.parquet"
    cases.write_bytes(cases.read_bytes()[:300])
    (damaged / "all_series.parquet").unlink()  # (the view reads the CSV then)
    (damaged / "all_series.csv").write_bytes("Patient\u00c4ID\n1\n".encode("latin-1"))
    for view, name, why in (
        ("cases", "all_cases.parquet", "No magic bytes"),
        ("series", "all_series.csv", "not UTF-8 text"),
    ):
        for how in ([], ["--paths"], ["-o", str(tmp_path / "answer.csv")]):
            assert cli_main(["query", str(damaged), f"SELECT * FROM {view}", *how]) == 1
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "Traceback" not in err, err
            assert f"{damaged / name} cannot be read (" in err and why in err, err
        with pytest.raises(QueryError, match="the folder's other tables can be queried"):
            query(damaged, f"SELECT count(*) FROM {view}")
    assert not (tmp_path / "answer.csv").exists()
    expected = query(outs["parquet"], "SELECT count(*) AS n FROM problems").to_pylist()
    assert query(damaged, "SELECT count(*) AS n FROM problems").to_pylist() == expected
    assert cli_main(["query", str(damaged), "SELECT count(*) FROM studies"]) == 0


def test_a_local_index_joins_another_by_the_dicom_keywords(
    outs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """idc-index#143: users combine their local index with IDC's. IDC's ``index`` table
    (one row per series, DICOM keywords for the UIDs) read by ``read_parquet`` in the
    same question joins ours on SeriesInstanceUID, with no renaming."""
    ours = read_csv(outs["csv"] / "all_series.csv")
    theirs = pa.table(
        {
            "collection_id": ["lidc_idri", "nlst", "other"],
            "StudyInstanceUID": [ours[0]["StudyInstanceUID"], ours[1]["StudyInstanceUID"], "9"],
            "SeriesInstanceUID": [
                ours[0]["SeriesInstanceUID"],
                ours[1]["SeriesInstanceUID"],
                "9.9",
            ],
            "instanceCount": [1, 2, 3],
        }
    )
    index = tmp_path / "idc_index.parquet"
    pq.write_table(theirs, index)
    sql = (
        "SELECT s.SeriesInstanceUID, s.PatientID, i.collection_id FROM series s "
        f"JOIN read_parquet('{index}') i USING (StudyInstanceUID, SeriesInstanceUID) "
        "ORDER BY i.collection_id"
    )
    answer = query(outs["csv"], sql).to_pylist()
    assert [(r["SeriesInstanceUID"], r["collection_id"]) for r in answer] == [
        (ours[0]["SeriesInstanceUID"], "lidc_idri"),
        (ours[1]["SeriesInstanceUID"], "nlst"),
    ]
    assert answer[0]["PatientID"] == ours[0]["PatientID"]  # (text: leading zeros kept)
    assert cli_main(["query", str(outs["parquet"]), sql]) == 0
    printed = capsys.readouterr().out
    assert "lidc_idri" in printed and "(2 rows)" in printed


# A sort of 3,000,000 hashes (~120 MB) under a memory limit of 30 MB: DuckDB spills.
SPILLS = "SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) AS m FROM range(3000000) t(i) ORDER BY m)"


def test_a_question_too_large_for_memory_spills_outside_the_working_folder(
    outs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB's default spill folder is ``.tmp`` in the working folder, which fails where that
    folder is read-only (a cluster node's home) and leaves files beside the user's."""
    import duckdb

    from dcm_extractor.outputs.query import connect

    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    # the premise: this question spills, on a plain DuckDB connection into .tmp
    plain = duckdb.connect(config={"memory_limit": "30MB", "threads": 1})
    assert plain.execute(SPILLS).fetchone() == (3_000_000,)
    assert (here / ".tmp").exists()  # (removed when the connection closes)
    plain.close()
    with connect(outs["parquet"]) as connection:
        connection.execute("SET memory_limit = '30MB'; SET threads = 1")
        spill = Path(connection.execute("SELECT current_setting('temp_directory')").fetchone()[0])
        assert spill.is_absolute() and here not in spill.parents
        assert connection.execute(SPILLS).fetchone() == (3_000_000,)
        assert connection.execute("SELECT count(*) FROM cases").fetchone()[0] > 0
    assert list(here.iterdir()) == []
    assert not spill.parent.exists()  # the spill folder goes with the connection
