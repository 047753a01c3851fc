"""One file's verdict: an image with its table values, or the reason it is not counted.

pydicom parses the header (large values are deferred, so pixel data is located, not
read); this module decides what the file is:

=================  =================================================================
``empty``          zero bytes
``not_dicom``      neither a DICOM preamble nor a plausible DICOM start
``unreadable``     looks like DICOM but pydicom cannot parse it
``dicomdir``       a media storage directory (DICOMDIR)
``non_image``      a SOP class known not to be an image (report, plan, PDF, ...)
``no_pixel_data``  an image SOP class, but no pixel data at all (header-only copies)
``truncated``      the pixel data is cut short
=================  =================================================================
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from .sopclass import DICOMDIR_CLASS, non_image_kind

__all__ = ["TEXT_KEYWORDS", "ImageFacts", "Skip", "SkipReason", "inspect_dicom"]

SkipReason = Literal[
    "empty", "not_dicom", "unreadable", "dicomdir", "non_image", "no_pixel_data", "truncated"
]

# The table's text columns, read from each image.
TEXT_KEYWORDS: Final = (
    "PatientName",
    "PatientID",
    "StudyDate",
    "PatientBirthDate",
    "PatientAge",
    "PatientSex",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "Manufacturer",
)
_PIXEL_TAGS: Final = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # PixelData, Float, DoubleFloat
_ITEM: Final = struct.Struct("<HHI")
_UNDEFINED: Final = 0xFFFFFFFF


@dataclass(frozen=True)
class ImageFacts:
    """What the table needs from one image.

    ``values`` holds the text columns (``""`` when absent); ``undecodable`` names the
    columns whose bytes did not decode in the file's character set.
    """

    values: dict[str, str]
    rows: int | None
    columns: int | None
    sop_instance_uid: str
    undecodable: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Skip:
    """A file that is not counted as an image, and why."""

    reason: SkipReason
    detail: str


def inspect_dicom(data: bytes) -> ImageFacts | Skip:
    """Classify the bytes of one file (or zip member) and read its table values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's complaints about odd values; ours are verdicts
        return _inspect(data)


def _inspect(data: bytes) -> ImageFacts | Skip:  # noqa: PLR0911 - one return per verdict
    if not data:
        return Skip("empty", "empty file")
    if not _looks_like_dicom(data):
        return Skip("not_dicom", "no DICOM preamble or data set at the start")
    try:
        ds = dcmread(io.BytesIO(data), defer_size=1024, force=True)
    except (InvalidDicomError, EOFError, ValueError, KeyError, struct.error, TypeError) as err:
        return Skip("unreadable", f"pydicom cannot parse it: {err}")
    meta_class = str(getattr(ds, "file_meta", Dataset()).get("MediaStorageSOPClassUID", ""))
    if meta_class == DICOMDIR_CLASS or 0x00041220 in ds:  # DirectoryRecordSequence
        return Skip("dicomdir", "DICOMDIR (media storage directory)")
    sop_class = str(ds.get("SOPClassUID", "") or meta_class)
    kind = non_image_kind(sop_class)
    if kind is not None:
        return Skip("non_image", f"{kind} ({sop_class})")
    if not any(tag in ds for tag in _PIXEL_TAGS):
        return Skip(
            "no_pixel_data", f"image object ({sop_class or 'no SOP class'}) without pixel data"
        )
    problem = _pixel_problem(ds, data)
    if problem is not None:
        return Skip("truncated", problem)
    values, undecodable = _text_values(ds)
    return ImageFacts(
        values=values,
        rows=_int(ds.get("Rows")),
        columns=_int(ds.get("Columns")),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "") or ""),
        undecodable=undecodable,
    )


def _looks_like_dicom(data: bytes) -> bool:
    """A preamble with ``DICM``, or (old files without one) a group 0002/0008 tag first."""
    if data[128:132] == b"DICM":
        return True
    if len(data) < 8:
        return False
    little, big = struct.unpack_from("<H", data)[0], struct.unpack_from(">H", data)[0]
    return little in (0x0002, 0x0008) or big in (0x0002, 0x0008)  # no preamble: old files


def _pixel_problem(ds: Dataset, data: bytes) -> str | None:
    """Why the image's pixel data is incomplete, or None when it is whole."""
    element = next(ds.get_item(t, keep_deferred=True) for t in _PIXEL_TAGS if t in ds)
    length = getattr(element, "length", None)
    tell = getattr(element, "value_tell", None)
    syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    if syntax is not None and syntax.is_deflated:
        tell = None  # offsets point into the inflated stream, not into the file
    if length is None or tell is None:  # read in full, or deflated: compare with the image size
        expected = _expected_bytes(ds)
        size = length if length not in (None, _UNDEFINED) else len(element.value or b"")
        if expected and size < expected:
            return f"pixel data has {size} bytes, the image needs {expected}"
        return None
    if length == _UNDEFINED:
        return _encapsulated_problem(data, tell)
    if tell + length > len(data):
        return f"file ends {tell + length - len(data)} bytes inside the pixel data"
    expected = _expected_bytes(ds)
    if expected and length < expected:
        return f"pixel data has {length} bytes, the image needs {expected}"
    return None


def _encapsulated_problem(data: bytes, at: int) -> str | None:
    """Walk the fragments of encapsulated pixel data up to the sequence delimiter."""
    while at + 8 <= len(data):
        group, element, length = _ITEM.unpack_from(data, at)
        if (group, element) == (0xFFFE, 0xE0DD):
            return None
        if (group, element) != (0xFFFE, 0xE000) or length == _UNDEFINED:
            return f"unexpected tag ({group:04X},{element:04X}) inside encapsulated pixel data"
        at += 8 + length
    return "file ends inside the encapsulated pixel data"


def _expected_bytes(ds: Dataset) -> int:
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.BitsAllocated)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return 0
    if samples == 3 and str(ds.get("PhotometricInterpretation", "")).endswith("_422"):
        samples = 2  # YBR 4:2:2 stores two samples per pixel on average
    return (rows * columns * samples * frames * bits + 7) // 8


def _text_values(ds: Dataset) -> tuple[dict[str, str], tuple[str, ...]]:
    values: dict[str, str] = {}
    undecodable = []
    for keyword in TEXT_KEYWORDS:
        failed = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = ds.get(keyword, "")
                text = "" if value is None else str(value).strip()
            except (ValueError, LookupError, UnicodeError):
                text, failed = "", True
        if failed or any(_is_decode_warning(w) for w in caught):
            undecodable.append(keyword)
        values[keyword] = text.replace("\x00", "").strip()
    return values, tuple(undecodable)


def _is_decode_warning(record: Any) -> bool:
    message = str(getattr(record, "message", ""))
    return "decode" in message.lower() or "character set" in message.lower()


def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None
