"""Streamed tables equal the tables written in one go, whatever the batches; atomic files."""

from __future__ import annotations

import csv
import io
import itertools
import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.utils.escape import unescape

from dcm_extractor.outputs import tables
from dcm_extractor.outputs.merged import CaseFiles
from dcm_extractor.outputs.tables import INSTANCE_TABLE, PARQUET_SCHEMA, TableStream
from dcm_extractor.sample import DicomSample
from dcm_extractor.sources.rows import FIXED_COLUMNS

INTEGERS = {field.name for field in PARQUET_SCHEMA if pa.types.is_integer(field.type)}
text = st.one_of(st.none(), st.text(alphabet="0123456789AZaz 张伟王芳,\"'\n\r^=", max_size=8))
number = st.one_of(st.none(), st.integers(min_value=-(2**40), max_value=2**40))
row = st.fixed_dictionaries({c: number if c in INTEGERS else text for c in FIXED_COLUMNS})


def reference_csv(rows: list[dict[str, object]], excel: bool) -> bytes:
    """The CSV as the csv module writes it in one go."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n" if excel else "\n")
    quoted = csv.writer(buffer, lineterminator="\r\n" if excel else "\n", quoting=csv.QUOTE_ALL)
    writer.writerow(FIXED_COLUMNS)
    for r in rows:
        cells = ["" if r.get(c) is None else str(r.get(c)) for c in FIXED_COLUMNS]
        # a bare CR is quoted by csv only where the terminator holds one: such rows quoted
        (quoted if any("\r" in cell for cell in cells) else writer).writerow(cells)
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
        with (tmp_path / "t.csv").open(encoding="utf-8-sig", newline="") as back:
            cells = list(csv.reader(back))  # every cell back as written (a CR too)
        assert cells[1:] == [
            ["" if r[c] is None else str(r[c]) for c in FIXED_COLUMNS] for r in rows
        ]
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


def test_rows_wait_for_row_groups_of_a_thousand_at_first(tmp_path: Path) -> None:
    """Every Parquet table (cases, series, instances): the rows waiting for their group
    are held in memory, so groups start at 1,000 rows (a series table held 50,000 rows,
    ~100 MB, before its first group)."""
    rows = [{"PatientID": f"{i:06d}", "ProjectID": i} for i in range(2_500)]
    with TableStream(tmp_path / "t.parquet", "parquet") as stream:
        for start in range(0, len(rows), 100):
            stream.write(rows[start : start + 100])
    meta = pq.ParquetFile(tmp_path / "t.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1000, 1000, 500]
    assert pq.read_table(tmp_path / "t.parquet").column("PatientID").to_pylist() == [
        r["PatientID"] for r in rows
    ]


def test_columns_with_a_new_value_in_every_row_have_no_dictionary(tmp_path: Path) -> None:
    """The instance table's SOPInstanceUID and ContentFingerprint are new in every row: a
    dictionary page only costs; the others keep it."""
    path = tmp_path / "i.parquet"
    count = 50
    with TableStream(path, "parquet", shape=INSTANCE_TABLE) as stream:
        stream.write_columns(
            {
                "SOPInstanceUID": [f"1.2.3.{i}" for i in range(count)],
                "ContentFingerprint": [f"{i:032x}" for i in range(count)],
                "Modality": ["CT"] * count,
            },
            count,
        )
    meta = pq.ParquetFile(path).metadata
    group = meta.row_group(0)
    encodings = {
        meta.schema.column(i).name: group.column(i).encodings for i in range(group.num_columns)
    }
    dictionary = {name for name, kinds in encodings.items() if "RLE_DICTIONARY" in kinds}
    assert "Modality" in dictionary and "FilePath" in dictionary
    assert not dictionary & {"SOPInstanceUID", "ContentFingerprint"}
    back = pq.read_table(path)
    assert back.column("SOPInstanceUID").to_pylist() == [f"1.2.3.{i}" for i in range(count)]
    assert back.column("Modality").to_pylist() == ["CT"] * count


def test_a_failed_stream_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "all_cases.csv"
    target.write_text("previous run\n", encoding="utf-8")
    with pytest.raises(RuntimeError), TableStream(target, "csv") as stream:
        stream.write([{"PatientID": "1"}])
        raise RuntimeError("the run died")
    assert target.read_text(encoding="utf-8") == "previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["all_cases.csv"]  # no temp left
    with pytest.raises(ValueError, match="unknown table format"):
        TableStream(target, "ods")


SHAPE = tables.TableShape(
    ("ID", "Name", "Size", "Spacing"), frozenset({"ID", "Size"}), frozenset({"Spacing"})
)
mixed = st.fixed_dictionaries(
    {
        "ID": number,
        "Name": text,
        "Size": number,
        "Spacing": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    }
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(mixed, max_size=10), cuts=st.lists(st.integers(0, 10), max_size=3))
def test_rows_given_column_by_column_make_the_same_files(
    tmp_path: Path, rows: list[dict[str, object]], cuts: list[int]
) -> None:
    """write_columns (the instance table's way) writes what write() of the rows does, in
    every format; CSV cells are what str() gives (floats too), None an empty cell."""
    for fmt in ("csv", "json", "parquet", "xlsx"):
        by_rows, by_columns = tmp_path / f"rows.{fmt}", tmp_path / f"columns.{fmt}"
        with TableStream(by_rows, fmt, shape=SHAPE) as stream:
            for part in batches(rows, cuts):
                stream.write(part)
        with TableStream(by_columns, fmt, shape=SHAPE) as stream:
            for part in batches(rows, cuts):
                given_columns = {n: [r[n] for r in part] for n in ("ID", "Name", "Spacing")}
                stream.write_columns(given_columns, len(part))  # "Size" not given: empty
        if fmt == "parquet":
            assert pq.read_table(by_columns).to_pylist() == [{**r, "Size": None} for r in rows]
        elif fmt == "xlsx":
            back = openpyxl.load_workbook(by_columns)["columns"]
            expected = openpyxl.load_workbook(by_rows)["rows"]
            assert [c.value for c in back[1]] == list(SHAPE.names)
            assert [[c.value for c in row] for row in back.iter_rows(max_row=1 + len(rows))] == [
                [None if i == 2 and n else c.value for i, c in enumerate(row)]
                for n, row in enumerate(expected.iter_rows(max_row=1 + len(rows)))
            ]
        else:
            blank = [{**r, "Size": None} for r in rows]
            with TableStream(tmp_path / f"blank.{fmt}", fmt, shape=SHAPE) as stream:
                stream.write(blank)
            assert by_columns.read_bytes() == (tmp_path / f"blank.{fmt}").read_bytes()
    with (tmp_path / "rows.csv").open(encoding="utf-8", newline="") as stream:
        cells = list(csv.reader(stream))[1:]
    assert cells == [["" if r[n] is None else str(r[n]) for n in SHAPE.names] for r in rows]


def test_a_carriage_return_in_a_value_or_a_file_name_stays_in_its_cell(tmp_path: Path) -> None:
    """A bare CR (ImageComments is LT: it may hold one; Linux file names may too) would end
    the row for any CSV reader unless quoted: case, instance and report CSVs read back
    cell for cell."""
    from dcm_extractor.extractor import main
    from dcm_extractor.sample import generate_dicom_dataset

    root = generate_dicom_dataset(
        tmp_path / "s", showcase=False, bulk_cases=1, series_per_case=1
    ).cases_root
    case = next(root.iterdir())
    for path in (p for p in case.rglob("*") if p.is_file() and p.suffix != ".zip"):
        ds = pydicom.dcmread(path)
        ds.ImageComments = "left\rright"
        ds.save_as(path)
    (case / "note\rold.txt").write_bytes(b"not DICOM")
    out = tmp_path / "out"
    argv = ["-d", str(root), "-o", str(out), "--merge-all", "--instances", "-q"]
    argv += ["--columns", "ImageComments", "--format", "csv", "--log", str(tmp_path / "l.log")]
    assert main(argv) == 0

    def read(name: str) -> list[dict[str, str]]:
        with (out / name).open(encoding="utf-8", newline="") as stream:
            return list(csv.DictReader(stream))

    assert {r["ImageComments"] for r in read("all_cases.csv")} == {"left\rright"}
    instances = read("all_instances.csv")
    assert instances and {r["ImageComments"] for r in instances} == {"left\rright"}
    assert any(r["location"].endswith("note\rold.txt") for r in read("extraction_report.csv"))


def test_instance_row_groups_grow_with_the_table(tmp_path: Path) -> None:
    """Groups of row_group rows until a hundredth of the rows written is more, up to ten
    times row_group: the Parquet footer held in memory grows ~1/10 as fast at 10^7 rows."""
    with TableStream(tmp_path / "t.parquet", "parquet", row_group=4) as stream:
        for i in range(6_000):
            stream.write_columns({"ProjectID": [i], "PatientID": [f"{i:06d}"]}, 1)
    meta = pq.ParquetFile(tmp_path / "t.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == 6_000 and sizes[:100] == [4] * 100  # 400 rows in groups of 4
    assert max(sizes) == 40 and sizes == sorted(sizes[:-1]) + sizes[-1:]
    back = pq.read_table(tmp_path / "t.parquet").column("PatientID").to_pylist()
    assert back == [f"{i:06d}" for i in range(6_000)]


def test_a_failed_parquet_stream_leaves_no_file_and_no_writer(tmp_path: Path) -> None:
    """A row group that cannot be made (a value of the wrong type) fails the stream, and
    nothing is left behind: no file, no open writer (pytest reports one that writes
    into its closed file when collected)."""
    path = tmp_path / "t.parquet"
    with (
        pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, TypeError)),
        TableStream(path, "parquet", row_group=2) as stream,
    ):
        stream.write_columns({"ProjectID": [1, 2], "PatientID": ["a", "b"]}, 2)
        stream.write_columns({"ProjectID": ["x", 4], "PatientID": ["c", "d"]}, 2)
        stream.write_columns({"ProjectID": [5, 6], "PatientID": ["e", "f"]}, 2)
    assert list(tmp_path.iterdir()) == []


def test_case_files_are_written_in_order_and_their_errors_raised_in_the_run() -> None:
    """Each case's own files are written by one thread beside the run (merged.CaseFiles):
    in the order given, at most ``ahead`` waiting, and a failure comes back to the run's
    thread (at the next case or at the end), as if the files were written there."""
    done: list[int] = []
    gate = threading.Event()
    files = CaseFiles(ahead=3)

    def work(number: int) -> Callable[[], None]:
        def write() -> None:
            if number == 0:
                assert gate.wait(60)  # (held until the others are queued)
            done.append(number)

        return write

    for number in range(3):
        files.submit(work(number))
    assert done == [] and len(files._pending) == 3
    gate.set()
    for number in range(3, 10):
        files.submit(work(number))
    files.wait()
    assert done == list(range(10)) and not files._pending

    def fail() -> None:
        raise OSError("disk full")

    files.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        files.submit(work(10))  # (or at wait(): whichever comes first after it failed)
        files.wait()
    files.close()


def test_a_case_file_that_cannot_be_written_fails_the_run_and_commits_nothing(
    tmp_path: Path,
) -> None:
    from dcm_extractor.runner.pipeline import RunOptions, run
    from dcm_extractor.sample import generate_dicom_dataset

    sample = generate_dicom_dataset(tmp_path / "data", showcase=False, bulk_cases=3)
    out = tmp_path / "out"
    case = sorted(p.name for p in sample.cases_root.iterdir())[1]
    (out / f"{case}.csv").mkdir(parents=True)  # the case's table cannot be written there
    with pytest.raises(OSError):
        run(RunOptions(sample.cases_root, out, merge_all=True, resume=False))
    assert not (out / "all_cases.csv").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".") and "tmp" in p.name]


def _run_with_umask(umask: int, *argv: str) -> None:
    """``dcm-extract argv`` in a child process whose umask is ``umask`` (set by a shell:
    ``preexec_fn`` is unsafe in a process with threads)."""
    import subprocess
    import sys

    command = f'umask {umask:03o} && exec "$0" "$@"'
    done = subprocess.run(
        ["sh", "-c", command, sys.executable, "-m", "dcm_extractor", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _modes(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_mode & 0o777
        for p in folder.rglob("*")
        if p.is_file() and p.name != ".dcm-extract.lock"  # (made 0o644 less the umask)
    }


def test_outputs_get_the_permissions_open_gives_and_replaced_files_keep_theirs(
    tmp_path: Path,
) -> None:
    """New files: 0o666 less the umask, as the original extractor's (pandas') files; a
    file a run replaces keeps its mode; query -o the same. Never mkstemp's 0o600."""
    from dcm_extractor.sample import generate_dicom_dataset

    sample = generate_dicom_dataset(tmp_path / "data", showcase=False, bulk_cases=2)
    out, log = tmp_path / "out", tmp_path / "run.log"
    argv = ["-d", str(sample.cases_root), "-o", str(out), "--log", str(log), "--merge-all"]
    tables_asked = ["--series", "--instances", "--format", "csv,parquet,xlsx"]
    _run_with_umask(0o002, *argv, *tables_asked)
    modes = _modes(out)
    assert {"all_cases.csv", "all_instances.parquet", "all_series.xlsx"} <= set(modes)
    assert any(name.startswith(".manifest/") for name in modes)
    assert set(modes.values()) == {0o664}, modes
    (out / "all_cases.csv").chmod(0o640)
    _run_with_umask(0o077, *argv, *tables_asked, "--no-resume")
    modes = _modes(out)
    assert modes.pop("all_cases.csv") == 0o640  # replaced: its mode kept
    assert set(modes.values()) == {0o664}  # (every other file replaced too)
    for name in ("q.csv", "q.parquet", "q.xlsx", "q.json"):
        query = ["query", str(out), "SELECT * FROM instances", "-o", str(tmp_path / name)]
        _run_with_umask(0o022, *query)
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_a_file_that_cannot_be_written_is_named_not_its_temporary_sibling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder where the file would go, a file where its folder would go: the error names
    the path the user gave (never ``.x.csv.1a2b.tmp``), and no temporary file is left."""
    from dcm_extractor.cli import main as cli_main
    from dcm_extractor.outputs.atomic import atomic_path, write_atomic

    (tmp_path / "taken.csv").mkdir()
    (tmp_path / "plain").write_text("a file", encoding="utf-8")
    with pytest.raises(IsADirectoryError) as caught:
        write_atomic(tmp_path / "taken.csv", b"x")
    assert caught.value.filename == str(tmp_path / "taken.csv")
    with pytest.raises(IsADirectoryError) as caught, atomic_path(tmp_path / "taken.csv") as temp:
        temp.write_bytes(b"x")
    assert caught.value.filename == str(tmp_path / "taken.csv")
    for target in (tmp_path / "plain" / "x.csv", tmp_path / "plain" / "sub" / "x.csv"):
        with pytest.raises(NotADirectoryError) as caught:
            write_atomic(target, b"x")
        assert caught.value.filename == str(target.parent)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "taken.csv"]
    assert not any((tmp_path / "taken.csv").iterdir())
    out = tmp_path / "out"
    argv = ["-d", str(tmp_path / "none"), "-o", str(out)]
    (tmp_path / "none" / "case").mkdir(parents=True)
    assert cli_main([*argv, "--series", "-q", "--log", str(tmp_path / "run.log")]) == 0
    capsys.readouterr()
    for target in (tmp_path / "taken.csv", tmp_path / "plain" / "x.xlsx"):
        assert cli_main(["query", str(out), "SELECT 1", "-o", str(target)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ".tmp" not in err, err


def test_a_case_named_longer_than_a_file_name_may_be_costs_nothing(
    tmp_path: Path, dicom_sample: DicomSample
) -> None:
    """Two case folders named in 85 Chinese characters (255 bytes of UTF-8, the most ext4
    takes), the same first 80: each case's own files are named after its first characters
    and a hash (two names, two files), the report notes it, the run and the original API
    write everything; a file of a 255-byte name is written through a shorter temporary."""
    from dcm_extractor.extractor import extract_case_metadata, main
    from dcm_extractor.outputs.atomic import fitting_name, write_atomic
    from dcm_extractor.outputs.merged import case_file_stem

    image = next(p for p in dicom_sample.cases_root.rglob("*.dcm") if p.stat().st_size > 1000)
    root = tmp_path / "data"
    names = ["患者" * 39 + "胸部平扫增强五", "患者" * 39 + "胸部平扫增强六"]
    assert [len(n.encode()) for n in names] == [255, 255]
    for name in names:
        (root / name).mkdir(parents=True)
        shutil.copy(image, root / name / "IM0001.dcm")
    out = tmp_path / "out"
    argv = ["-d", str(root), "-o", str(out), "--merge-all", "--export-json", "-q"]
    assert main([*argv, "--log", str(tmp_path / "run.log")]) == 0
    stems = [case_file_stem(name, out) for name in names]
    assert len(set(stems)) == 2 and all(s.startswith("患者" * 38) for s in stems)
    for stem in stems:
        for suffix in (".csv", ".desensitized.csv", ".json"):
            assert (out / f"{stem}{suffix}").is_file()
            assert len(f"{stem}{suffix}".encode()) <= 255
    with (out / "extraction_report.csv").open(encoding="utf-8", newline="") as stream:
        notes = [r for r in csv.DictReader(stream) if r["reason"] == "case_files_renamed"]
    assert sorted(n["case"] for n in notes) == names
    assert all("longer than a file name may be" in n["detail"] for n in notes)
    assert all(n["detail"].endswith(".csv") for n in notes)  # (the name: to private)
    with (out / "all_cases.csv").open(encoding="utf-8", newline="") as stream:
        assert sorted(r["FileName"] for r in csv.DictReader(stream)) == sorted(
            f"{n}.dir" for n in names
        )
    original = extract_case_metadata(root / names[0], tmp_path / "api")
    assert Path(original).name == f"{stems[0]}.csv" and Path(original).is_file()
    longest = tmp_path / ("表" * 85)  # 255 bytes: its temporary sibling's name is cut
    write_atomic(longest, b"written")
    assert longest.read_bytes() == b"written"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert fitting_name("表表表", 7) == "表表" and fitting_name("abc", 7) == "abc"


def test_a_case_named_like_the_runs_own_files_overwrites_none(
    tmp_path: Path, dicom_sample: DicomSample
) -> None:
    """Case folders named all_cases, Extraction_Report, case_projectid_map (its JSON was
    the project ID map) and X.desensitized (its CSV was case X's de-identified table):
    every file of the run and of each case is there, with its own content."""
    from dcm_extractor.extractor import main
    from dcm_extractor.outputs.merged import case_file_stem

    image = next(p for p in dicom_sample.cases_root.rglob("*.dcm") if p.stat().st_size > 1000)
    root, out = tmp_path / "data", tmp_path / "out"
    names = ["all_cases", "Extraction_Report", "case_projectid_map", "X", "X.desensitized"]
    for name in names:
        (root / name).mkdir(parents=True)
        shutil.copy(image, root / name / "IM0001.dcm")
    argv = ["-d", str(root), "-o", str(out), "--merge-all", "--export-json", "-q"]
    assert main([*argv, "--log", str(tmp_path / "run.log")]) == 0
    stems = {name: case_file_stem(name, out) for name in names}
    assert stems["X"] == "X" and all(
        stem.startswith(f"{name}~") for name, stem in stems.items() if name != "X"
    )
    ids = json.loads((out / "case_projectid_map.json").read_text(encoding="utf-8"))
    assert sorted(ids) == sorted(names)  # the map, not a case's records
    with (out / "all_cases.csv").open(encoding="utf-8", newline="") as stream:
        assert len(list(csv.DictReader(stream))) == len(names)
    with (out / "extraction_report.csv").open(encoding="utf-8", newline="") as stream:
        renamed = [r["case"] for r in csv.DictReader(stream) if r["reason"] == "case_files_renamed"]
    assert sorted(renamed) == sorted(n for n in names if n != "X")
    for name, stem in stems.items():
        shown = {".csv": f"{name}.dir", ".desensitized.csv": f"P{ids[name]:06d}.dir"}
        for suffix, file_name in shown.items():
            with (out / f"{stem}{suffix}").open(encoding="utf-8", newline="") as stream:
                (row,) = list(csv.DictReader(stream))
            assert row["FileName"] == file_name, (name, suffix)
        records = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
        assert [r["FileName"] for r in records] == [f"{name}.dir"]


def test_case_names_windows_cannot_hold_give_files_it_can(
    tmp_path: Path, dicom_sample: DicomSample
) -> None:
    """Linux folder names with ``: ? | \\ *`` or a device's name (``CON``, ``nul.txt``):
    the case's own files are named so that Windows and USB drives (FAT, exFAT) hold them -
    where they are written or copied - noted in the report; the tables keep the names."""
    import re

    from dcm_extractor.extractor import main

    image = next(p for p in dicom_sample.cases_root.rglob("*.dcm") if p.stat().st_size > 1000)
    root, out = tmp_path / "data", tmp_path / "out"
    names = ["CT 08:30", "what?", "a|b", "back\\slash", "star*", "CON", "nul.txt", "plain"]
    for name in names:
        (root / name).mkdir(parents=True)
        shutil.copy(image, root / name / "IM0001.dcm")
    argv = ["-d", str(root), "-o", str(out), "--merge-all", "--export-json", "-q"]
    assert main([*argv, "--log", str(tmp_path / "run.log")]) == 0
    # Microsoft's rules for file names ("Naming Files, Paths, and Namespaces")
    forbidden = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
    device = re.compile(r"^(CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9]) *(\.|$)", re.IGNORECASE)
    written = sorted(p.name for p in out.iterdir())
    assert sum(n.endswith(".desensitized.csv") for n in written) == 8  # (one a case)
    assert [n for n in written if forbidden.search(n) or device.match(n)] == []
    assert {"plain.csv", "plain.desensitized.csv", "plain.json"} <= set(written)
    with (out / "extraction_report.csv").open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    notes = {r["case"]: r for r in rows if r["reason"] == "case_files_renamed"}
    assert sorted(notes) == sorted(n for n in names if n != "plain")
    assert "characters (:) file names cannot hold on Windows" in notes["CT 08:30"]["detail"]
    assert "a device" in notes["CON"]["detail"] and "a device" in notes["nul.txt"]["detail"]
    for name, note in notes.items():
        table = note["detail"].rsplit(": ", 1)[-1]  # (the file, after the reason)
        assert table in written, (name, table)
        with (out / table).open(encoding="utf-8", newline="") as stream:
            (row,) = list(csv.DictReader(stream))
        assert row["FileName"] == f"{name}.dir"


def test_cases_whose_names_read_alike_keep_their_own_files(
    tmp_path: Path, dicom_sample: DicomSample
) -> None:
    """张三 in UTF-8 beside 张三 in GBK (a Windows copy: the same text once read), and
    Zhang beside zhang (one file on a share that ignores letter case): the later case's
    own files add its ProjectID, noted in the report; none overwrites another."""
    import os

    from dcm_extractor.extractor import main

    images = sorted(p for p in dicom_sample.cases_root.rglob("*.dcm") if p.stat().st_size > 1000)
    root, out = tmp_path / "data", tmp_path / "out"
    folders = [b"Zhang", b"zhang", "张三".encode(), "张三".encode("gbk")]
    for index, folder in enumerate(folders):
        path = root / os.fsdecode(folder)  # (GBK bytes: surrogate escapes, as Python lists it)
        path.mkdir(parents=True)
        shutil.copy(images[index], path / "IM0001.dcm")
    argv = ["-d", str(root), "-o", str(out), "--merge-all", "-q"]
    assert main([*argv, "--log", str(tmp_path / "run.log")]) == 0
    ids = json.loads((out / "case_projectid_map.json").read_text(encoding="utf-8"))
    assert len(ids) == 4
    tables = sorted(p.name for p in out.glob("*.csv") if not p.name.startswith("all_"))
    tables.remove("extraction_report.csv")
    assert len(tables) == 8  # (each case: its table, and its de-identified one)
    with (out / "extraction_report.csv").open(encoding="utf-8", newline="") as stream:
        notes = [r for r in csv.DictReader(stream) if r["reason"] == "case_files_renamed"]
    assert sorted(n["case"] for n in notes) == ["zhang", "张三"]
    assert all("names that read alike" in n["detail"] for n in notes)
    shown = []
    for name in tables:  # each case's two tables, its own ProjectID in them
        with (out / name).open(encoding="utf-8", newline="") as stream:
            (row,) = list(csv.DictReader(stream))
        shown.append(row["ProjectID"])
    assert sorted(shown) == sorted(str(i) for i in ids.values() for _ in range(2))


def test_a_file_already_holding_its_bytes_is_not_written_again(tmp_path: Path) -> None:
    """write_atomic and write_csv make the file in memory; when the path holds exactly
    those bytes, it is left as it is (no temporary file, no fsync); other bytes, or a
    link in its place, are replaced as ever."""
    import os

    from dcm_extractor.outputs.atomic import write_atomic
    from dcm_extractor.outputs.tables import write_csv

    target = tmp_path / "a.csv"
    write_csv(target, [{"PatientID": "000456"}])
    made = target.stat()
    os.utime(target, ns=(made.st_atime_ns, made.st_mtime_ns - 10**9))
    stamp = (target.stat().st_ino, target.stat().st_mtime_ns)
    write_csv(target, [{"PatientID": "000456"}])
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == stamp
    write_csv(target, [{"PatientID": "000457"}])
    assert target.stat().st_ino != stamp[0] and "000457" in target.read_text(encoding="utf-8")
    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(b"same")
    (tmp_path / "link.bin").symlink_to(elsewhere)
    write_atomic(tmp_path / "link.bin", b"same")
    assert not (tmp_path / "link.bin").is_symlink()
    assert (tmp_path / "link.bin").read_bytes() == b"same" == elsewhere.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "elsewhere.bin", "link.bin"]
