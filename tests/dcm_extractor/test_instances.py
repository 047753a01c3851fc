"""The instance table against pydicom's reading of every file of the sample data: one row
per DICOM object with its path, UIDs and values as pydicom reads them, counted or not
with the report's reason; the series table equals a DuckDB group-by of it; resumed runs
give the same rows."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow.parquet as pq
import pydicom
import pytest
from pydicom_rows import check_instance_rows, member_name

from dcm_extractor.cli import main as cli_main
from dcm_extractor.extractor import main
from dcm_extractor.outputs.query import QueryError, query, query_paths
from dcm_extractor.sample import generate_dicom_dataset
from dcm_extractor.sources.instances import INSTANCE_COLUMNS


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("instances")
    data = generate_dicom_dataset(root / "sample", bulk_cases=5)
    out = root / "out"
    argv = ["-d", str(data.cases_root), "-o", str(out), "--merge-all", "--series", "--instances"]
    assert main([*argv, "--format", "csv,parquet", "--log", str(root / "run.log")]) == 0
    return data.cases_root, out


def test_every_row_is_what_pydicom_reads(sample: tuple[Path, Path]) -> None:
    cases_root, out = sample
    rows = check_instance_rows(cases_root, out)
    images = sum(1 for r in rows if r["IsImage"] == "yes")
    with (out / "all_cases.csv").open(encoding="utf-8", newline="") as stream:
        assert images == sum(int(r["ImageCount"]) for r in csv.DictReader(stream))
    copies = [r for r in rows if r["Reason"] == "duplicate"]
    counted = {r["ContentFingerprint"] for r in rows if r["IsImage"] == "yes"}
    assert copies and all(r["ContentFingerprint"] in counted for r in copies)


def test_the_series_table_is_a_group_by_of_the_instances(sample: tuple[Path, Path]) -> None:
    _, out = sample
    grouped = query(
        out,
        "SELECT SeriesInstanceUID, count(*) AS images, "
        "sum(NumberOfFrames) AS frames, any_value(Modality) AS modality "
        "FROM instances WHERE IsImage = 'yes' GROUP BY SeriesInstanceUID",
    ).to_pylist()
    series = query(
        out, "SELECT SeriesInstanceUID, ImageCount, NumberOfFrames, Modality FROM series"
    ).to_pylist()

    def keyed(items: list[dict[str, Any]], *names: str) -> dict[str, tuple[Any, ...]]:
        return {str(i["SeriesInstanceUID"]): tuple(i[n] for n in names) for i in items}

    assert keyed(grouped, "images", "frames", "modality") == keyed(
        series, "ImageCount", "NumberOfFrames", "Modality"
    )


def test_a_resumed_run_gives_the_same_rows(
    sample: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every case comes from the manifest (the rows of objects without Rows - a DICOMDIR,
    a non-image - included: a record refused would rescan its case, the same rows)."""
    cases_root, out = sample
    again = tmp_path / "again"
    argv = ["-d", str(cases_root), "-o", str(again), "--merge-all", "--series", "--instances"]
    log = ["--log", str(tmp_path / "run.log"), "--format", "csv"]
    assert main([*argv, *log]) == 0
    first = (again / "all_instances.csv").read_bytes()
    assert ",,," in first.decode("utf-8")  # (rows with no Rows, Columns, NumberOfFrames)
    cases = len([d for d in cases_root.iterdir() if d.is_dir()])
    capsys.readouterr()
    assert main([*argv, *log]) == 0  # every case from the manifest this time
    assert f"0 failed, {cases} unchanged" in capsys.readouterr().out
    assert (again / "all_instances.csv").read_bytes() == first
    assert pq.read_table(again / "all_instances.parquet").equals(
        pq.read_table(out / "all_instances.parquet")
    )


def test_the_study_table_is_a_group_by_of_the_instances(sample: tuple[Path, Path]) -> None:
    _, out = sample
    grouped = query(
        out,
        "SELECT StudyInstanceUID, count(DISTINCT SeriesInstanceUID) AS series, "
        "count(*) AS images, string_agg(DISTINCT Modality, '\\' ORDER BY Modality) AS modalities "
        "FROM instances WHERE IsImage = 'yes' GROUP BY StudyInstanceUID",
    ).to_pylist()
    studies = query(out, "SELECT * FROM studies").to_pylist()
    assert {s["StudyInstanceUID"] for s in studies} == {g["StudyInstanceUID"] for g in grouped}
    by_uid = {g["StudyInstanceUID"]: g for g in grouped}
    for study in studies:
        expected = by_uid[study["StudyInstanceUID"]]
        assert study["NumberOfStudyRelatedSeries"] == expected["series"]
        assert study["NumberOfStudyRelatedInstances"] == expected["images"]
        assert study["ModalitiesInStudy"] == expected["modalities"]
    with (out / "all_cases.csv").open(encoding="utf-8", newline="") as stream:
        patients = {r["StudyInstanceUID"]: r["PatientID"] for r in csv.DictReader(stream)}
    for study in studies:  # the patient of the study, as the case table names it
        if study["StudyInstanceUID"] in patients:
            assert study["PatientID"] == patients[study["StudyInstanceUID"]]
    assert (out / "all_studies.parquet").is_file() and (out / "all_studies.csv").is_file()


def test_the_instance_table_is_parquet_unless_formats_are_asked_for(
    sample: tuple[Path, Path], tmp_path: Path
) -> None:
    cases_root, out = sample
    assert (out / "all_instances.csv").is_file()  # --format csv,parquet asked for it
    plain = tmp_path / "plain"
    argv = ["-d", str(cases_root), "-o", str(plain), "--instances", "-q"]
    assert main([*argv, "--log", str(tmp_path / "run.log")]) == 0
    assert sorted(p.name for p in plain.glob("all_instances.*")) == ["all_instances.parquet"]
    meta = pq.ParquetFile(plain / "all_instances.parquet").metadata
    assert meta.num_rows == pq.read_table(out / "all_instances.parquet").num_rows
    assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 1_000


def test_paths_hand_a_series_to_another_tool(
    sample: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cases_root, out = sample
    zipped = (
        query(
            out, "SELECT SeriesInstanceUID FROM instances WHERE ZipMember <> '' AND IsImage = 'yes'"
        )
        .column("SeriesInstanceUID")[0]
        .as_py()
    )
    sql = f"SELECT * FROM instances WHERE SeriesInstanceUID = '{zipped}' AND IsImage = 'yes'"
    assert cli_main(["query", str(out), sql, "--paths", "-d", str(cases_root)]) == 0
    printed = capsys.readouterr().out.splitlines()
    expected = query(out, sql).num_rows
    assert len(printed) == expected > 0
    for line in printed:  # each a file, or a zip and a member in it, that pydicom reads
        path, _, member = line.partition("::")
        assert Path(path).is_absolute() and Path(path).is_file()
        if member:
            with zipfile.ZipFile(path) as archive:
                names = {member_name(i): i for i in archive.infolist()}
                data = archive.read(names[member])
        else:
            data = Path(path).read_bytes()
        assert pydicom.dcmread(io.BytesIO(data)).SeriesInstanceUID == zipped
    assert cli_main(["query", str(out), "SELECT 1 AS x", "--paths"]) == 1
    assert "--paths: the query must return FilePath" in capsys.readouterr().err


def test_paths_that_name_no_file_are_an_error_not_printed(
    sample: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-d not a folder, -d a folder without the files (the data root's parent, or files
    deleted since the run), and a de-identified output folder: one line on stderr, no
    path printed, exit 1."""
    cases_root, out = sample
    assert json.loads((out / "deidentification.json").read_text())["identified_tables"] is True
    sql = "SELECT FilePath, ZipMember FROM instances"
    expected = len({path.partition("::")[0] for path in query_paths(out, sql, cases_root)})
    assert expected > 10  # files and zips

    def refused(*argv: str) -> str:
        assert cli_main(["query", *argv, "--paths"]) == 1
        printed = capsys.readouterr()
        assert printed.out == "" and printed.err.count("\n") == 1, printed
        return printed.err

    err = refused(str(out), sql, "-d", str(tmp_path / "nowhere"))
    assert "nowhere: no such folder" in err
    err = refused(str(out), sql, "-d", str(cases_root.parent))
    assert f"{expected} of the {expected} files selected are not in -d" in err
    gone = tmp_path / "copy"
    shutil.copytree(cases_root, gone)
    first = sorted(p for p in gone.rglob("*.dcm"))[0]
    first.unlink()
    err = refused(str(out), sql, "-d", str(gone))
    assert "1 of the " in err and f"(first: {first})" in err
    deidentified = tmp_path / "deidentified"
    argv = ["-d", str(cases_root), "-o", str(deidentified), "--instances", "--desensitize"]
    assert main([*argv, "-q", "--log", str(tmp_path / "run.log")]) == 0
    capsys.readouterr()  # (its summary)
    record = json.loads((deidentified / "deidentification.json").read_text())
    assert record["identified_tables"] is False
    err = refused(str(deidentified), sql)
    assert "holds de-identified tables (--desensitize)" in err
    with pytest.raises(QueryError, match="de-identified"):
        query_paths(deidentified, sql, cases_root)


def test_paths_of_names_that_are_not_utf8_on_disk(
    sample: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Windows copy keeps GBK names: the tables show them as text (王小明), and --paths
    gives the bytes on disk back, so that another tool opens the files."""
    cases_root, _ = sample
    image = next(p for p in sorted(cases_root.rglob("*.dcm")) if "IM" in p.name)
    root = tmp_path / "data"
    folder = os.fsencode(root) + b"/" + "王小明".encode("gbk") + b"/" + "胸部".encode("gbk")
    Path(os.fsdecode(folder)).mkdir(parents=True)
    files = [folder + b"/" + f"图像{i}.dcm".encode("gbk") for i in range(2)]
    for i, name in enumerate(files):
        ds = pydicom.dcmread(image)
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{i + 7}"
        ds.save_as(os.fsdecode(name))
    out = tmp_path / "out"
    assert main(["-d", str(root), "-o", str(out), "--instances", "-q",
                 "--log", str(tmp_path / "run.log")]) == 0  # fmt: skip
    sql = "SELECT FilePath FROM instances ORDER BY FilePath"
    assert query(out, sql).column("FilePath").to_pylist() == [
        "王小明/胸部/图像0.dcm", "王小明/胸部/图像1.dcm"
    ]  # fmt: skip
    paths = query_paths(out, sql, root)
    assert [os.fsencode(p) for p in paths] == files
    assert all(Path(p).is_file() for p in paths)
    command = [sys.executable, "-m", "dcm_extractor", "query", str(out), sql, "--paths"]
    done = subprocess.run([*command, "-d", str(root)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == files  # the bytes on disk: xargs ls opens them
    capsys.readouterr()
    assert cli_main(["query", str(out), sql, "--paths"]) == 0  # no -d: the tables' text
    assert capsys.readouterr().out.splitlines() == [
        "王小明/胸部/图像0.dcm",
        "王小明/胸部/图像1.dcm",
    ]


def test_paths_with_a_line_break_need_null_ends(
    sample: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file name holding a line break (Linux allows it) would be read as two files from a
    line each: --paths refuses it with one line; with -0 every path ends with a NUL byte,
    and ``xargs -0`` hands each file, spaces and line breaks included, to another tool."""
    cases_root, _ = sample
    image = next(p for p in sorted(cases_root.rglob("*.dcm")) if "IM" in p.name)
    root = tmp_path / "data"
    folder = root / "Zhang San" / "CT chest"
    folder.mkdir(parents=True)
    files = [folder / "IM 1.dcm", folder / "IM\n2.dcm"]
    for i, name in enumerate(files):
        ds = pydicom.dcmread(image)
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{i + 7}"
        ds.save_as(name)
    out = tmp_path / "out"
    assert main(["-d", str(root), "-o", str(out), "--instances", "-q",
                 "--log", str(tmp_path / "run.log")]) == 0  # fmt: skip
    capsys.readouterr()
    sql = "SELECT FilePath FROM instances ORDER BY FilePath"
    assert cli_main(["query", str(out), sql, "--paths", "-d", str(root)]) == 1
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.count("\n") == 1
    assert "1 of the 2 paths hold a line break" in printed.err and "give -0" in printed.err
    command = [sys.executable, "-m", "dcm_extractor", "query", str(out), sql, "--paths", "-0"]
    done = subprocess.run([*command, "-d", str(root)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(b"\0") == [*sorted(os.fsencode(f) for f in files), b""]
    assert cli_main(["query", str(out), sql, "-0"]) == 2  # (a usage error)
    assert "-0 ends the paths of --paths" in capsys.readouterr().err
    xargs = shutil.which("xargs")
    if xargs is None:
        pytest.skip("no xargs here")
    listed = tmp_path / "paths"
    listed.write_bytes(done.stdout)
    sizes = subprocess.run(
        [xargs, "-0", "-a", str(listed), "stat", "--printf", "%s\\n"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert sorted(map(int, sizes)) == sorted(f.stat().st_size for f in files)


def test_every_format_holds_the_same_instance_rows(
    sample: tuple[Path, Path], tmp_path: Path
) -> None:
    """CSV, JSON and xlsx (openpyxl reads it) hold the Parquet table's cells: the rows are
    written column by column, so a column shifted or dropped in one writer shows here."""
    cases_root, _ = sample
    out = tmp_path / "out"
    argv = ["-d", str(cases_root), "-o", str(out), "--instances", "-q"]
    argv += ["--columns", "PatientName,StudyDate", "--format", "csv,json,parquet,xlsx"]
    assert main([*argv, "--log", str(tmp_path / "run.log")]) == 0
    expected = pq.read_table(out / "all_instances.parquet").to_pylist()
    names = list(expected[0])
    assert names == [*INSTANCE_COLUMNS, "PatientName", "StudyDate"]
    assert any(r["PatientName"] for r in expected) and any(r["Rows"] is None for r in expected)
    as_text = [{k: "" if v is None else str(v) for k, v in r.items()} for r in expected]
    with (out / "all_instances.csv").open(encoding="utf-8", newline="") as stream:
        assert list(csv.DictReader(stream)) == as_text
    assert json.loads((out / "all_instances.json").read_text(encoding="utf-8")) == expected
    book = openpyxl.load_workbook(out / "all_instances.xlsx", read_only=True)
    sheet = book.active
    assert sheet is not None
    cells = list(sheet.iter_rows(values_only=True))
    book.close()  # (read-only: the file stays open until closed)
    assert list(cells[0]) == names
    width = len(names)  # (read-only openpyxl ends a row at its last cell written)
    padded = [[*row, *[None] * (width - len(row))] for row in cells[1:]]
    assert [["" if v is None else v for v in row] for row in padded] == [
        ["" if v is None else v for v in r.values()] for r in expected
    ]


def test_the_row_layout_holds_every_column_once() -> None:
    """InstanceRows lays a row out its own way (values of one source side by side): every
    table column but ProjectID and every private column, once, then the --columns."""
    from dcm_extractor.sources.instances import PRIVATE_COLUMNS, InstanceRows

    names = InstanceRows(("PatientName", "Modality")).names
    assert len(names) == len(set(names))
    assert set(names[:-1]) == {*INSTANCE_COLUMNS[1:], *PRIVATE_COLUMNS}
    assert names[-1] == "PatientName"  # Modality is the table's own column
