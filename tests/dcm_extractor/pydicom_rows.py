"""The instance table checked against pydicom's own reading of the files it was made from
(the tests of the sample data and of files other tools wrote share it)."""

from __future__ import annotations

import csv
import io
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pydicom
import xxhash
from pydicom.multival import MultiValue

from dcm_extractor.sources.instances import INSTANCE_COLUMNS

TEXT_KEYWORDS = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
    "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient", "AcquisitionDate",
    "AcquisitionTime",
)  # fmt: skip


def pydicom_text(ds: pydicom.Dataset, keyword: str) -> str:
    """A value as pydicom reads it, several values joined by a backslash."""
    if keyword not in ds:
        return ""
    value = ds[keyword].value
    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)
    return "" if value is None else str(value)


def member_name(info: zipfile.ZipInfo) -> str:
    """A member's name as a Chinese user reads it: without the UTF-8 flag, Python's cp437
    decoding undone, the bytes read as UTF-8 or else as GB18030 (Windows' zip tool)."""
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.filename.encode("cp437")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


def objects(cases_root: Path) -> dict[tuple[str, str], bytes]:
    """Every file and zip member below the cases, by (path below the data root, member)."""
    found = {}
    for path in sorted(p for p in cases_root.rglob("*") if p.is_file()):
        key = path.relative_to(cases_root).as_posix()
        if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if not info.is_dir():
                        found[(key, member_name(info))] = archive.read(info)
        else:
            found[(key, "")] = path.read_bytes()
    return found


def pydicom_reads(data: bytes) -> pydicom.Dataset | None:
    """pydicom's reading of a file (``force``: as lenient as it gets), None when it cannot
    read one or what it reads is no DICOM object (no SOP Class or Instance UID)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (its notes on odd files: not the question)
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            if "SOPInstanceUID" in ds or "SOPClassUID" in ds:
                return ds
    except Exception:
        pass
    return None


def check_instance_rows(cases_root: Path, out: Path) -> list[dict[str, Any]]:
    """Assert that ``out``'s instance table holds one row for every DICOM object below
    ``cases_root`` - its path, size, fingerprint and verdict (the report's reason) - with
    the values pydicom reads from it; and no row for anything else. Returns the rows."""
    rows = pq.read_table(out / "all_instances.parquet").to_pylist()
    assert list(rows[0]) == INSTANCE_COLUMNS
    by_place = {(r["FilePath"], r["ZipMember"]): r for r in rows}
    assert len(by_place) == len(rows)  # one row per object
    with (out / "extraction_report.csv").open(encoding="utf-8", newline="") as stream:
        reasons = {r["location"]: r["reason"] for r in csv.DictReader(stream)}
    dicom = 0
    for place, data in objects(cases_root).items():
        location = f"{place[0]}!{place[1]}" if place[1] else place[0]
        row = by_place.get(place)
        ds = pydicom_reads(data)
        if "/" not in place[0]:  # a file right under the data root: in no case, no row
            assert row is None and reasons[place[0]] == "not_in_case"
            continue
        if row is None:  # no row: not a DICOM object (the report says so)
            assert reasons.get(location) in ("not_dicom", "empty"), (place, reasons.get(location))
            continue
        dicom += 1
        assert row["FileSize"] == len(data), place
        # XXH3-128 of the first 16 KiB seeded with the size, by the xxhash library itself
        assert row["ContentFingerprint"] == xxhash.xxh3_128_hexdigest(data[:16384], len(data))
        if row["Reason"]:
            assert reasons[location] == row["Reason"] and row["IsImage"] == "no", place
        else:
            assert location not in reasons or reasons[location] in ("undecodable", "charset")
            assert row["IsImage"] == "yes"
        if ds is None:
            continue
        for keyword in TEXT_KEYWORDS:
            assert row[keyword] == pydicom_text(ds, keyword), (place, keyword)
        syntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if ds.file_meta else ""
        assert row["TransferSyntaxUID"] in (syntax, ""), place
        if row["IsImage"] == "yes":
            assert row["TransferSyntaxUID"] == syntax
            assert (row["Rows"], row["Columns"]) == (ds.Rows, ds.Columns)
            assert row["NumberOfFrames"] == int(ds.get("NumberOfFrames", 1) or 1)
    assert dicom == len(rows)  # every row is one of the files
    return rows
