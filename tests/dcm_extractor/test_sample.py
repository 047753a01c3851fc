"""The DICOM sample generator: files read back with pydicom to the ground truth."""

from __future__ import annotations

import io
import json
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from dcm_extractor.cli import main
from dcm_extractor.errors import SampleDataError
from dcm_extractor.sample import age_in_years, generate_dicom_dataset, showcase_patients
from dcm_extractor.sample.instances import BASIC_TEXT_SR
from dcm_extractor.sample.truth import TRUTH_FORMAT

DICOMDIR_CLASS = "1.2.840.10008.1.3.10"


def load_truth(path: Path) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert truth["format"] == TRUTH_FORMAT
    return truth


def record_bytes(root: Path, record: dict[str, Any], encoding: str | None = None) -> bytes:
    """The bytes of a file on disk or of a zip member, as the truth locates them."""
    if record["member"] is None:
        return (root / record["path"]).read_bytes()
    with zipfile.ZipFile(root / record["path"], metadata_encoding=encoding) as archive:
        return archive.read(record["member"])


def member_encoding(root: Path, zip_rel: str) -> str | None:
    """GBK when the zip's names lack the UTF-8 flag and are not ASCII (how Windows writes)."""
    with zipfile.ZipFile(root / zip_rel) as archive:
        legacy = any(
            not info.flag_bits & 0x800 and not info.orig_filename.isascii()
            for info in archive.infolist()
        )
    return "gbk" if legacy else None


def all_records(truth: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(case, record) for case in truth["cases"] for record in case["files"]]


@pytest.fixture(scope="module")
def truth(dicom_sample: Any) -> dict[str, Any]:
    return load_truth(dicom_sample.truth_path)


def test_every_file_on_disk_is_in_the_truth_and_back(
    dicom_sample: Any, truth: dict[str, Any]
) -> None:
    root = dicom_sample.cases_root
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    in_truth = {record["path"] for _, record in all_records(truth)}
    assert on_disk == in_truth
    members = defaultdict(set)
    for _, record in all_records(truth):
        if record["member"] is not None:
            members[record["path"]].add(record["member"])
    for zip_rel, names in members.items():
        with zipfile.ZipFile(
            root / zip_rel, metadata_encoding=member_encoding(root, zip_rel)
        ) as archive:
            assert set(archive.namelist()) == names
    assert dicom_sample.file_count == len(all_records(truth))


def test_images_read_back_to_the_patients_values(dicom_sample: Any, truth: dict[str, Any]) -> None:
    root = dicom_sample.cases_root
    checked = 0
    for case, record in all_records(truth):
        if record["role"] == "junk":
            continue
        encoding = member_encoding(root, record["path"]) if record["member"] else None
        ds = dcmread(io.BytesIO(record_bytes(root, record, encoding)))
        patient = case["patient"]
        assert ds.SOPInstanceUID == record["sop_instance_uid"]
        assert ds.SeriesInstanceUID == record["series_instance_uid"]
        assert ds.SpecificCharacterSet == patient["charset"]
        assert str(ds.PatientName) == patient["name"]
        assert ds.PatientID == patient["patient_id"]
        assert ds.PatientBirthDate == patient["birth_date"]
        assert ds.get("PatientAge") == patient["age"]
        assert len(ds.PixelData) == ds.Rows * ds.Columns * 2
        checked += 1
    assert checked > 30


@pytest.mark.parametrize(
    ("case_name", "codec"),
    [("王小明", "gb18030"), ("LiNa_007", "utf-8"), ("ZhaoLei", "gbk"), ("Mueller_Anna", "latin-1")],
)
def test_names_are_stored_in_the_declared_character_set(
    dicom_sample: Any, truth: dict[str, Any], case_name: str, codec: str
) -> None:
    root = dicom_sample.cases_root
    case = next(c for c in truth["cases"] if c["name"] == case_name)
    record = next(r for r in case["files"] if r["role"] == "image")
    encoding = member_encoding(root, record["path"]) if record["member"] else None
    raw = record_bytes(root, record, encoding)
    # The raw bytes hold the name in that code page, not in UTF-8 (unless UTF-8 is declared).
    assert case["patient"]["name"].encode(codec) in raw
    if codec != "utf-8":
        assert case["patient"]["name"].encode("utf-8") not in raw


def test_showcase_covers_every_age_form_and_leading_zero_ids() -> None:
    patients = showcase_patients().values()
    ages = {p.age for p in patients}
    assert {"045Y", "006M", "010D", "003W", None} <= ages
    assert all(p.birth_date for p in patients if p.age is None)
    assert any(p.patient_id.startswith("00") for p in patients)
    assert {p.charset for p in patients} >= {"ISO_IR 100", "GB18030", "ISO_IR 192", "GBK"}


@pytest.mark.parametrize(
    ("age", "birth", "study", "years"),
    [
        ("045Y", "", "20240101", 45),
        ("006M", "", "20240101", 0),
        ("018M", "", "20240101", 1),
        ("010D", "", "20240101", 0),
        ("003W", "", "20240101", 0),
        (None, "19800315", "20240102", 43),
        (None, "19800315", "20240315", 44),
    ],
)
def test_age_in_years(age: str | None, birth: str, study: str, years: int) -> None:
    assert age_in_years(age, birth, study) == years


def test_junk_is_what_the_truth_says(dicom_sample: Any, truth: dict[str, Any]) -> None:
    root = dicom_sample.cases_root
    reasons = defaultdict(list)
    for _, record in all_records(truth):
        if record["role"] == "junk":
            reasons[record["reason"]].append(record)
    assert set(reasons) == {"not_dicom", "empty", "truncated", "non_image", "dicomdir"}
    for record in reasons["empty"]:
        assert record_bytes(root, record) == b""
    for record in reasons["not_dicom"]:
        data = record_bytes(root, record)
        assert data[128:132] != b"DICM"
        with pytest.raises(InvalidDicomError):
            dcmread(io.BytesIO(data))
    assert any(r["path"].endswith("README.txt") for r in reasons["not_dicom"])
    assert any(
        r["path"].endswith("Thumbs.db") and r["member"] is None for r in reasons["not_dicom"]
    )
    assert any((r["member"] or "").endswith("Thumbs.db") for r in reasons["not_dicom"])
    for record in reasons["truncated"]:
        ds = dcmread(io.BytesIO(record_bytes(root, record)))
        assert 0 < len(ds.PixelData) < ds.Rows * ds.Columns * 2  # cut inside the pixel data
    for record in reasons["non_image"]:
        ds = dcmread(io.BytesIO(record_bytes(root, record)))
        assert ds.SOPClassUID == BASIC_TEXT_SR
        assert "PixelData" not in ds
    for record in reasons["dicomdir"]:
        ds = dcmread(root / record["path"])
        assert ds.file_meta.MediaStorageSOPClassUID == DICOMDIR_CLASS
        referenced = {
            item.ReferencedSOPInstanceUIDInFile
            for item in ds.DirectoryRecordSequence
            if item.DirectoryRecordType == "IMAGE"
        }
        case_dir = record["path"].split("/")[0]
        case = next(c for c in truth["cases"] if c["name"] == case_dir)
        assert referenced == {r["sop_instance_uid"] for r in case["files"] if r["role"] == "image"}


def test_gbk_member_names_need_the_gbk_codec(dicom_sample: Any) -> None:
    path = dicom_sample.cases_root / "王小明" / "CT平扫.zip"
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        assert all(not info.flag_bits & 0x800 for info in infos)  # no UTF-8 flag
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in infos)
        assert not any("平扫" in name for name in archive.namelist())  # cp437 mojibake
    with zipfile.ZipFile(path, metadata_encoding="gbk") as archive:
        assert all(name.startswith("王小明/平扫/IM") for name in archive.namelist())
    with zipfile.ZipFile(dicom_sample.cases_root / "王小明" / "CT增强.zip") as stored:
        assert {i.compress_type for i in stored.infolist()} == {zipfile.ZIP_STORED}


def test_extracted_copy_equals_the_zip_members(dicom_sample: Any, truth: dict[str, Any]) -> None:
    root = dicom_sample.cases_root
    case = next(c for c in truth["cases"] if c["name"] == "LiNa_007")
    duplicates = [r for r in case["files"] if r["role"] == "duplicate"]
    assert duplicates
    with zipfile.ZipFile(root / "LiNa_007" / "LiNa_CT.zip") as archive:
        for record in duplicates:
            member = record["path"].removeprefix("LiNa_007/")
            assert (root / record["path"]).read_bytes() == archive.read(member)
    assert [row["FileName"] for row in case["rows"]] == ["LiNa_CT.zip"]


def test_layouts_users_have(dicom_sample: Any, truth: dict[str, Any]) -> None:
    root = dicom_sample.cases_root
    cases = {c["name"]: c for c in truth["cases"]}
    smith = [r for r in cases["Smith_John"]["files"] if r["role"] == "image"]
    assert {r["path"].endswith(".dcm") for r in smith} == {True, False}
    assert max(r["path"].count("/") for r in smith) == 3  # case/study/series/file
    studies = {dcmread(root / r["path"], stop_before_pixels=True).StudyInstanceUID for r in smith}
    assert len(studies) == 2
    assert cases["Smith_John"]["rows"][0]["conflicts"] == ["StudyInstanceUID"]
    top_level = [c for c in truth["cases"] if c["top_level_zip"]]
    assert len(top_level) == 2
    assert all((root / c["top_level_zip"]).is_file() for c in top_level)
    bulk = [c for c in truth["cases"] if c["name"].endswith(("_00000", "_00001"))]
    assert [bool(r["member"]) for c in bulk for r in c["files"][:1]] == [False, True]


def test_rows_agree_with_an_independent_count(dicom_sample: Any, truth: dict[str, Any]) -> None:
    """Recount each row from the files themselves with pydicom, not from the generator's plans."""
    root = dicom_sample.cases_root
    for case in truth["cases"]:
        images: dict[str, list[Any]] = defaultdict(list)
        for record in case["files"]:
            if record["role"] != "image":
                continue
            encoding = member_encoding(root, record["path"]) if record["member"] else None
            ds = dcmread(io.BytesIO(record_bytes(root, record, encoding)), stop_before_pixels=True)
            source = Path(record["path"]).name if record["member"] else f"{case['name']}.dir"
            images[source].append(ds)
        rows = {row["FileName"]: row for row in case["rows"]}
        assert set(rows) == set(images)
        for source, datasets in images.items():
            row = rows[source]
            assert row["ImageCount"] == len(datasets)
            assert row["SeriesCount"] == len({ds.SeriesInstanceUID for ds in datasets})
            assert row["PatientID"] in {ds.PatientID for ds in datasets}
            assert row["Manufacturer"] == datasets[0].Manufacturer
            assert row["Rows"] == datasets[0].Rows


def test_same_seed_same_bytes_other_seed_other_uids(tmp_path: Path) -> None:
    first = generate_dicom_dataset(tmp_path / "a", seed=7, bulk_cases=2)
    second = generate_dicom_dataset(tmp_path / "b", seed=7, bulk_cases=2)
    third = generate_dicom_dataset(tmp_path / "c", seed=8, bulk_cases=2)
    files = sorted(
        p.relative_to(first.cases_root) for p in first.cases_root.rglob("*") if p.is_file()
    )
    assert files == sorted(
        p.relative_to(second.cases_root) for p in second.cases_root.rglob("*") if p.is_file()
    )
    for rel in files:
        assert (first.cases_root / rel).read_bytes() == (second.cases_root / rel).read_bytes(), rel
    assert first.truth_path.read_bytes() == second.truth_path.read_bytes()
    uids = {r["sop_instance_uid"] for _, r in all_records(load_truth(first.truth_path))}
    other = {r["sop_instance_uid"] for _, r in all_records(load_truth(third.truth_path))}
    assert uids - {None}
    assert not (uids - {None}) & other


def test_bulk_knobs_scale_the_data_set(tmp_path: Path) -> None:
    sample = generate_dicom_dataset(
        tmp_path, showcase=False, bulk_cases=4, series_per_case=3, images_per_series=5, image_size=8
    )
    truth = load_truth(sample.truth_path)
    assert sample.file_count == 4 * 3 * 5
    assert [row["ImageCount"] for c in truth["cases"] for row in c["rows"]] == [15] * 4
    assert sum(1 for p in sample.cases_root.rglob("*.zip")) == 2
    ds = dcmread(next(sample.cases_root.rglob("*.dcm")))
    assert (ds.Rows, ds.Columns, len(ds.PixelData)) == (8, 8, 128)


def test_real_ct_template(tmp_path: Path, shared_data: Path) -> None:
    template = shared_data / "ct_sample" / "I10"
    sample = generate_dicom_dataset(
        tmp_path, showcase=False, bulk_cases=1, template=template, image_size=16
    )
    ds = dcmread(next(sample.cases_root.rglob("*.dcm")))
    original = dcmread(template, stop_before_pixels=True)
    assert (ds.ImageType, ds.BodyPartExamined) == (original.ImageType, original.BodyPartExamined)
    assert ds.SOPInstanceUID != original.SOPInstanceUID
    assert (ds.Rows, ds.Columns) == (16, 16)


def test_relative_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sample = generate_dicom_dataset("out")
    truth = load_truth(sample.truth_path)
    cd_export = next(c for c in truth["cases"] if c["name"] == "Mueller_Anna")
    assert all((tmp_path / "out" / "dicom_cases" / r["path"]).is_file() for r in cd_export["files"])


def test_refuses_to_overwrite_unless_told(tmp_path: Path) -> None:
    generate_dicom_dataset(tmp_path, showcase=False, bulk_cases=1)
    with pytest.raises(SampleDataError, match="already exists"):
        generate_dicom_dataset(tmp_path, showcase=False, bulk_cases=1)
    generate_dicom_dataset(tmp_path, showcase=False, bulk_cases=2, overwrite=True)
    assert len(load_truth(tmp_path / "ground_truth.json")["cases"]) == 2


@pytest.mark.parametrize("bad", [{"images_per_series": 0}, {"bulk_cases": -1}, {"image_size": 0}])
def test_bad_knobs_are_value_errors(tmp_path: Path, bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        generate_dicom_dataset(tmp_path, **bad)  # type: ignore[arg-type]


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", str(tmp_path), "--no-showcase", "--bulk-cases", "1"]) == 0
    assert "ground_truth.json" in capsys.readouterr().out
    assert main(["sample", str(tmp_path), "--no-showcase"]) == 1
    assert "already exists; --overwrite (overwrite=True) replaces it" in capsys.readouterr().err
    assert main(["sample", str(tmp_path), "--image-size", "0"]) == 2
    assert main(["--version"]) == 0
    assert "dcm-extract" in capsys.readouterr().out
