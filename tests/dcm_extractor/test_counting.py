"""Counting and labels on the files that fooled the extractor: real files from pydicom's
test data (pixel data without an image size, complete header-only objects, JPEG 2000 cut
anywhere), series without UIDs, ISO 2022 names, rows without images.

Every case runs through :func:`scan_case` (the fast reader with its pydicom hand-over) as a
loose file and as a zip member; pydicom is the ground truth where it is right.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from dcm_extractor.reading.columns import parse_columns
from dcm_extractor.reading.extras import Extras
from dcm_extractor.reading.facts import ImageFacts, Skip
from dcm_extractor.reading.fullparse import inspect_dicom
from dcm_extractor.sources.cases import CaseResult, scan_case


def pydicom_file(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()  # type: ignore[arg-type]


def scan(tmp_path: Path, files: dict[str, bytes], zipped: bool) -> CaseResult:
    """One case holding ``files``, loose or in one zip."""
    case = tmp_path / ("zipped" if zipped else "loose") / "case"
    case.mkdir(parents=True)
    if zipped:
        with zipfile.ZipFile(case / "export.zip", "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
    else:
        for name, data in files.items():
            (case / name).write_bytes(data)
    return scan_case(case, case.parent, extras=Extras(series=True))


ROW_PROBLEMS = {"no_images", "bad_age", "conflict", "missing_uid", "age_read",
                "values_from_other_objects", "undecodable", "charset"}  # fmt: skip


def verdicts(result: CaseResult) -> dict[str, str]:
    """Reason per file not counted, by file name (the member name in a zip)."""
    return {
        e.location.rsplit("/", 1)[-1].split("!")[-1]: e.reason
        for e in result.report
        if e.reason not in ROW_PROBLEMS
    }


@pytest.mark.parametrize("zipped", [False, True], ids=["loose", "zip"])
def test_pixel_data_without_rows_and_columns_is_no_image(tmp_path: Path, zipped: bool) -> None:
    # 2 bytes of PixelData, no Rows, Columns or SOP class: nothing anyone can display
    names = ("nested_priv_SQ.dcm", "meta_missing_tsyntax.dcm")
    for name in names:
        ds = dcmread(io.BytesIO(pydicom_file(name)), force=True)
        assert "PixelData" in ds and "Rows" not in ds and "Columns" not in ds
    result = scan(tmp_path, {name: pydicom_file(name) for name in names}, zipped)
    assert result.images == 0 and result.skipped == 2
    assert verdicts(result) == {name: "no_pixel_data" for name in names}
    details = [e.detail for e in result.report if e.reason not in ROW_PROBLEMS]
    assert all("no Rows and Columns" in detail for detail in details)


@pytest.mark.parametrize("zipped", [False, True], ids=["loose", "zip"])
def test_a_complete_header_only_object_is_not_called_truncated(
    tmp_path: Path, zipped: bool
) -> None:
    # a CT Image Storage object with one private UN sequence and no pixel data: whole
    data = pydicom_file("UN_sequence.dcm")
    assert "PixelData" not in dcmread(io.BytesIO(data), force=True)
    result = scan(tmp_path, {"UN_sequence.dcm": data}, zipped)
    assert verdicts(result)["UN_sequence.dcm"] == "no_pixel_data"


@pytest.mark.parametrize("zipped", [False, True], ids=["loose", "zip"])
def test_jpeg2000_cut_anywhere_is_truncated_and_whole_is_an_image(
    tmp_path: Path, zipped: bool
) -> None:
    data = pydicom_file("examples_jpeg2k.dcm")  # 154 kB, encapsulated JPEG 2000
    cuts = [9_000, 16_384, 16_385, 20_000, 60_000, len(data) - 10, len(data) - 1]
    files = {f"cut{cut}.dcm": data[:cut] for cut in cuts}
    files["whole.dcm"] = data
    result = scan(tmp_path, files, zipped)
    found = verdicts(result)
    assert {f"cut{cut}.dcm": found.get(f"cut{cut}.dcm") for cut in cuts} == {
        f"cut{cut}.dcm": "truncated" for cut in cuts
    }
    assert "whole.dcm" not in found and result.images == 1
    assert result.rows[0]["ImageCount"] == 1


def ct_slice(
    index: int, series_number: int, description: str, frame_of_reference: str = "1.2.3.4"
) -> bytes:
    """A 16 x 16 CT slice without Study, Series or SOP Instance UIDs (as a converter that
    blanks them writes)."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.PatientName, ds.PatientID, ds.PatientAge = "Anon", "P1", "050Y"
    ds.Modality = "CT"
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.FrameOfReferenceUID = frame_of_reference
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, float(index)]
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = bytes([index % 256]) * 512
    ds.StudyInstanceUID = ds.SeriesInstanceUID = ds.SOPInstanceUID = ""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.preamble = bytes(128)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)  # no SOP Instance UID to put in the meta
    return buffer.getvalue()


def test_series_without_uids_are_grouped_and_copies_found_by_content(tmp_path: Path) -> None:
    # TotalSegmentator's test CT: blank Study/Series/SOP UIDs. Here two series of 10
    # (numbers 2 and 3), loose and the same files again in a zip.
    files = {f"s2_{i:02d}.dcm": ct_slice(i, 2, "abdomen") for i in range(10)}
    files |= {f"s3_{i:02d}.dcm": ct_slice(i, 3, "thorax") for i in range(10)}
    case = tmp_path / "case"
    case.mkdir()
    for name, data in files.items():
        (case / name).write_bytes(data)
    with zipfile.ZipFile(case / "copy.zip", "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    result = scan_case(case, tmp_path, extras=Extras(series=True))
    assert result.files == 40 and result.images == 20 and result.skipped == 20
    (row,) = result.rows  # the zip's row; every loose file is a copy of a member
    assert (row["FileName"], row["ImageCount"], row["SeriesCount"]) == ("copy.zip", 20, 2)
    duplicates = [e for e in result.report if e.reason == "duplicate"]
    assert len(duplicates) == 20
    assert all("same content" in e.detail for e in duplicates)
    said = [e.detail for e in result.report if e.reason == "missing_uid"]
    assert any("20 images without a SeriesInstanceUID, grouped into 2 series" in d for d in said)
    assert any("20 images without a SOPInstanceUID" in d for d in said)
    series = sorted((s["SeriesNumber"], s["ImageCount"], s["SliceCount"]) for s in result.series)
    assert series == [("2", 10, 10), ("3", 10, 10)]
    assert all(s["SeriesInstanceUID"] == "" for s in result.series)


def test_identical_headers_with_different_pixels_are_two_images(tmp_path: Path) -> None:
    # no SOPInstanceUID and the same header: only the content tells them apart
    first = ct_slice(1, 2, "x")
    second = first[:-512] + bytes([7]) * 512
    result = scan(tmp_path, {"a.dcm": first, "b.dcm": second}, zipped=False)
    assert result.images == 2 and result.rows[0]["SeriesCount"] == 1


def test_other_frames_of_reference_make_other_series(tmp_path: Path) -> None:
    files = {"a.dcm": ct_slice(1, 2, "x", "1.2.3"), "b.dcm": ct_slice(2, 2, "x", "1.2.4")}
    result = scan(tmp_path, files, zipped=False)
    assert result.rows[0]["SeriesCount"] == 2


def with_name(charset: str, name: bytes) -> bytes:
    """CT_small with ``name`` as the PatientName's bytes under ``charset``."""
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.SpecificCharacterSet = charset.split("\\")
    buffer = io.BytesIO()
    ds.save_as(buffer)
    old = b"CompressedSamples^CT1"
    padded = name + b" " * (len(name) % 2)
    raw = buffer.getvalue()
    at = raw.index(old)
    # the explicit-VR PN element header sits just before the value: fix its length
    length = int.from_bytes(raw[at - 2 : at], "little")
    assert raw[at - 4 : at - 2] == b"PN" and length == len(old) + 1
    return raw[: at - 2] + len(padded).to_bytes(2, "little") + padded + raw[at + length :]


ISO_2022_NAMES = {
    # GB2312 via ISO 2022 IR 58 (PS3.5 Annex J's form: G1 designated by ESC $ ) A)
    "ISO 2022 IR 58": (
        b"Zhang^XiaoDong=\x1b$)A\xd5\xc5^\xd0\xa1\xb6\xab=",
        "Zhang^XiaoDong=张^小东",  # an empty last group is dropped, as pydicom does
    ),
    # PS3.5 H.3.1 (JIS X 0208 via ISO 2022 IR 87)
    "\\ISO 2022 IR 87": (
        b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B",
        "Yamada^Tarou=山田^太郎",
    ),
    # PS3.5 I.2 (KS X 1001 via ISO 2022 IR 149)
    "\\ISO 2022 IR 149": (
        b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7",
        "Hong^Gildong=洪^吉洞",
    ),
}


@pytest.mark.parametrize("charset", list(ISO_2022_NAMES))
@pytest.mark.parametrize("zipped", [False, True], ids=["loose", "zip"])
def test_iso_2022_names_are_decoded_without_escape_sequences(
    tmp_path: Path, charset: str, zipped: bool
) -> None:
    raw, expected = ISO_2022_NAMES[charset]
    data = with_name(charset, raw)
    facts = inspect_dicom(data)  # pydicom's full parse
    assert isinstance(facts, ImageFacts)
    assert facts.values["PatientName"] == expected
    result = scan(tmp_path, {"im.dcm": data}, zipped)  # the fast reader
    assert result.rows[0]["PatientName"] == expected
    assert not [e for e in result.report if e.reason in ("undecodable", "charset")]


def test_a_row_without_images_keeps_rows_and_columns(tmp_path: Path) -> None:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelData  # a header-only copy (a PACS "thumbnail" export)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    cut = pydicom_file("CT_small.dcm")[:-1000]  # and a cut copy
    result = scan(tmp_path, {"header.dcm": buffer.getvalue(), "cut.dcm": cut}, zipped=False)
    (row,) = result.rows
    assert (row["ImageCount"], row["Rows"], row["Columns"]) == (0, 128, 128)
    assert verdicts(result)["cut.dcm"] == "truncated"
    assert "no_images" in {e.reason for e in result.report}


def test_a_cut_file_still_gives_its_header_values() -> None:
    verdict = inspect_dicom(pydicom_file("CT_small.dcm")[:-1000])
    assert isinstance(verdict, Skip) and verdict.reason == "truncated"
    assert verdict.facts is not None and verdict.facts.values["PatientID"] == "1CT1"


def test_a_row_without_any_age_says_so(tmp_path: Path) -> None:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    for keyword in ("PatientAge", "PatientBirthDate"):
        if keyword in ds:
            delattr(ds, keyword)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    result = scan(tmp_path, {"im.dcm": buffer.getvalue()}, zipped=False)
    assert result.rows[0]["PatientAge"] is None
    (line,) = [e for e in result.report if e.reason == "bad_age"]
    assert "no PatientAge" in line.detail


def test_a_black_image_past_the_read_bound_is_an_image(tmp_path: Path) -> None:
    # no preamble (pydicom's full parse decides) and 40 MiB of zero pixels: the parse of the
    # first 32 MiB leaves their zero tail out (junk files are all zeros), never the element
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID, ds.SeriesInstanceUID = "1.2.3.4.5", "1.2.3.4"
    ds.PatientID, ds.Modality = "P1", "CT"
    ds.Rows = ds.Columns = 2048
    ds.NumberOfFrames = 5
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = bytes(2048 * 2048 * 2 * 5)
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=True, little_endian=True, enforce_file_format=False)
    data = buffer.getvalue()
    assert data[128:132] != b"DICM" and len(data) > 40 * 2**20
    result = scan(tmp_path, {"black.dcm": data, "cut.dcm": data[: -(2**20)]}, zipped=False)
    assert result.images == 1 and verdicts(result) == {"cut.dcm": "truncated"}
    assert result.rows[0]["Rows"] == 2048 and result.handed_over == 2


@pytest.mark.parametrize("zipped", [False, True], ids=["loose", "zip"])
def test_a_damaged_extra_value_does_not_change_the_count(tmp_path: Path, zipped: bool) -> None:
    # ImageType's VR bytes damaged ("CS" -> "C\x88"): pydicom cannot convert that one value.
    # Found by scripts/same_outputs.py: with --series or --columns the file was "unreadable",
    # without them an image - what a file counts as must not depend on the columns asked for.
    data = bytearray(pydicom_file("CT_small.dcm"))
    at = bytes(data).index(b"\x08\x00\x08\x00CS")
    data[at + 4 : at + 6] = b"C\x88"
    damaged = bytes(data)
    columns = Extras(series=True, columns=tuple(parse_columns("ImageType,SliceThickness")))
    counts = {}
    for label, extras in (("plain", Extras()), ("extras", columns)):
        case = tmp_path / label
        case.mkdir()
        result = scan_in(case, {"IM1.dcm": damaged}, zipped, extras)
        counts[label] = (result.images, verdicts(result))
        whole = inspect_dicom(damaged, extras)
        assert isinstance(whole, ImageFacts)
        if extras:
            raw = damaged[at + 8 : at + 8 + int.from_bytes(damaged[at + 6 : at + 8], "little")]
            assert whole.extra["ImageType"] == raw.rstrip(b" ").decode("ascii")
            assert whole.extra["SliceThickness"] == "5.000000"
    assert counts["plain"] == counts["extras"] == (1, {})


def scan_in(root: Path, files: dict[str, bytes], zipped: bool, extras: Extras) -> CaseResult:
    case = root / "case"
    case.mkdir()
    if zipped:
        with zipfile.ZipFile(case / "export.zip", "w") as archive:
            for name, data in files.items():
                archive.writestr(name, data)
    else:
        for name, data in files.items():
            (case / name).write_bytes(data)
    return scan_case(case, root, extras=extras)
