"""Both tools on a server whose locale is GBK (``LANG=zh_CN.GBK``, as some Chinese hospital
servers are set up): Python then reads file names as GBK, so a UTF-8 name such as 王小明
comes as other, valid, text (鐜嬪皬鏄?) - which only its bytes tell apart. The tables must
be the same in any locale, no name may crash a run, and names written are read back.

The locale is made with ``localedef`` into a temporary folder (``LOCPATH``); where the
machine cannot make it, the tests skip saying so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dcm_extractor.sample import DicomSample
from medmask.sample import MaskSample

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="LOCPATH locales are glibc's")

TABLES = ("all_cases.csv", "all_series.csv", "all_instances.csv", "case_projectid_map.json")


@pytest.fixture(scope="module")
def gbk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a GBK locale."""
    folder = tmp_path_factory.mktemp("locales")
    if shutil.which("localedef") is None:
        pytest.skip("no localedef to make the zh_CN.GBK locale")
    made = subprocess.run(
        ["localedef", "-i", "zh_CN", "-f", "GBK", str(folder / "zh_CN.GBK")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    env = {**os.environ, "LOCPATH": str(folder), "LANG": "zh_CN.GBK", "LC_ALL": "zh_CN.GBK"}
    env.pop("PYTHONIOENCODING", None)
    env.pop("PYTHONUTF8", None)
    probe = [sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"]
    found = subprocess.run(probe, env=env, capture_output=True, text=True, check=False)
    if found.stdout.strip() != "gbk":
        pytest.skip(f"the zh_CN.GBK locale could not be made here: {made.stderr.strip()}")
    return env


def run(module: str, args: list[str | bytes], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, env=env, check=False,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in done.stderr
    return done.stderr.decode("gbk" if env else "utf-8", "backslashreplace")


def test_dcm_extract_writes_the_same_tables_in_a_gbk_locale(
    gbk: dict[str, str], dicom_sample: DicomSample, tmp_path: Path
) -> None:
    """UTF-8 names (the sample's 王小明, CT增强.zip), a Windows copy's GBK name, and a
    UTF-8 name GBK cannot hold (Øle: the old code's traceback, UnicodeEncodeError, making
    its case's file name). Tables byte for byte those of a UTF-8 locale; Øle's own files
    renamed, said in the report; a query over an output folder named 输出 answers."""
    root = tmp_path / "cases"
    shutil.copytree(dicom_sample.cases_root, root, symlinks=True)
    some = next(p for p in sorted(root.iterdir()) if p.is_dir())
    shutil.copytree(some, os.fsdecode(os.fsencode(root) + b"/" + "李四".encode("gbk")))
    shutil.copytree(some, root / "Øle")
    common = ["-d", str(root), "--merge-all", "--series", "--instances", "--format", "csv,parquet",
              "--log", os.devnull]  # fmt: skip
    run("dcm_extractor", [*common, "-o", str(tmp_path / "utf8")])
    out = os.fsencode(tmp_path) + "/输出".encode()  # (UTF-8 bytes, whatever the locale)
    run("dcm_extractor", [*common, "-o", out], gbk)
    gbk_out = Path(os.fsdecode(out))
    for table in TABLES:
        assert (gbk_out / table).read_bytes() == (tmp_path / "utf8" / table).read_bytes(), table
    cases = (gbk_out / "all_cases.csv").read_text(encoding="utf-8")
    assert "CT增强.zip" in cases and "李四" in cases and "Øle" in cases
    report = (gbk_out / "extraction_report.csv").read_text(encoding="utf-8")
    assert "Øle,Øle,case_files_renamed,the case's name has characters file names" in report
    done = subprocess.run(
        [sys.executable, "-m", "dcm_extractor", "query", out, "SELECT count(*) AS n FROM cases"],
        capture_output=True, env=gbk, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode("gbk", "replace")
    assert done.stdout.split()[1] == str(cases.count("\n") - 1).encode()


def test_medmask_names_are_the_files_in_a_gbk_locale(
    gbk: dict[str, str], mask_sample: MaskSample, tmp_path: Path
) -> None:
    """Packed in a GBK locale, UTF-8 named files (肝脏.nii.gz) gave masks named 鑲濊剰;
    unpacking a mask named Øle failed ("'gbk' codec can't encode character"), and one
    named 脾 wrote GBK bytes that read back as Ƣ. Now the names are the files', in any
    locale, and what unpack writes packs back to the same names."""
    masks = tmp_path / "masks"
    masks.mkdir()
    for name, source in (("肝脏", "liver"), ("脾", "spleen"), ("Øle", "kidney_left")):
        shutil.copy(mask_sample.masks_dir / f"{source}.nii.gz", masks / f"{name}.nii.gz")
    run("medmask", ["pack", str(masks), "-o", str(tmp_path / "a.mska"), "-q"], gbk)
    run("medmask", ["unpack", str(tmp_path / "a.mska"), "-o", str(tmp_path / "back")], gbk)
    run("medmask", ["pack", str(tmp_path / "back"), "-o", str(tmp_path / "b.mska"), "-q"], gbk)
    from medmask import MaskArchive

    for archive in ("a.mska", "b.mska"):
        assert sorted(MaskArchive(tmp_path / archive).all_names()) == ["Øle", "肝脏", "脾"]
