"""Folder and file names that are not UTF-8 (a Windows copy of a Chinese export on Linux):
the run goes through, and every name lands in the outputs as readable text."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dcm_extractor.extractor import main
from dcm_extractor.outputs.query import query, query_to_file
from dcm_extractor.sample import DicomSample
from dcm_extractor.sources.names import original_bytes, readable, reading_of

GBK_ZHANG_SAN = "张三".encode("gbk")  # b"\xd5\xc5\xc8\xfd"


def byte_path(parent: Path, raw: bytes) -> Path:
    return Path(os.fsdecode(os.fsencode(parent) + b"/" + raw))


@pytest.fixture
def root(tmp_path: Path, dicom_sample: DicomSample) -> Path:
    cases = sorted(d for d in dicom_sample.cases_root.iterdir() if d.is_dir())
    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(cases[0], byte_path(root, GBK_ZHANG_SAN))  # GBK: not UTF-8
    shutil.copytree(cases[1], root / "张三")  # the same name in UTF-8, beside it
    other = shutil.copytree(cases[2], root / "ok_case")
    first = next(p for p in sorted(Path(other).rglob("*")) if p.is_file())
    first.rename(byte_path(first.parent, b"bad\xff\x01name.dcm"))
    return root


@pytest.mark.parametrize("resume", [[], ["--no-resume"]])
def test_names_that_are_not_utf8_go_through_as_text(
    root: Path, tmp_path: Path, resume: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["-d", str(root), "-o", str(out), "--merge-all", "-q", "--log", str(tmp_path / "l")]
    assert main([*argv, *resume]) == 0, capsys.readouterr().err
    ids = json.loads((out / "case_projectid_map.json").read_text(encoding="utf-8"))
    assert sorted(ids) == ["ok_case", "张三", "张三 [d5c5c8fd]"]  # never one ID for two folders
    assert len(set(ids.values())) == 3
    merged = (out / "all_cases.csv").read_text(encoding="utf-8-sig")
    assert "badÿ\x01name.dcm" in merged or "badÿ\x01name.dcm" in (
        out / "extraction_report.csv"
    ).read_text(encoding="utf-8")
    assert (out / "张三.csv").is_file()
    log = (tmp_path / "l").read_bytes()
    log.decode("utf-8")  # the log is UTF-8 throughout
    assert main([*argv, *resume]) == 0  # and again: the same IDs
    assert json.loads((out / "case_projectid_map.json").read_text(encoding="utf-8")) == ids


def test_an_output_folder_named_in_gbk_is_printed_as_its_bytes(root: Path, tmp_path: Path) -> None:
    """On a UTF-8 terminal (stdout strict UTF-8) the summary names the folder in its bytes
    on disk, as ls does, rather than a traceback."""
    out = byte_path(tmp_path, GBK_ZHANG_SAN)
    done = subprocess.run(
        [sys.executable, "-m", "dcm_extractor", "-d", str(root), "-o", str(out), "-q",
         "--log", str(tmp_path / "l")],
        capture_output=True, check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert b"tables in " + os.fsencode(out) + b"; skipped" in done.stdout
    # DuckDB opens no path that is not UTF-8: the tables are still asked and answered
    answer = query(out, "SELECT count(*) AS n FROM problems").column("n")[0].as_py()
    with (out / "extraction_report.csv").open(encoding="utf-8", newline="") as stream:
        assert answer == len(list(csv.DictReader(stream))) > 0
    target = byte_path(tmp_path, "答案".encode("gbk") + b".parquet")
    assert query_to_file(out, "SELECT * FROM problems", target) == answer
    with target.open("rb") as stream:
        assert pq.read_table(stream).num_rows == answer  # pyarrow's reading


def test_the_original_bytes_come_back_from_the_text() -> None:
    for raw in (GBK_ZHANG_SAN, b"bad\xff.dcm", "王小明".encode(), b"\x81\x30\x81\x30", b"a\x80"):
        name = os.fsdecode(raw)
        assert original_bytes(readable(name), reading_of(name)) == raw
    assert readable(os.fsdecode(GBK_ZHANG_SAN)) == "张三"
    assert reading_of("张三") == "utf-8"
    for raw in ("脾".encode("gbk"), "胃".encode("gbk"), "fémur".encode(), "печень".encode()):
        name = os.fsdecode(raw)
        assert original_bytes(readable(name), reading_of(name)) == raw


# GBK names that are valid UTF-8 too (and were read so): 脾 (spleen) as Ƣ, 胃 (stomach) as θ
ORGANS = {"脾": "Ƣ", "胃": "θ"}


def test_gbk_names_that_are_utf8_by_chance_are_read_as_gbk(
    dicom_sample: DicomSample, tmp_path: Path
) -> None:
    """A Windows copy whose files are named by organ in GBK: 脾 and 胃 are two bytes each
    that UTF-8 reads as Ƣ and θ, and were so named in the tables, loose files and zip
    members alike; UTF-8 names that are GBK too (fémur, печень) stay UTF-8. --paths gives
    back the files on disk."""
    import zipfile

    assert [("脾".encode("gbk").decode("utf-8")), "胃".encode("gbk").decode("utf-8")] == list(
        ORGANS.values()
    )  # (the premise)
    case = tmp_path / "root" / "case"
    case.mkdir(parents=True)
    images = sorted(p for p in dicom_sample.cases_root.rglob("*.dcm") if p.is_file())[:4]
    names = ["脾".encode("gbk"), "fémur".encode(), "печень".encode()]
    for raw, image in zip(names, images[:3], strict=True):
        shutil.copy(image, byte_path(case, raw + b".dcm"))
    with zipfile.ZipFile(case / "more.zip", "w") as archive:
        archive.writestr("xx.dcm", images[3].read_bytes())
    data = (case / "more.zip").read_bytes()  # the name's GBK bytes, no UTF-8 flag (Windows)
    (case / "more.zip").write_bytes(data.replace(b"xx.dcm", "胃.dcm".encode("gbk")))
    out = tmp_path / "out"
    argv = ["-d", str(tmp_path / "root"), "-o", str(out), "--instances", "--format", "csv",
            "-q", "--log", str(tmp_path / "l")]  # fmt: skip
    assert main(argv) == 0
    rows = query(out, "SELECT FilePath, ZipMember FROM instances").to_pylist()
    assert sorted((r["FilePath"], r["ZipMember"]) for r in rows) == sorted([
        ("case/more.zip", "胃.dcm"), ("case/fémur.dcm", ""), ("case/печень.dcm", ""),
        ("case/脾.dcm", ""),
    ])  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "dcm_extractor", "query", str(out),
         "SELECT FilePath, ZipMember FROM instances WHERE FilePath LIKE '%脾%'", "--paths",
         "-d", str(tmp_path / "root")],
        capture_output=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == os.fsencode(case) + b"/" + "脾".encode("gbk") + b".dcm\n"
