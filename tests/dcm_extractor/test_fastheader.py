"""The fast header reader against pydicom's full parse, file by file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dcm_extractor.reading import fastheader
from dcm_extractor.reading.extras import Extras
from dcm_extractor.reading.fastheader import HEAD_BYTES, inspect_head, read_head
from dcm_extractor.reading.header import ImageFacts, inspect_dicom
from dcm_extractor.sample import DicomSample, generate_dicom_dataset


def bundled_files() -> list[Path]:
    folder = Path(get_testdata_file("CT_small.dcm")).parent  # type: ignore[arg-type]
    return sorted(
        p for d in (folder, folder.parent / "charset_files") for p in d.iterdir() if p.is_file()
    )


def check(data: bytes) -> bool:
    """Fast verdict from the first bytes equals the full parse's; returns whether it was fast."""
    verdict, fast = inspect_head(data[:HEAD_BYTES], len(data), read_all=lambda: data)
    assert verdict == inspect_dicom(data)
    return fast


def test_every_bundled_pydicom_file() -> None:
    files = bundled_files()
    fast = sum(check(path.read_bytes()) for path in files)
    assert len(files) > 90
    assert fast > len(files) // 3  # the common files take the fast path


def test_every_generated_file(dicom_sample: DicomSample) -> None:
    files = [p for p in dicom_sample.cases_root.rglob("*") if p.is_file() and p.suffix != ".zip"]
    results = [check(path.read_bytes()) for path in files]
    images = sum(results)
    assert images >= len(files) - 8  # junk without a preamble and the DICOMDIR go to pydicom


def test_real_ct_headers(tmp_path: Path, shared_data: Path) -> None:
    for path in sorted((shared_data / "ct_sample").iterdir()):
        data = path.read_bytes()
        assert check(data), path.name  # the real CT header is read fast
        assert check(data[: len(data) - 1000]) is True  # truncated: still fast, still right
    sample = generate_dicom_dataset(
        tmp_path, showcase=False, bulk_cases=2, template=shared_data / "ct_sample" / "I10"
    )
    for path in sample.cases_root.rglob("*.dcm"):
        assert check(path.read_bytes())


@pytest.mark.parametrize("cut", [0, 10, 131, 132, 200, 400, 1000, 3000])
def test_cut_headers_agree_with_pydicom(cut: int) -> None:
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()[:cut]  # type: ignore[arg-type]
    check(data)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_head_ending_between_elements_is_not_the_end_of_the_file(name: str) -> None:
    """The bytes read stop right before the pixel data: the file goes on, pydicom decides."""
    data = Path(get_testdata_file(name)).read_bytes()  # type: ignore[arg-type]
    boundary = data.rfind(b"\xe0\x7f\x10\x00")
    verdict, fast = inspect_head(data[:boundary], len(data), read_all=lambda: data)
    assert verdict == inspect_dicom(data)
    assert isinstance(verdict, ImageFacts)
    assert fast is False


def test_read_head(tmp_path: Path) -> None:
    data = bytes(range(256)) * 100
    (tmp_path / "big").write_bytes(data)
    (tmp_path / "small").write_bytes(data[:10])
    (tmp_path / "empty").write_bytes(b"")
    assert read_head(tmp_path / "big", 1000) == (data[:1000], len(data))
    assert read_head(tmp_path / "big") == (data[:HEAD_BYTES], len(data))
    assert read_head(tmp_path / "small") == (data[:10], 10)
    assert read_head(tmp_path / "empty") == (b"", 0)
    with pytest.raises(FileNotFoundError):
        read_head(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        read_head(tmp_path)


@pytest.mark.parametrize(
    ("keyword", "value", "expected"),
    [
        ("PatientID", "12345\t", "12345"),  # the two readers agree on edge whitespace
        ("PatientID", "A1\\B2", "A1\\B2"),  # several values: as DICOM writes them
        ("Manufacturer", " GE \\ SIEMENS ", "GE\\SIEMENS"),
    ],
)
def test_both_readers_give_values_as_dicom_writes_them(
    keyword: str, value: str, expected: str
) -> None:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    data = buffer.getvalue()
    full = inspect_dicom(data)
    fast, _ = inspect_head(data[:HEAD_BYTES], len(data), read_all=lambda: data)
    assert isinstance(full, ImageFacts) and isinstance(fast, ImageFacts)
    assert full.values[keyword] == expected
    assert fast.values[keyword] == expected


def test_decoded_values_are_remembered_within_a_bound() -> None:
    """Values repeat within a series, so the reader remembers decoded ones, but a run of
    millions of files with a distinct value each must not grow the memory."""
    extras = Extras(series=True)
    tag = 0x0008103E  # SeriesDescription: one per series, distinct across a cohort
    values = [f"series {n:05d}".encode() for n in range(3 * fastheader._DECODED_MOST)]
    head = b"".join(values)
    fastheader._DECODED.clear()
    start = 0
    for value in values:
        out: dict[str, str] = {}
        found = {tag: (b"LO", start, len(value))}
        fastheader._fast_extras(out, extras, head, found, None, False, frozenset())
        assert out["SeriesDescription"] == value.decode()
        start += len(value)
    assert 0 < len(fastheader._DECODED[tag]) <= fastheader._DECODED_MOST
    per_image = 0x00200032  # ImagePositionPatient: never remembered
    found = {per_image: (b"DS", 0, 6)}
    out = {}
    fastheader._fast_extras(out, extras, b"1\\2\\3 ", found, None, False, frozenset())
    assert out["ImagePositionPatient"] == "1\\2\\3"
    assert per_image not in fastheader._DECODED
