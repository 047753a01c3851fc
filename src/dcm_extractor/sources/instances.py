"""The instance table: one row per DICOM object of a case, counted as an image or not.

Every file and zip member the scan judges gets a row - an image counted, a copy of one
(``duplicate``), or a DICOM object not counted, with the reason code
``extraction_report.csv`` uses (``non_image``, ``no_pixel_data``, ``truncated``,
``dicomdir``, ``unreadable`` ...). Files that are not DICOM at all (``not_dicom``,
``empty``) and problems of folders and zips have no row: they are in the report only.

Column names are DICOM keywords where DICOM has one, so that a local index joins IDC's
(idc-index) by StudyInstanceUID and SeriesInstanceUID. IDs, UIDs, dates and times are
text, as read; ``FileSize``, ``Rows``, ``Columns`` and ``NumberOfFrames`` are numbers.
``ContentFingerprint`` is the SHA-256 of the file's size and its first 16 KiB (the bytes
the fast reader reads anyway; the whole file when it is smaller): equal for copies of a
file, without reading whole images.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from ..reading.extras import TRANSFER_SYNTAX
from ..reading.facts import ImageFacts

__all__ = [
    "INSTANCE_COLUMNS",
    "INSTANCE_INTEGERS",
    "NO_ROW_REASONS",
    "content_fingerprint",
    "instance_row",
]

INSTANCE_COLUMNS: Final = [
    "ProjectID",
    "FilePath",
    "ZipMember",
    "FileSize",
    "ContentFingerprint",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "AcquisitionDate",
    "AcquisitionTime",
    "TransferSyntaxUID",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "IsImage",
    "Reason",
]
INSTANCE_INTEGERS: Final = frozenset({"ProjectID", "FileSize", "Rows", "Columns", "NumberOfFrames"})
NO_ROW_REASONS: Final = frozenset({"not_dicom", "empty"})  # not DICOM objects: report only


def content_fingerprint(head: bytes, size: int) -> str:
    """SHA-256 (hex) of the file's size and its first bytes as read (``head``)."""
    digest = hashlib.sha256(size.to_bytes(8, "little"))
    digest.update(head)
    return digest.hexdigest()


def instance_row(
    where: tuple[str, str],
    anonymous: tuple[str, str],
    size: int,
    fingerprint: str,
    facts: ImageFacts | None,
    reason: str,
    headers: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One object's row.

    ``where`` is (file path below the data root, zip member or ""), ``anonymous`` the same
    without names (``file00004``, ``member00002``: what de-identified tables show);
    ``facts`` its header values (None when it could not be read); ``reason`` "" for an
    image counted, else why not; ``headers`` the ``--columns`` values to take from the
    facts. Keys starting with ``_`` are for the privacy policy, not columns.
    """
    if facts is None:
        values: dict[str, str] = {}
        extra: dict[str, str] = {}
        sop, rows, columns, frames = "", None, None, None
    else:
        values, extra = facts.values, facts.extra
        sop, rows, columns, frames = facts.sop_instance_uid, facts.rows, facts.columns, facts.frames
    get, got = extra.get, values.get
    row: dict[str, Any] = {
        "ProjectID": None,
        "FilePath": where[0],
        "ZipMember": where[1],
        "FileSize": size,
        "ContentFingerprint": fingerprint,
        "SOPClassUID": get("SOPClassUID", ""),
        "SOPInstanceUID": sop,
        "StudyInstanceUID": got("StudyInstanceUID", ""),
        "SeriesInstanceUID": got("SeriesInstanceUID", ""),
        "Modality": got("Modality", ""),
        "InstanceNumber": get("InstanceNumber", ""),
        "ImagePositionPatient": get("ImagePositionPatient", ""),
        "ImageOrientationPatient": get("ImageOrientationPatient", ""),
        "AcquisitionDate": get("AcquisitionDate", ""),
        "AcquisitionTime": get("AcquisitionTime", ""),
        "TransferSyntaxUID": get(TRANSFER_SYNTAX, ""),
        "Rows": rows,
        "Columns": columns,
        "NumberOfFrames": frames,
        "IsImage": "no" if reason else "yes",
        "Reason": reason,
        "_anonymous": anonymous,
        "_PatientID": got("PatientID", ""),
    }
    for header in headers:
        row.setdefault(header, extra.get(header, ""))
    return row
