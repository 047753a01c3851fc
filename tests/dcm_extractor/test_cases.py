"""Reading cases: every generated row equals its ground truth, every file is accounted for."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_charset_files, get_testdata_file

from dcm_extractor.reading.facts import ImageFacts, Skip
from dcm_extractor.reading.fullparse import inspect_dicom
from dcm_extractor.sample import DicomSample
from dcm_extractor.sources.cases import iter_case_dirs, scan_case
from dcm_extractor.sources.rows import FIXED_COLUMNS, age_in_years, read_age
from dcm_extractor.sources.zipread import MemberReadError, ZipMember, ZipProblem, iter_zip_members


@pytest.fixture(scope="module")
def truth(dicom_sample: DicomSample) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dicom_sample.truth_path.read_text(encoding="utf-8"))
    return data


def test_every_row_equals_its_ground_truth(
    dicom_sample: DicomSample, truth: dict[str, Any]
) -> None:
    expected = {c["name"]: c for c in truth["cases"] if not c["top_level_zip"]}
    scanned = {
        d.name: scan_case(d, dicom_sample.cases_root)
        for d in iter_case_dirs(dicom_sample.cases_root)
    }
    assert set(scanned) == set(expected)
    for name, result in scanned.items():
        want = [
            {k: v for k, v in row.items() if k != "conflicts"} for row in expected[name]["rows"]
        ]
        got = [{k: v for k, v in row.items() if k != "ProjectID"} for row in result.rows]
        assert got == want, name
        assert list(result.rows[0]) == FIXED_COLUMNS
        conflicts = {e.detail.split()[0] for e in result.report if e.reason == "conflict"}
        assert conflicts == {c for row in expected[name]["rows"] for c in row["conflicts"]}


def test_every_file_is_counted_or_reported(
    dicom_sample: DicomSample, truth: dict[str, Any]
) -> None:
    for case in truth["cases"]:
        if case["top_level_zip"]:
            continue
        result = scan_case(dicom_sample.cases_root / case["name"], dicom_sample.cases_root)
        assert result.files == len(case["files"])
        assert result.images + result.skipped == result.files
        reported = {
            e.location: e.reason for e in result.report if e.reason not in ("conflict", "bad_age")
        }
        for record in case["files"]:
            location = record["path"] + (f"!{record['member']}" if record["member"] else "")
            if record["role"] == "image":
                assert location not in reported
            elif record["role"] == "duplicate":
                assert reported[location] == "duplicate"
            else:
                assert reported[location] == record["reason"], location


def test_pydicom_bundled_files_as_one_case(tmp_path: Path) -> None:
    source = Path(get_testdata_file("CT_small.dcm")).parent  # type: ignore[arg-type]
    case = tmp_path / "pydicom_case"
    case.mkdir()
    count = 0
    for folder in (source, source.parent / "charset_files"):
        for path in folder.iterdir():
            if path.is_file():
                (case / f"{folder.name}__{path.name}").write_bytes(path.read_bytes())
                count += 1
    result = scan_case(case)
    assert result.files == count
    assert result.images + result.skipped == count
    assert result.images > 40
    reasons = {e.reason for e in result.report}
    # the bundle holds the same images in several transfer syntaxes: counted once
    assert {"not_dicom", "non_image", "truncated", "no_pixel_data", "duplicate"} <= reasons
    assert all(e.detail for e in result.report)


def test_header_verdicts() -> None:
    ct = Path(get_testdata_file("CT_small.dcm")).read_bytes()  # type: ignore[arg-type]
    facts = inspect_dicom(ct)
    assert isinstance(facts, ImageFacts)
    assert facts.values["PatientID"] == "1CT1"
    assert (facts.rows, facts.columns) == (128, 128)
    verdicts = {
        "empty": b"",
        "not_dicom": b"Exported from PACS.\r\n" * 20,
        "truncated": ct[: len(ct) - 1000],
    }
    for reason, data in verdicts.items():
        verdict = inspect_dicom(data)
        assert isinstance(verdict, Skip)
        assert verdict.reason == reason


def test_archives_that_are_not_opened_are_named(tmp_path: Path) -> None:
    """A case's images inside a tar.gz, 7-Zip or RAR file, or a zip named without .zip
    (Windows hides suffixes): each file is reported as not DICOM, naming what it is and
    what to do, instead of "no DICOM preamble"."""
    import bz2
    import gzip
    import lzma
    import tarfile

    ct = Path(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]
    case = tmp_path / "case"
    case.mkdir()
    with tarfile.open(case / "series.tar.gz", "w:gz") as archive:
        archive.add(ct, "SE1/IM1.dcm")
    with tarfile.open(case / "series.tar", "w") as archive:
        archive.add(ct, "SE1/IM1.dcm")
    with zipfile.ZipFile(case / "CT_export", "w") as archive:
        archive.write(ct, "IM1.dcm")
    (case / "IM1.dcm.bz2").write_bytes(bz2.compress(ct.read_bytes()))
    (case / "IM1.dcm.xz").write_bytes(lzma.compress(ct.read_bytes()))
    (case / "IM1.dcm.gz").write_bytes(gzip.compress(ct.read_bytes()))
    # 7-Zip's and RAR 5's signatures (7zFormat.txt, RAR 5.0 archive format), as such files begin
    (case / "series.7z").write_bytes(b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(40))
    (case / "series.rar").write_bytes(b"Rar!\x1a\x07\x01\x00" + bytes(40))
    (case / "notes.txt").write_bytes(b"Exported from PACS.\r\n" * 20)
    result = scan_case(case)
    details = {e.location.split("/")[-1]: (e.reason, e.detail) for e in result.report}
    assert result.images == 0
    assert set(details) == {p.name for p in case.iterdir()}
    assert {reason for reason, _ in details.values()} == {"not_dicom"}
    expected = {
        "series.tar.gz": "a gzip file",
        "IM1.dcm.gz": "a gzip file",
        "series.tar": "a tar archive",
        "CT_export": "a zip archive not named .zip",
        "IM1.dcm.bz2": "a bzip2 file",
        "IM1.dcm.xz": "an xz file",
        "series.7z": "a 7-Zip archive",
        "series.rar": "a RAR archive",
    }
    for name, kind in expected.items():
        assert details[name][1].startswith(f"{kind}: not opened"), details[name]
    assert details["notes.txt"][1] == "no DICOM preamble or data set at the start"


def test_files_exports_carry_beside_the_images_are_named(tmp_path: Path) -> None:
    """A zip made on a Mac holds an AppleDouble ``__MACOSX/._name`` for every image, and
    exports carry Finder and Explorer metadata, PDF reports and screenshots: each is
    reported as not DICOM naming what it is (it was "no DICOM preamble"), so a report
    of 10,000 such lines can be read and filtered."""
    from PIL import Image

    ct = Path(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]
    case = tmp_path / "case"
    case.mkdir()
    apple_double = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(32)
    with zipfile.ZipFile(case / "CT.zip", "w") as archive:  # as macOS's "Compress" makes it
        archive.write(ct, "CT/IM1.dcm")
        archive.writestr("__MACOSX/CT/._IM1.dcm", apple_double)
    (case / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(64))
    Image.new("RGB", (8, 8)).save(case / "screenshot.jpg")
    Image.new("RGB", (8, 8)).save(case / "screenshot.png")
    Image.new("RGB", (8, 8)).save(case / "report.pdf")  # (Pillow writes a real PDF)
    (case / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    result = scan_case(case)
    assert result.images == 1
    assert {e.reason for e in result.report} == {"not_dicom"}
    named = {
        e.location.split("!", 1)[1] if "!" in e.location else e.location.split("/")[-1]: e.detail
        for e in result.report
    }
    assert named == {
        "__MACOSX/CT/._IM1.dcm": "macOS metadata (an AppleDouble ._ file, __MACOSX/), not DICOM",
        ".DS_Store": "macOS Finder metadata (.DS_Store), not DICOM",
        "screenshot.jpg": "a JPEG picture, not DICOM",
        "screenshot.png": "a PNG picture, not DICOM",
        "report.pdf": "a PDF document, not DICOM",
        "Thumbs.db": "a Windows Thumbs.db or Office document (OLE2), not DICOM",
    }


def test_undecodable_names_are_reported() -> None:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.SpecificCharacterSet = "ISO_IR 192"  # claims UTF-8 ...
    buffer = io.BytesIO()
    ds.save_as(buffer)
    raw = buffer.getvalue().replace(
        b"CompressedSamples^CT1", "王^小明".encode("gbk").ljust(21, b" ")
    )
    facts = inspect_dicom(raw)  # ... but the name bytes are GBK
    assert isinstance(facts, ImageFacts)
    assert "PatientName" in facts.undecodable


@pytest.mark.parametrize(
    ("age", "birth", "study", "years"),
    [("045Y", "", "", 45), ("006M", "", "", 0), ("010D", "", "", 0), ("003W", "", "", 0),
     ("", "19800315", "20240102", 43), ("", "", "20240102", None), ("abc", "", "", None)],
)  # fmt: skip
def test_age_in_years(age: str, birth: str, study: str, years: int | None) -> None:
    assert age_in_years(age, birth, study) == years


@pytest.mark.parametrize(
    ("age", "birth", "years", "noted"),
    [("45", "", 45, True), ("045", "19790101", 45, True), ("1.5Y", "", 1, True),
     ("045Y", "19790101", 45, False), ("abc", "19790101", 45, True), ("", "19790101", 45, False),
     ("45M", "", 3, False), ("999", "", None, False), ("12D", "", 0, False)],
)  # fmt: skip
def test_ages_without_a_unit_are_years_and_replacements_are_said(
    age: str, birth: str, years: int | None, noted: bool
) -> None:
    found, note = read_age(age, birth, "20240102")
    assert found == years and bool(note) == noted


# -- zips ----------------------------------------------------------------------------------


def make_zip(
    path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED
) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_zip_problems_are_reported_not_fatal(tmp_path: Path) -> None:
    ct = Path(get_testdata_file("CT_small.dcm")).read_bytes()  # type: ignore[arg-type]
    good = make_zip(
        tmp_path / "good.zip", {"a/IM1.dcm": ct, "inner.zip": b"PK..", "bomb.bin": bytes(500_000)}
    )
    items = list(iter_zip_members(good, max_member_bytes=100_000))
    kinds = {(i.name, type(i).__name__, getattr(i, "reason", None)) for i in items}
    assert ("a/IM1.dcm", "ZipMember", None) in kinds
    assert ("inner.zip", "ZipProblem", "nested_zip") in kinds
    assert ("bomb.bin", "ZipProblem", "too_large") in kinds

    (tmp_path / "junk.zip").write_bytes(b"this is not a zip at all")
    (problem,) = list(iter_zip_members(tmp_path / "junk.zip"))
    assert isinstance(problem, ZipProblem)
    assert problem.reason == "corrupt_zip"

    encrypted = bytearray(make_zip(tmp_path / "enc.zip", {"IM1.dcm": ct}).read_bytes())
    for signature in (b"PK\x03\x04", b"PK\x01\x02"):  # set the encryption flag bit
        at = encrypted.find(signature)
        flag_at = at + (6 if signature == b"PK\x03\x04" else 8)
        encrypted[flag_at] |= 0x01
    (tmp_path / "enc.zip").write_bytes(bytes(encrypted))
    (item,) = list(iter_zip_members(tmp_path / "enc.zip"))
    assert isinstance(item, ZipProblem)
    assert item.reason == "encrypted"

    damaged = bytearray(make_zip(tmp_path / "bad.zip", {"IM1.dcm": ct}).read_bytes())
    damaged[100:140] = bytes(40)
    (tmp_path / "bad.zip").write_bytes(bytes(damaged))
    (item,) = list(iter_zip_members(tmp_path / "bad.zip"))
    assert isinstance(item, ZipProblem)
    assert item.reason == "corrupt_member"


def test_member_names_without_utf8_flag(dicom_sample: DicomSample) -> None:
    names = [i.name for i in iter_zip_members(dicom_sample.cases_root / "王小明" / "CT平扫.zip")]
    assert names and all(n.startswith("王小明/平扫/IM") for n in names)
    assert all(
        isinstance(i, ZipMember)
        for i in iter_zip_members(dicom_sample.cases_root / "王小明" / "CT平扫.zip")
    )


def test_zip_members_are_inflated_only_as_far_as_the_header(tmp_path: Path) -> None:
    ct = Path(get_testdata_file("CT_small.dcm")).read_bytes()  # type: ignore[arg-type]
    zipped = make_zip(tmp_path / "s.zip", {"IM1.dcm": ct}, zipfile.ZIP_STORED)
    stored = bytearray(zipped.read_bytes())
    at = stored.find(ct[:200]) + len(ct) - 100  # a byte in the pixel data, past the head
    stored[at] ^= 0xFF
    zipped.write_bytes(bytes(stored))
    for item in iter_zip_members(zipped, head_bytes=4096):
        assert isinstance(item, ZipMember)
        assert item.head == ct[:4096]  # the damage is not read ...
        assert item.size == len(ct)
        with pytest.raises(MemberReadError, match="CRC"):
            item.read_all()  # ... until the whole member is asked for
    (whole,) = list(iter_zip_members(zipped, head_bytes=None))
    assert isinstance(whole, ZipProblem)
    assert whole.reason == "corrupt_member"
    for fine in iter_zip_members(make_zip(tmp_path / "d.zip", {"IM1.dcm": ct}), head_bytes=4096):
        assert isinstance(fine, ZipMember)
        assert fine.read_all() == ct


def _series_with_one_damaged_file(case: Path) -> None:
    """Five good CT images and one whose PatientID element has the unknown VR "ZZ"."""
    source = Path(get_testdata_file("CT_small.dcm"))
    case.mkdir(parents=True)
    for k in range(5):
        ds = dcmread(source)
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.2.1125.{k}"
        ds.save_as(case / f"good{k}.dcm")
    data = bytearray(source.read_bytes())
    at = data.find(b"\x10\x00\x20\x00LO")  # (0010,0020) PatientID, explicit VR
    data[at + 4 : at + 6] = b"ZZ"
    (case / "bad.dcm").write_bytes(bytes(data))


def test_a_damaged_element_costs_only_its_file(tmp_path: Path) -> None:
    _series_with_one_damaged_file(tmp_path / "case1")
    result = scan_case(tmp_path / "case1", tmp_path)
    assert [row["ImageCount"] for row in result.rows] == [5]
    [entry] = result.report
    assert (entry.location, entry.reason) == ("case1/bad.dcm", "unreadable")
    assert entry.detail == "pydicom cannot parse it (NotImplementedError at tag (0010,0020))"
    assert result.files == 6


@pytest.mark.parametrize("workers", ["1", "2"])
def test_one_or_more_workers_give_the_same_tables(tmp_path: Path, workers: str) -> None:
    from dcm_extractor.cli import main

    _series_with_one_damaged_file(tmp_path / "data" / "case1")
    out = tmp_path / "out"
    argv = ["-d", str(tmp_path / "data"), "-o", str(out), "--merge-all", "-q"]
    assert main([*argv, "--workers", workers, "--log", str(tmp_path / "log")]) == 0
    report = (out / "extraction_report.csv").read_text(encoding="utf-8").splitlines()
    assert report == [
        "case,location,reason,detail",
        'case1,case1/bad.dcm,unreadable,"pydicom cannot parse it (NotImplementedError at tag '
        '(0010,0020))"',
    ]
    rows = (out / "all_cases.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 2 and rows[1].split(",")[14] == "5"  # ImageCount


def test_parse_errors_never_quote_what_the_file_holds() -> None:
    """pydicom's message for a name written with VR UL quotes the name's bytes."""
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientName = "Li^Na"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)
    data = bytearray(buffer.getvalue())
    at = data.find(b"\x10\x00\x10\x00PN")
    data[at + 4 : at + 6] = b"UL"
    verdict = inspect_dicom(bytes(data))
    assert isinstance(verdict, Skip) and verdict.reason == "unreadable"
    assert verdict.detail == "pydicom cannot parse it (BytesLengthException at tag (0010,0010))"
    assert "Li" not in verdict.detail and "Na" not in verdict.detail


def test_one_uid_in_two_series_is_two_images_but_a_copy_is_one(tmp_path: Path) -> None:
    case = tmp_path / "case1"
    case.mkdir()
    source = get_testdata_file("CT_small.dcm")
    for name, series in (("a.dcm", "1.2.3.1"), ("b.dcm", "1.2.3.2"), ("c.dcm", "1.2.3.2")):
        ds = dcmread(source)
        ds.SOPInstanceUID = "1.2.3.99"  # one UID everywhere, as a broken exporter writes it
        ds.SeriesInstanceUID = series
        ds.save_as(case / name)
    result = scan_case(case, tmp_path)
    [row] = result.rows
    assert (row["ImageCount"], row["SeriesCount"]) == (2, 2)
    assert [(e.location, e.reason) for e in result.report] == [("case1/c.dcm", "duplicate")]


def _image(path: Path, name: str = "CT_small.dcm") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(Path(get_testdata_file(name)).read_bytes())  # type: ignore[arg-type]
    return path


def test_only_regular_files_are_opened_and_links_are_followed_once(tmp_path: Path) -> None:
    case = tmp_path / "root" / "case"
    _image(case / "a" / "ct.dcm")
    os.mkfifo(case / "a" / "pipe")  # opening it would block: reported, never opened
    (case / "a" / "gone").symlink_to(case / "nowhere")
    (case / "a" / "up").symlink_to(case)  # a loop back to the case
    outside = _image(tmp_path / "elsewhere" / "mr.dcm", "MR_small.dcm")
    (case / "b").symlink_to(outside.parent)  # a linked folder: read once
    (case / "0_link.dcm").symlink_to(case / "a" / "ct.dcm")  # sorts before its target
    result = scan_case(case, tmp_path / "root")
    reasons = {e.location: e.reason for e in result.report}
    assert reasons["case/a/pipe"] == "not_regular_file"
    assert reasons["case/a/gone"] == "dangling_link"
    assert reasons["case/a/up"] == "symlink_loop"
    assert reasons["case/0_link.dcm"] == "duplicate"  # the real file is the one counted
    assert result.images == 2  # a/ct.dcm and, through the linked folder, b/mr.dcm
    assert result.files == 6 and result.images + result.skipped == result.files


def test_a_link_up_to_the_data_root_does_not_bring_in_the_other_cases(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _image(root / "case1" / "ct.dcm")
    _image(root / "case2" / "mr.dcm", "MR_small.dcm")
    (root / "case1" / "up").symlink_to(root)  # the data root, holding case2
    (root / "case1" / "top").symlink_to("/")
    (root / "case1" / "home").symlink_to(tmp_path)
    linked_root = tmp_path / "linked"
    linked_root.mkdir()
    (linked_root / "case1").symlink_to(root / "case1")  # the case reached through a link
    for result, where in ((scan_case(root / "case1", root), root), (scan_case(
        linked_root / "case1", linked_root), linked_root)):  # fmt: skip
        reasons = {e.location: e.reason for e in result.report}
        assert reasons == {f"case1/{n}": "symlink_loop" for n in ("home", "top", "up")}, where
        assert (result.files, result.images) == (4, 1)  # the image and 3 links; case2 apart


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder: no unreadable folder")
def test_an_unreadable_folder_is_reported(tmp_path: Path) -> None:
    case = tmp_path / "case"
    _image(case / "ok.dcm")
    locked = case / "locked"
    _image(locked / "x.dcm")
    locked.chmod(0)
    try:
        result = scan_case(case, tmp_path)
    finally:
        locked.chmod(0o755)
    assert {e.location: e.reason for e in result.report}["case/locked"] == "unreadable_folder"


def test_empty_zips_are_reported(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    with zipfile.ZipFile(case / "empty.zip", "w"):
        pass
    with zipfile.ZipFile(case / "folders.zip", "w") as folders:
        folders.writestr("a/", b"")
        folders.writestr("a/b/", b"")
    result = scan_case(case, tmp_path)
    assert {e.location: e.reason for e in result.report} == {
        "case/empty.zip": "empty_zip",
        "case/folders.zip": "empty_zip",
    }
    assert result.files == 2 and result.skipped == 2


def _header_only(path: Path, name: str, sop_class: str, *, patient_id: str = "ID1") -> Path:
    """A DICOM object without pixel data (pydicom writes it; its values are the truth)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientSex = name, patient_id, "F"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.StudyDate, ds.Modality = "20240102", "OT"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def test_a_case_of_header_only_objects_gets_its_row(tmp_path: Path) -> None:
    """The original extractor's own test: a Secondary Capture header, a row with the name."""
    case = tmp_path / "case"
    _header_only(case / "sc.dcm", "Doe^Jane", SECONDARY_CAPTURE)
    result = scan_case(case, tmp_path)
    assert len(result.rows) == 1
    row = result.rows[0]
    assert row["PatientName"] == "Doe^Jane" and row["PatientID"] == "ID1"
    assert row["ImageCount"] == 0 and row["Rows"] is None
    reasons = [e.reason for e in result.report]
    # the file, the blank age, and where the row came from
    assert reasons == ["no_pixel_data", "bad_age", "no_images"]
    assert result.images == 0 and result.skipped == result.files == 1


@pytest.mark.parametrize("name", ["chrJapMulti.dcm", "chrKoreanMulti.dcm", "chrH31.dcm"])
def test_pydicom_charset_files_without_pixels_give_rows(tmp_path: Path, name: str) -> None:
    source = Path(get_charset_files(name)[0])
    case = tmp_path / "case"
    case.mkdir()
    (case / name).write_bytes(source.read_bytes())
    result = scan_case(case, tmp_path)
    assert len(result.rows) == 1, result.report
    expected = str(dcmread(source).PatientName)  # pydicom's own decoding is the truth
    assert result.rows[0]["PatientName"] == expected


def test_values_the_images_lack_come_from_the_other_objects(tmp_path: Path) -> None:
    case = tmp_path / "case"
    image = _image(case / "ct.dcm")
    ds = dcmread(image)
    del ds.PatientName  # an image without a name, beside a report that has it
    ds.save_as(image)
    _header_only(case / "sr.dcm", "Roe^Richard", "1.2.840.10008.5.1.4.1.1.88.11")
    result = scan_case(case, tmp_path)
    assert result.rows[0]["PatientName"] == "Roe^Richard"
    assert result.rows[0]["ImageCount"] == 1
    filled = [e for e in result.report if e.reason == "values_from_other_objects"]
    assert len(filled) == 1 and "PatientName" in filled[0].detail


def test_an_identical_copy_of_a_zip_is_counted_once(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    with zipfile.ZipFile(case / "CT.zip", "w") as archive:
        for name in ("CT_small.dcm", "MR_small.dcm"):
            archive.write(get_testdata_file(name), name)  # type: ignore[arg-type]
    (case / "CT (1).zip").write_bytes((case / "CT.zip").read_bytes())  # Windows' copy name
    result = scan_case(case, tmp_path)
    assert result.images == 2 and [r["FileName"] for r in result.rows] == ["CT (1).zip"]
    duplicates = [e for e in result.report if e.reason == "duplicate"]
    assert len(duplicates) == 2 and all(e.location.startswith("case/CT.zip!") for e in duplicates)


def test_rt_dose_and_images_of_no_pixels_are_not_counted(tmp_path: Path) -> None:
    case = tmp_path / "case"
    dose = case / "dose.dcm"
    dose.parent.mkdir(parents=True)
    dose.write_bytes(Path(get_testdata_file("rtdose.dcm")).read_bytes())  # type: ignore[arg-type]
    empty = _image(case / "zero.dcm")
    ds = dcmread(empty)
    ds.Rows = 0
    ds.save_as(empty)
    result = scan_case(case, tmp_path)
    reasons = {e.location: (e.reason, e.detail) for e in result.report}
    assert reasons["case/dose.dcm"] == ("non_image", "RT dose grid (1.2.840.10008.5.1.4.1.1.481.2)")
    assert (
        reasons["case/zero.dcm"][0] == "no_pixel_data" and "0 rows" in reasons["case/zero.dcm"][1]
    )
    assert result.images == 0 and result.rows[0]["ImageCount"] == 0  # still a row: a header


@pytest.mark.parametrize(
    ("charset", "raw", "expected", "note"),
    [
        (None, "张三".encode("gbk"), "张三", "read as GB18030"),
        (None, "住院".encode("gbk"), "住院", "read as GB18030"),  # also valid UTF-8: סԺ
        (None, "张三".encode(), "张三", "read as UTF-8"),
        ("ISO_IR 100", "Müller^张".encode(), "Müller^张", "labelled ISO_IR 100"),
        ("ISO_IR 100", "Müller".encode("latin-1"), "Müller", None),  # as labelled: no note
    ],
)
def test_names_in_another_character_set_than_declared(
    tmp_path: Path, charset: str | None, raw: bytes, expected: str, note: str | None
) -> None:
    """GBK without SpecificCharacterSet, UTF-8 labelled Latin-1: read right, and said."""
    path = _image(tmp_path / "case" / "ct.dcm")
    ds = dcmread(path)
    if charset is None:
        del ds.SpecificCharacterSet
    else:
        ds.SpecificCharacterSet = charset
    ds.save_as(path)
    data = bytearray(path.read_bytes())
    old = str(ds.PatientName).encode("ascii")
    at = data.index(old)
    length_at = at - 2
    padded = raw + (b" " if len(raw) % 2 else b"")
    data[length_at : at + len(old) + (len(old) % 2)] = len(padded).to_bytes(2, "little") + padded
    path.write_bytes(bytes(data))
    result = scan_case(tmp_path / "case", tmp_path)
    assert result.rows[0]["PatientName"] == expected
    notes = [e.detail for e in result.report if e.reason == "charset"]
    if note is None:
        assert not notes
    else:
        assert len(notes) == 1 and note in notes[0] and notes[0].startswith("PatientName:")


@pytest.mark.parametrize("cut", [300, 601, 903, 1200])
def test_a_file_cut_inside_its_header_is_truncated(tmp_path: Path, cut: int) -> None:
    raw = Path(get_testdata_file("CT_small.dcm")).read_bytes()  # type: ignore[arg-type]
    case = tmp_path / "case"
    case.mkdir()
    (case / "cut.dcm").write_bytes(raw[:cut])
    _header_only(case / "sc.dcm", "Doe^Jane", SECONDARY_CAPTURE)  # complete, no pixels
    result = scan_case(case, tmp_path)
    reasons = {e.location: e.reason for e in result.report}
    assert reasons["case/cut.dcm"] == "truncated"
    assert reasons["case/sc.dcm"] == "no_pixel_data"


def test_header_only_rows_and_charset_notes_are_the_same_in_a_worker_pool(tmp_path: Path) -> None:
    from dcm_extractor import RunOptions, run

    root = tmp_path / "root"
    _header_only(root / "a" / "sc.dcm", "Doe^Jane", SECONDARY_CAPTURE)
    _image(root / "b" / "ct.dcm")
    (root / "c").mkdir()
    with zipfile.ZipFile(root / "c" / "CT.zip", "w") as archive:
        archive.write(get_testdata_file("CT_small.dcm"), "CT_small.dcm")  # type: ignore[arg-type]
    (root / "c" / "CT (1).zip").write_bytes((root / "c" / "CT.zip").read_bytes())
    outputs = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        run(
            RunOptions(
                root, out, merge_all=True, workers=workers, projectid_map=tmp_path / "ids.json"
            )
        )
        outputs[workers] = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".csv"}
    assert outputs[1] == outputs[2]
    assert b"no_images" in outputs[1]["extraction_report.csv"]
    assert b"duplicate" in outputs[1]["extraction_report.csv"]
