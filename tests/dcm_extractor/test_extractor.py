"""The extractor end to end: the documented commands, outputs, IDs, time limits."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from slow_case import make_slow_case

from dcm_extractor.cli import main as cli_main
from dcm_extractor.errors import DcmExtractorError
from dcm_extractor.extractor import (
    FIXED_COLUMNS,
    desensitize_name,
    extract_case_metadata,
    iter_case_dirs,
    load_projectid_map,
    main,
    move_top_level_zips,
    save_projectid_map,
)
from dcm_extractor.privacy.pseudonyms import Pseudonymizer, deidentify_rows
from dcm_extractor.runner.pipeline import RunOptions, run
from dcm_extractor.sample import DicomSample, generate_dicom_dataset
from dcm_extractor.sources.cases import scan_case

REPO = Path(__file__).resolve().parents[2]
COMMANDS = [
    "python -m src.dcm_extractor.extractor --data-root data/dicom_cases --out data/output_csv",
    "python -m src.dcm_extractor.extractor -d data/dicom_cases -o data/output_csv --merge-all --only-merged",
    "python -m src.dcm_extractor.extractor -d data/dicom_cases -o data/output_csv --move-top-level-zips --merge-all --only-merged",
    "python -m src.dcm_extractor.extractor --data-root data/dicom_cases --out data/output_csv --merge-all --export-json --desensitize",
    "python -m src.dcm_extractor.extractor -d data/dicom_cases -o data/output_csv --merge-all --only-merged --move-top-level-zips --projectid-map data/output_csv/case_projectid_map.json",
    "python scripts/process_cases_with_timeout.py -d data/dicom_cases -o data/output_csv --timeout 900 --move-top-level-zips --projectid-map data/output_csv/case_projectid_map.json",
]  # fmt: skip  (verbatim from the original tool's documentation)


@pytest.fixture
def workspace(tmp_path: Path, dicom_sample: DicomSample) -> Path:
    """A project folder as users have it: data/dicom_cases, and the repository's src/ and scripts/."""
    shutil.copytree(dicom_sample.cases_root, tmp_path / "data" / "dicom_cases")
    (tmp_path / "src").symlink_to(REPO / "src", target_is_directory=True)
    (tmp_path / "scripts").symlink_to(REPO / "scripts", target_is_directory=True)
    return tmp_path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def expected_rows(
    truth_path: Path, ids: dict[str, int], *, moved: bool, hidden: bool = False
) -> list[dict[str, str]]:
    """The ground truth's rows with the run's project IDs, de-identified when ``hidden``."""
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    rows = []
    for case in truth["cases"]:
        if case["top_level_zip"] and not moved:
            continue
        for row in case["rows"]:
            values = {k: v for k, v in row.items() if k != "conflicts"}
            rows.append({"ProjectID": ids[case["name"]], **values})
    if hidden:
        rows = deidentify_rows(rows, Pseudonymizer(None))
    return [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]


@pytest.mark.parametrize("command", COMMANDS)
def test_documented_commands(workspace: Path, dicom_sample: DicomSample, command: str) -> None:
    argv = command.split()
    argv[0] = sys.executable
    result = subprocess.run(argv, cwd=workspace, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == len(set(lines))  # each warning once (the old path printed log lines too)
    assert all(line.startswith(("warning: ", "note: ")) for line in lines), lines
    out = workspace / "data" / "output_csv"
    id_map = out / "case_projectid_map.json"
    if "--desensitize" in command:  # the map names the cases: beside --out, and the run says so
        assert not id_map.exists()
        id_map = out.with_name("output_csv.case_projectid_map.json")
        assert any(
            line.startswith("note: the project ID map")
            and line.endswith("data/output_csv.case_projectid_map.json")
            for line in lines
        ), lines
    assert (workspace / "logs" / "extractor.log").is_file()
    moved = "--move-top-level-zips" in command
    script = "process_cases_with_timeout" in command  # the original: merged tables only
    merged = "--merge-all" in command or "--only-merged" in command or script
    desensitize = "--desensitize" in command
    per_case = "--only-merged" not in command and not script
    cases = [p.name for p in iter_case_dirs(workspace / "data" / "dicom_cases")]
    truth = json.loads(dicom_sample.truth_path.read_text(encoding="utf-8"))
    assert sorted(cases) == sorted(
        c["name"] for c in truth["cases"] if moved or not c["top_level_zip"]
    )
    ids = load_projectid_map(id_map)
    assert sorted(ids.values()) == list(range(1, len(cases) + 1))
    for case in cases:
        stem = f"P{ids[case]:06d}" if desensitize else case  # no case names in file names
        assert (out / f"{stem}.csv").is_file() == per_case
        assert (out / f"{stem}.json").is_file() == ("--export-json" in command)
    assert (out / "all_cases.csv").is_file() == merged
    assert (out / "all_cases_original.csv").is_file() == (merged and not desensitize)
    if merged:
        got = read_csv(out / "all_cases.csv")
        assert [int(r["ProjectID"]) for r in got] == sorted(int(r["ProjectID"]) for r in got)
        want = expected_rows(dicom_sample.truth_path, ids, moved=moved, hidden=desensitize)
        key = lambda r: (int(r["ProjectID"]), r["FileName"])  # noqa: E731
        assert sorted(got, key=key) == sorted(want, key=key)
    report = read_csv(out / "extraction_report.csv")
    assert report  # the sample's junk is always reported
    summary = result.stdout.splitlines()[0]
    files, rest = summary.split("; ")[1].split(" files: ")
    images, skipped = (int(part.split()[0]) for part in rest.split(" + "))
    assert int(files) == images + skipped


def test_same_through_dcm_extract_and_python_m(workspace: Path) -> None:
    data, out = workspace / "data" / "dicom_cases", workspace / "data" / "output_csv"
    log = workspace / "logs" / "x.log"
    script = Path(sys.executable).parent / "dcm-extract"
    for argv in (
        [str(script), "-d", str(data), "-o", str(out / "a"), "--merge-all", "--log", str(log)],
        [
            sys.executable,
            "-m",
            "dcm_extractor",
            "-d",
            str(data),
            "-o",
            str(out / "b"),
            "--merge-all",
            "--log",
            str(log),
        ],
    ):
        assert subprocess.run(argv, capture_output=True, check=False).returncode == 0
    assert (out / "a" / "all_cases.csv").read_bytes() == (out / "b" / "all_cases.csv").read_bytes()


def test_defaults_text_and_formats(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workspace)
    assert (
        main(
            [
                "--merge-all",
                "--format",
                "csv,json,parquet",
                "--excel",
                "--move-top-level-zips",
                "-q",
            ]
        )
        == 0
    )
    out = workspace / "data" / "output_csv"
    assert (workspace / "logs" / "extractor.log").is_file()
    raw = (out / "all_cases.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM for Chinese
    rows = read_csv(out / "all_cases.csv")
    smith = next(r for r in rows if r["FileName"] == "Smith_John.dir")
    assert (smith["PatientID"], smith["StudyDate"]) == ("000123", "20240105")
    assert "王^小明" in {r["PatientName"] for r in rows}
    records = json.loads((out / "all_cases.json").read_text(encoding="utf-8"))
    assert [list(r) for r in records] == [FIXED_COLUMNS] * len(records)
    assert {r["PatientID"] for r in records} == {r["PatientID"] for r in rows}
    table = pq.read_table(out / "all_cases.parquet")
    assert table.column_names == FIXED_COLUMNS
    assert str(table.schema.field("PatientID").type) == "string"
    assert table.column("PatientID").to_pylist() == [r["PatientID"] for r in rows]


def test_project_ids_are_stable_and_grow(workspace: Path) -> None:
    data, out = workspace / "data" / "dicom_cases", workspace / "out"
    id_map = out / "ids.json"
    save_projectid_map(id_map, {"LiNa_007": 7, "gone_case": 40})
    # edited and saved by Windows Notepad (UTF-8 with a byte-order mark): still the map
    id_map.write_bytes(b"\xef\xbb\xbf" + id_map.read_bytes())
    argv = [
        "-d",
        str(data),
        "-o",
        str(out),
        "--only-merged",
        "--projectid-map",
        str(id_map),
        "--log",
        str(out / "l"),
    ]
    assert main(argv) == 0
    first = load_projectid_map(id_map)
    assert first["LiNa_007"] == 7 and first["gone_case"] == 40  # kept, never renumbered
    new = len([d for d in data.iterdir() if d.is_dir()]) - 1  # every case but LiNa_007
    assert sorted(v for k, v in first.items() if k not in ("LiNa_007", "gone_case")) == list(
        range(41, 41 + new)
    )
    assert main(argv) == 0
    assert load_projectid_map(id_map) == first
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]
    edited = out / "edited.json"  # saved by Notepad's "ANSI" on a Chinese Windows: GBK
    edited.write_bytes('{"王小明": 7}'.encode("gbk"))
    with pytest.raises(DcmExtractorError, match=r"not UTF-8 text \(byte 0xcd at 2\); a "):
        load_projectid_map(edited)


def test_move_top_level_zips_with_collisions(tmp_path: Path) -> None:
    (tmp_path / "a.zip").write_bytes(b"1")
    (tmp_path / "b.zip").write_bytes(b"2")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "b.zip").write_bytes(b"old")
    (tmp_path / "c").write_text("a file named like the folder")
    (tmp_path / "c.zip").write_bytes(b"3")
    moves = {s.name: t.relative_to(tmp_path).as_posix() for s, t in move_top_level_zips(tmp_path)}
    assert moves == {"a.zip": "a/a.zip", "b.zip": "b/b_1.zip", "c.zip": "c_1/c.zip"}
    assert (tmp_path / "b" / "b.zip").read_bytes() == b"old"


def test_a_slow_case_is_stopped_and_the_run_completes(workspace: Path) -> None:
    data, out = workspace / "data" / "dicom_cases", workspace / "out"
    make_slow_case(data / "Smith_John" / "many")  # takes seconds to scan
    argv = [
        "-d",
        str(data),
        "-o",
        str(out),
        "--merge-all",
        "--case-timeout",
        "0.8",  # the slow case needs ~1.6 s, every other case a few ms
        "--log",
        str(out / "l"),
    ]
    assert main([*argv, "--workers", "2"]) == 1  # a case failed as a whole, in a pool worker
    report = read_csv(out / "extraction_report.csv")
    failed = [r for r in report if r["reason"] == "case_failed"]
    assert [r["case"] for r in failed] == ["Smith_John"]
    assert failed[0]["detail"] == "stopped after the 0.8 s time limit"  # said once
    rows = read_csv(out / "all_cases.csv")
    assert "Smith_John.dir" not in {r["FileName"] for r in rows}
    others = [d for d in iter_case_dirs(data) if d.name != "Smith_John"]
    assert len(rows) == sum(len(scan_case(d, data).rows) for d in others)  # every other case's


def test_original_python_api(
    dicom_sample: DicomSample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DCM_EXTRACT_KEY", raising=False)
    case = dicom_sample.cases_root / "Smith_John"
    path = extract_case_metadata(case, tmp_path, project_id=3)
    assert path == tmp_path / "Smith_John.csv"
    rows = read_csv(path)
    assert rows[0]["ProjectID"] == "3"
    assert rows[0]["PatientID"] == "000123"
    hidden = read_csv(tmp_path / "Smith_John.desensitized.csv")
    assert hidden[0]["PatientName"] == desensitize_name("Smith^John")
    frame = extract_case_metadata(case, tmp_path / "none", only_merged=True)
    assert list(frame.columns) == FIXED_COLUMNS
    assert frame.loc[0, "PatientID"] == "000123"
    assert not (tmp_path / "none").exists()
    assert (
        desensitize_name("Smith^John")
        == desensitize_name("Smith^John")
        != desensitize_name("Smith^Jon")
    )
    assert len(desensitize_name("x")) == len("hash:") + 16


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--format", "xml"]) == 2
    assert main(["--case-timeout", "-1"]) == 2
    assert main(["--no-such-option"]) == 2
    assert (
        main(
            [
                "-d",
                str(tmp_path / "missing"),
                "-o",
                str(tmp_path / "o"),
                "--log",
                str(tmp_path / "l"),
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert cli_main(["--version"]) == 0


def test_a_data_root_that_is_a_file_says_what_to_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An export handed over as one zip, given as -d, was "does not exist or is not a
    folder" - the zip exists: it says so, and what to give instead."""
    import zipfile

    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("case1/IM0001.dcm", b"x")
    (tmp_path / "list.txt").write_text("x")
    for given, said in (
        (export, f"data root {export} is a zip file, not a folder of case folders: unzip it"),
        (tmp_path / "list.txt", f"data root {tmp_path / 'list.txt'} is a file, not a folder"),
        (tmp_path / "nowhere", f"data root {tmp_path / 'nowhere'} does not exist\n"),
    ):
        argv = ["-d", str(given), "-o", str(tmp_path / "o"), "--log", str(tmp_path / "l")]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and said in err, err


def test_sample_data_and_summary_add_up(tmp_path: Path) -> None:
    sample = generate_dicom_dataset(tmp_path / "s", bulk_cases=2)
    out = tmp_path / "out"
    argv = [
        "-d",
        str(sample.cases_root),
        "-o",
        str(out),
        "--merge-all",
        "--log",
        str(tmp_path / "l"),
    ]
    assert main(argv) == 0
    report = read_csv(out / "extraction_report.csv")
    # two top-level zips are not cases without --move-top-level-zips: reported, not lost
    assert {r["location"] for r in report if r["reason"] == "not_in_case"} == {
        "ChenJing_CT.zip",
        "ZhaoLei.zip",
    }


def test_a_data_root_that_is_one_patients_folder_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-d given one patient's folder: its series folders become cases that split one
    study, and a folder of loose files gives no case at all. Each run says so (once, on
    stderr and in the log) and names what to give instead; the sample data, whose cases
    are patients, says nothing."""
    import pydicom
    from pydicom.data import get_testdata_file

    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]
    patient, loose = tmp_path / "patient1", tmp_path / "loose"
    for number in (1, 2):
        ct.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.{number}"
        for image in range(2):
            ct.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{number}.{image}"
            (patient / f"SE{number}").mkdir(parents=True, exist_ok=True)
            ct.save_as(patient / f"SE{number}" / f"IM{image}.dcm")
            loose.mkdir(exist_ok=True)
            ct.save_as(loose / f"IM{number}{image}.dcm")
    log = tmp_path / "run.log"
    base = ["--log", str(log), "-q"]
    assert cli_main(["-d", str(patient), "-o", str(tmp_path / "a"), *base]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: 1 case(s) hold a study an earlier case holds too (SE1 and SE2)") == 1
    assert "give the folder above it as -d" in err
    assert "hold a study an earlier case holds too" in log.read_text(encoding="utf-8")
    assert cli_main(["-d", str(loose), "-o", str(tmp_path / "b"), *base]) == 0
    err = capsys.readouterr().err
    assert f"warning: no case folders in {loose}: its 4 file(s) lie directly in it" in err
    sample = generate_dicom_dataset(tmp_path / "s", bulk_cases=2)
    assert cli_main(["-d", str(sample.cases_root), "-o", str(tmp_path / "c"), *base]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full (a full disk)")
def test_a_log_on_a_full_disk_is_said_once_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--log on a full disk (/dev/full: every write fails with ENOSPC) printed logging's
    traceback for every line and ended in an error naming no file; now one warning, the
    tables written, and the closing line says the log stopped."""
    sample = generate_dicom_dataset(tmp_path / "s", bulk_cases=1)
    out = tmp_path / "out"
    assert cli_main(["-d", str(sample.cases_root), "-o", str(out), "--log", "/dev/full"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Logging error" not in captured.err
    assert captured.err.count("warning: --log /dev/full: No space left on device") == 1
    assert "log: /dev/full (stopped early: No space left on device)" in captured.out
    assert (out / "extraction_report.csv").is_file()


FULL_DISK_RUN = """
import resource, signal, sys
from dcm_extractor.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("room", [20_000, 60_000])  # the disk full as the tables stream, at commit
def test_a_full_disk_ends_the_run_in_one_line_naming_the_file_and_leaves_no_temporary(
    tmp_path: Path, room: int
) -> None:
    """A disk filling up in the middle of a run (made real by a file-size limit: the
    kernel refuses the write past it, EFBIG for ENOSPC) said "[Errno 28] No space left on
    device" naming no file, printed pyarrow's traceback ("Exception ignored in
    ParquetWriter.__del__") and left a temporary file of every merged table behind, filling
    the disk further: the first table that could not be discarded stopped the others'
    removal; a disk full as the tables were committed left the study table's. Now one line
    naming the table, nothing left; with room again, the next run resumes the cases done
    and writes what a run with room from the start writes."""
    sample = generate_dicom_dataset(tmp_path / "s", bulk_cases=12)
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    argv = ["-d", str(sample.cases_root), "--merge-all", "--series", "--instances",
            "--format", "csv,parquet,xlsx", "--log", os.devnull, "-q"]  # fmt: skip
    system_temporary = tmp_path / "system_tmp"  # (the xlsx sheets were spooled there, and
    system_temporary.mkdir()  # a failed run left them: patients' names, in /tmp)
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK_RUN, str(room), *argv, "-o", str(out)],
        capture_output=True, text=True, check=False, timeout=600,
        env={**os.environ, "TMPDIR": str(system_temporary)},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert not list(system_temporary.iterdir())
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dcm-extract: error: {out}{os.sep}"), lines
    assert lines[0].endswith(": File too large"), lines  # (EFBIG: ENOSPC on a full disk)
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert cli_main([*argv, "-o", str(out)]) == 0
    assert cli_main([*argv, "-o", str(fresh)]) == 0
    for name in ("all_cases.csv", "all_series.csv", "all_instances.csv", "extraction_report.csv"):
        assert (out / name).read_bytes() == (fresh / name).read_bytes(), name


def test_a_working_folder_where_the_default_log_cannot_be_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default log is logs/extractor.log in the working folder (the original
    extractor's): from a read-only one (a cluster node's home, a data mount) every run was
    refused. The log goes beside --out, said; a --log given that fails is still an error.
    (Here ``logs`` is a file, so nothing can be made under it, whoever runs the test.)"""
    sample = generate_dicom_dataset(tmp_path / "s", bulk_cases=1)
    here = tmp_path / "here"
    here.mkdir()
    (here / "logs").write_text("not a folder")
    monkeypatch.chdir(here)
    out = tmp_path / "out"
    assert cli_main(["-d", str(sample.cases_root), "-o", str(out), "-q"]) == 0
    captured = capsys.readouterr()
    beside = tmp_path / "out.extractor.log"
    assert (
        f"warning: logs/extractor.log cannot be written here (File exists): the log is {beside}"
        in captured.err
    )
    assert f"log: {beside}" in captured.out
    assert (
        "case" in beside.read_text(encoding="utf-8") and (out / "extraction_report.csv").is_file()
    )
    argv = ["-d", str(sample.cases_root), "-o", str(out), "-q", "--log", "logs/mine.log"]
    assert cli_main(argv) == 2
    assert "error: --log logs/mine.log: File exists" in capsys.readouterr().err


def test_an_output_folder_that_takes_no_bytes_is_named(tmp_path: Path) -> None:
    """A write that fails in the output folder (here a file-size limit of 0, as a full
    disk would) is one error naming the file: the run's lock file, which it writes
    first (it named no file: "[Errno 27] File too large")."""
    sample = generate_dicom_dataset(tmp_path / "s", bulk_cases=1)
    out = tmp_path / "out"
    command = 'trap "" XFSZ; ulimit -f 0; exec "$0" "$@"'
    done = subprocess.run(
        [
            "sh",
            "-c",
            command,
            sys.executable,
            "-m",
            "dcm_extractor",
            "-d",
            str(sample.cases_root),
            "-o",
            str(out),
            "--log",
            str(tmp_path / "run.log"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )  # fmt: skip  (the output is a pipe: the limit is on files)
    assert done.returncode == 1
    assert done.stdout.strip() == f"dcm-extract: error: {out / '.dcm-extract.lock'}: File too large"


def test_parallel_workers_give_the_same_outputs(workspace: Path) -> None:
    data = workspace / "data" / "dicom_cases"
    outputs = {}
    for workers in ("1", "2"):
        out = workspace / f"out{workers}"
        argv = ["-d", str(data), "-o", str(out), "--merge-all", "--workers", workers]
        assert (
            main([*argv, "--log", str(out / "l"), "--projectid-map", str(workspace / "ids.json")])
            == 0
        )
        outputs[workers] = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".csv"}
    assert outputs["1"] == outputs["2"]
    assert main(["--workers", "0"]) == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--case-timeout", "inf"], "--case-timeout must be a positive number of seconds"),
        (["--case-timeout", "nan"], "--case-timeout must be a positive number of seconds"),
        (["--workers", "100000"], "--workers 100000: this machine has"),
        (["-o", "{file}"], "exists and is not a folder"),
        (["-o", "{file}/sub"], "--out"),
        (["--log", "{file}/sub/x.log"], "--log"),
        (["--log", "{folder}"], "is a folder"),
        (
            ["--format", "csv,docx"],
            "--format: must be some of csv, json, parquet, xlsx, got csv, docx\n",
        ),  # (said once: not again as the instance table's formats)
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    data = tmp_path / "data"
    (data / "case1").mkdir(parents=True)
    (tmp_path / "plain.txt").write_text("x")
    fill = {"file": str(tmp_path / "plain.txt"), "folder": str(tmp_path)}
    argv = ["-d", str(data), "-o", str(tmp_path / "out"), "--log", str(tmp_path / "l.log")]
    argv += [part.format(**fill) for part in extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]  # (argparse adds usage)
    assert len(lines) == 1 and message in lines[0] + "\n" and "Traceback" not in err, err


@pytest.mark.parametrize("workers", [1, 2])
def test_the_summary_adds_up_to_everything_on_disk(tmp_path: Path, workers: int) -> None:
    """The issue's case: hidden case folders, a FIFO, links and an empty zip, all counted,
    the same with one worker and with a pool."""
    sample = generate_dicom_dataset(tmp_path / "s", bulk_cases=1)
    root = sample.cases_root
    (root / ".Trash").mkdir()
    (root / ".Trash" / "old.dcm").write_bytes(b"x")
    (root / ".Trash" / "older.dcm").write_bytes(b"y")
    case = next(p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith("."))
    os.mkfifo(case / "pipe")
    (case / "gone").symlink_to(case / "nothing")
    with zipfile.ZipFile(case / "empty.zip", "w"):
        pass
    os.mkfifo(root / "pipe_at_root")

    def entries(path: Path) -> int:  # a zip inside a case counts its files (or itself)
        if path.suffix.lower() != ".zip":
            return 1
        members = [n for n in zipfile.ZipFile(path).namelist() if not n.endswith("/")]
        return len(members) or 1

    at_root = sum(1 for p in root.iterdir() if not p.is_dir())  # not cases: one entry each
    in_folders = sum(
        entries(Path(folder) / name)
        for top in root.iterdir()
        if top.is_dir()
        for folder, _, files in os.walk(top)
        for name in files
    )
    on_disk = at_root + in_folders
    options = RunOptions(data_root=root, out=tmp_path / "out", merge_all=True, workers=workers)
    summary = run(options)
    assert summary.files == on_disk
    assert summary.images + summary.skipped == summary.files
    report = read_csv(tmp_path / "out" / "extraction_report.csv")
    reasons = {r["location"]: r["reason"] for r in report}
    assert reasons[".Trash"] == "hidden_folder"
    assert reasons["pipe_at_root"] == "not_in_case"
    assert reasons[f"{case.name}/pipe"] == "not_regular_file"
    assert reasons[f"{case.name}/gone"] == "dangling_link"
    assert reasons[f"{case.name}/empty.zip"] == "empty_zip"


def test_the_python_api_and_its_checked_options(tmp_path: Path, dicom_sample: DicomSample) -> None:
    import dcm_extractor

    options = dcm_extractor.RunOptions(dicom_sample.cases_root, tmp_path / "out", merge_all=True)
    again = dcm_extractor.RunOptions.from_dict(options.to_dict())
    assert again == options
    keyed = dcm_extractor.RunOptions(
        dicom_sample.cases_root, tmp_path / "o", pseudonymizer=Pseudonymizer(b"k" * 32)
    )
    assert "k" * 32 not in json.dumps(keyed.to_dict())  # the key never leaves
    summary = dcm_extractor.run(options)
    assert summary.files == summary.images + summary.skipped and summary.rows > 0
    for bad, message in (
        ({"workers": 0}, "workers 0"),
        ({"formats": ("xls",)}, "formats must be"),
        ({"case_timeout": float("nan")}, "time limit"),
        ({"dates": "shift"}, "need a pseudonym key"),
    ):
        with pytest.raises(dcm_extractor.OptionsError, match=message):
            dcm_extractor.RunOptions(dicom_sample.cases_root, tmp_path / "x", **bad)  # type: ignore[arg-type]
    with pytest.raises(dcm_extractor.OptionsError, match="unknown options: colour"):
        dcm_extractor.RunOptions.from_dict({**options.to_dict(), "colour": 1})
    assert dcm_extractor.OptionsError.exit_code == 2


def test_one_command_line_with_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--help"]) == 0
    shown = capsys.readouterr().out
    assert "--data-root" in shown and "dcm-extract sample" in shown and "keygen" in shown
    assert cli_main(["keygen"]) == 2  # argparse: the path is missing
    assert "the following arguments are required: path" in capsys.readouterr().err
    assert cli_main(["--no-such-option"]) == 2
    assert cli_main(["sample", "--help"]) == 0
    assert "--bulk-cases" in capsys.readouterr().out


def test_usage_errors_say_what_was_given_and_take_no_abbreviations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--format", "ods"]) == 2
    err = capsys.readouterr().err
    assert "got ods" in err and "('ods',)" not in err and err.count("\n") == 1
    assert main(["--merge-al"]) == 2  # a typo is not --merge-all
    assert "unrecognized arguments: --merge-al" in capsys.readouterr().err
