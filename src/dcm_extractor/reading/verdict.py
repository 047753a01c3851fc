"""One file's verdict: an image with its table values, or the reason it is not counted.

The few header fields the table needs are gathered into :class:`~.facts.HeaderFields`
(by the fast reader in :mod:`.fastheader`, or by pydicom's full parse in :mod:`.fullparse`),
and :func:`classify` decides what the file is; whether its pixel data is whole is decided
from where the pixel data starts and how long it says it is, set against the file's size
(encapsulated pixel data: its fragments' item headers walked, their bytes never read):

=================  =================================================================
``empty``          zero bytes
``not_dicom``      neither a DICOM preamble nor a plausible DICOM start (an archive dcm-extract
                   does not open is named: :func:`container_kind`)
``unreadable``     looks like DICOM but pydicom cannot parse it
``dicomdir``       a media storage directory (DICOMDIR)
``non_image``      a SOP class known not to be an image (report, plan, PDF, ...)
``no_pixel_data``  an image SOP class, but no pixel data at all (header-only copies)
``truncated``      the pixel data is cut short
=================  =================================================================
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import Final

from .facts import TEXT_KEYWORDS, HeaderFields, ImageFacts, Skip
from .sopclass import DICOMDIR_CLASS, non_image_kind

__all__ = ["UNDEFINED", "classify", "container_kind", "looks_like_dicom", "other_kind", "shown_uid"]

UNDEFINED: Final = 0xFFFFFFFF
_ITEM: Final = struct.Struct("<HHI")


_UID: Final = re.compile(r"[0-9]+(\.[0-9]+)*")


def shown_uid(uid: str) -> str:
    """A UID fit for a report: itself when it is one, never a damaged value's bytes.

    A damaged length can make a "UID" swallow the elements after it (names, IDs): such
    a value is not quoted.
    """
    if not uid:
        return "no SOP class"
    if len(uid) <= 64 and _UID.fullmatch(uid):
        return uid
    return "a damaged SOP Class UID"


def classify(
    fields: HeaderFields,
    data: bytes,
    size: int,
    read_at: Callable[[int, int], bytes] | None = None,
) -> ImageFacts | Skip:
    """The verdict on a header; ``data`` holds the file's first bytes, ``size`` all of it
    (``read_at``: more of it, for encapsulated pixel data past ``data``)."""
    if fields.meta_class == DICOMDIR_CLASS or fields.directory_records:
        return Skip("dicomdir", "DICOMDIR (media storage directory)")
    sop_class = fields.sop_class or fields.meta_class
    facts = ImageFacts(
        values={keyword: fields.text.get(keyword, "") for keyword in TEXT_KEYWORDS},
        rows=fields.rows,
        columns=fields.columns,
        sop_instance_uid=fields.sop_instance_uid,
        undecodable=fields.undecodable,
        charset_notes=fields.charset_notes,
        extra=fields.extra,
        frames=fields.frames or 1,
        series_key=fields.series_key,
    )
    kind = non_image_kind(sop_class)
    shown = shown_uid(sop_class)
    if kind is not None:
        return Skip("non_image", f"{kind} ({shown})", facts)
    if fields.pixel is None:
        return Skip("no_pixel_data", f"image object ({shown}) without pixel data", facts)
    if not fields.rows or not fields.columns:  # an image of no pixels is no image
        if fields.rows is None or fields.columns is None:  # pixel bytes no one can lay out
            missing = " and ".join(
                name for name, value in (("Rows", fields.rows), ("Columns", fields.columns))
                if value is None
            )  # fmt: skip
            detail = f"pixel data, but no {missing}: no image can be made of it ({shown})"
        else:
            detail = f"image object with {fields.rows} rows and {fields.columns} columns"
        return Skip("no_pixel_data", detail, facts)
    problem = pixel_problem(fields, data, size, read_at)
    if problem is not None:
        return Skip("truncated", problem, facts)
    return facts


def looks_like_dicom(data: bytes) -> bool:
    """A preamble with ``DICM``, or (old files without one) a group 0002/0008 tag first."""
    if data[128:132] == b"DICM":
        return True
    if len(data) < 8:
        return False
    little, big = struct.unpack_from("<H", data)[0], struct.unpack_from(">H", data)[0]
    return little in (0x0002, 0x0008) or big in (0x0002, 0x0008)  # no preamble: old files


# Archives and compressed files a DICOM export may come in, by the bytes they start with
# (their own specifications' magic numbers): not opened, but named in the report.
_CONTAINERS: Final = (
    (0, b"PK\x03\x04", "a zip archive not named .zip"),
    (0, b"PK\x05\x06", "a zip archive not named .zip"),
    (0, b"\x1f\x8b", "a gzip file"),
    (257, b"ustar", "a tar archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (0, b"BZh", "a bzip2 file"),
    (0, b"\xfd7zXZ\x00", "an xz file"),
    (0, b"\x28\xb5\x2f\xfd", "a Zstandard file"),
)


# Other files exports carry beside the images (the systems that copied them, reports,
# screenshots), by their first bytes: named in the report, so that a reader knows what
# to ignore.
_OTHER_FILES: Final = (
    (0, b"\x00\x05\x16\x07", "macOS metadata (an AppleDouble ._ file, __MACOSX/)"),
    (0, b"\x00\x00\x00\x01Bud1", "macOS Finder metadata (.DS_Store)"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a Windows Thumbs.db or Office document (OLE2)"),
    (0, b"%PDF-", "a PDF document"),
    (0, b"\xff\xd8\xff", "a JPEG picture"),
    (0, b"\x89PNG\r\n\x1a\n", "a PNG picture"),
)


def other_kind(data: bytes) -> str | None:
    r"""What non-DICOM file ``data`` (a file's first bytes) is, when an export commonly
    carries such files (operating systems' metadata, reports, pictures), or None.

    Examples
    --------
    >>> other_kind(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    'macOS metadata (an AppleDouble ._ file, __MACOSX/)'
    >>> other_kind(b"DICM") is None
    True
    """
    return _first_kind(_OTHER_FILES, data)


def container_kind(data: bytes) -> str | None:
    """What archive or compressed file ``data`` (a file's first bytes) starts as, or None.

    Examples
    --------
    >>> import gzip
    >>> container_kind(gzip.compress(b"DICM"))
    'a gzip file'
    >>> container_kind(b"hello") is None
    True
    """
    return _first_kind(_CONTAINERS, data)


def _first_kind(table: tuple[tuple[int, bytes, str], ...], data: bytes) -> str | None:
    """The kind of the first ``(offset, magic, kind)`` of ``table`` whose magic ``data``
    holds at its offset, or None."""
    for offset, magic, kind in table:
        if data[offset : offset + len(magic)] == magic:
            return kind
    return None


def pixel_problem(
    fields: HeaderFields,
    data: bytes,
    size: int,
    read_at: Callable[[int, int], bytes] | None = None,
) -> str | None:
    """Why the image's pixel data is incomplete, or None when it is whole."""
    pixel = fields.pixel
    assert pixel is not None
    length, tell = pixel.length, pixel.tell
    if length is None or tell is None:  # read in full, or deflated: compare with the image size
        expected = expected_bytes(fields)
        have = length if length not in (None, UNDEFINED) else pixel.read_size
        if expected and have < expected:
            return f"pixel data has {have} bytes, the image needs {expected}"
        return None
    if length == UNDEFINED:
        return encapsulated_problem(data, tell, size, read_at)
    if tell + length > size:
        return f"file ends {tell + length - size} bytes inside the pixel data"
    expected = expected_bytes(fields)
    if expected and length < expected:
        return f"pixel data has {length} bytes, the image needs {expected}"
    return None


def encapsulated_problem(
    data: bytes,
    at: int,
    size: int | None = None,
    read_at: Callable[[int, int], bytes] | None = None,
) -> str | None:
    """Walk the fragments of encapsulated pixel data up to the sequence delimiter (item
    headers past ``data`` through ``read_at``; each fragment's bytes are never read)."""
    end = len(data) if read_at is None or size is None else size
    while at + 8 <= end:
        item = data[at : at + 8] if at + 8 <= len(data) else read_at(at, 8)  # type: ignore[misc]
        if len(item) < 8:
            break
        group, element, length = _ITEM.unpack_from(item)
        if (group, element) == (0xFFFE, 0xE0DD):
            return None
        if (group, element) != (0xFFFE, 0xE000) or length == UNDEFINED:
            return f"unexpected tag ({group:04X},{element:04X}) inside encapsulated pixel data"
        at += 8 + length
    return "file ends inside the encapsulated pixel data"


def expected_bytes(fields: HeaderFields) -> int:
    rows, columns, samples, bits, frames = (
        fields.rows,
        fields.columns,
        fields.samples,
        fields.bits,
        fields.frames,
    )
    if rows is None or columns is None or samples is None or bits is None or frames is None:
        return 0
    if samples == 3 and fields.photometric.endswith("_422"):
        samples = 2  # YBR 4:2:2 stores two samples per pixel on average
    return (rows * columns * samples * frames * bits + 7) // 8
