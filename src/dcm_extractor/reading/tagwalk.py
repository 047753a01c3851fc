"""Walking the elements of a DICOM header in its raw bytes, by their lengths alone.

The building blocks of the fast header reader (:mod:`dcm_extractor.reading.fastheader`): the
file meta group, the data set up to the last needed tag, and the pixel data element.
Nothing here decodes a value; anything the walk does not handle raises
:class:`HandOverError` with one of the :data:`HANDOVER_REASONS`, and pydicom's full parse
decides instead. Any other exception out of the walk is a bug (:mod:`.fastheader`'s
strict mode).
"""

from __future__ import annotations

import struct
from typing import Final

from .facts import PixelInfo

__all__ = [
    "EXPLICIT_SHORT",
    "HANDOVER_REASONS",
    "HEADER_SIZE",
    "LAST_NEEDED",
    "NEEDED",
    "TAG",
    "UINT",
    "UNDEFINED",
    "Found",
    "HandOverError",
    "Record",
    "finish",
    "skip_undefined",
    "walk_explicit",
    "walk_general",
    "walk_meta",
]

LONG_VRS: Final = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
# Every VR of the standard, with the size of its element header in explicit VR.
HEADER_SIZE: Final = {
    vr: 12 if vr in LONG_VRS else 8
    for vr in (
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
        b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST",
        b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
    )
}  # fmt: skip
UNDEFINED: Final = 0xFFFFFFFF
NEEDED: Final = frozenset(
    {
        0x00080005, 0x00080016, 0x00080018, 0x00080020, 0x00080060, 0x00080070,
        0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00101010,
        0x0020000D, 0x0020000E,
        0x00280002, 0x00280004, 0x00280008, 0x00280010, 0x00280011, 0x00280100,
        0x00041220,  # DirectoryRecordSequence: a DICOMDIR
        # the series table's (dcm_extractor.reading.extras.SERIES_KEYWORDS): all before (0028,0100),
        # so finding them costs no extra walking, only a dict entry each
        0x00080008, 0x00080021, 0x00080031, 0x00081030, 0x0008103E, 0x00081090,
        0x00180010, 0x00180015, 0x00180050, 0x00180060, 0x00180088, 0x00181030, 0x00181210,
        0x00200011, 0x00200032, 0x00200037, 0x00280030,
        0x00200052,  # FrameOfReferenceUID: identifies a series without a UID (header.series_key)
        # the instance table's (dcm_extractor.reading.extras.INSTANCE_KEYWORDS) besides those
        0x00080022, 0x00080032, 0x00200013,
    }
)  # fmt: skip
LAST_NEEDED: Final = max(NEEDED)

_ITEM: Final = 0xFFFEE000
_ITEM_END: Final = 0xFFFEE00D
_SEQUENCE_END: Final = 0xFFFEE0DD
_PIXEL_TAGS: Final = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_PIXEL_DATA: Final = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian
EXPLICIT_SHORT: Final = struct.Struct("<HH2sH")
_EXPLICIT_LONG: Final = struct.Struct("<HH2s2xI")
_IMPLICIT: Final = struct.Struct("<HHI")
TAG: Final = struct.Struct("<HH")
UINT: Final = struct.Struct("<I")

# Needed elements found by a walk: tag -> (VR as in the file or None, value start, length).
Found = dict[int, tuple[bytes | None, int, int]]
# One element the explicit walk stepped over: (tag, VR, header size, length).
Record = tuple[int, bytes, int, int]


HANDOVER_REASONS: Final = {
    "no_preamble": "no preamble: an old file without one, or no DICOM at all",
    "transfer_syntax": "a deflated or big-endian transfer syntax",
    "beyond_head": "the header goes on past the bytes read first",
    "ends_in_header": "the file ends inside its header",
    "encapsulated": "encapsulated pixel data past the bytes read first",
    "no_pixel_data": "an image object without pixel data: header-only, or cut short "
    "(pydicom's checks tell which)",
    "undefined_length": "a needed element of undefined length",
    "unusual_encoding": "an image attribute not encoded as the standard says (Rows not US)",
    "malformed": "a malformed header (unknown VR, broken sequence, damaged file meta, "
    "non-ASCII UID)",
}
"""Why the fast reader leaves a file to pydicom: the only kinds of input it hands over
(the run summary counts each). The keys are stable; they appear in ``run_summary``."""


class HandOverError(Exception):
    """The walk met something it leaves to pydicom: ``reason`` is a key of
    :data:`HANDOVER_REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason, self.detail = reason, detail


def walk_meta(head: bytes) -> tuple[int, dict[int, bytes]]:
    """Group 0002 (always explicit VR little endian): its values and where the data set starts."""
    position, meta, end = 132, dict[int, bytes](), len(head)
    while position + 8 <= end:
        group, element, vr, length = EXPLICIT_SHORT.unpack_from(head, position)
        if group != 0x0002:
            return position, meta
        if vr in LONG_VRS:
            if position + 12 > end:
                raise HandOverError("beyond_head", "file meta group")
            (length,) = UINT.unpack_from(head, position + 8)
            start = position + 12
        else:
            start = position + 8
        if length == UNDEFINED or start + length > end:
            raise HandOverError("malformed", "file meta group")
        meta[group << 16 | element] = head[start : start + length]
        position = start + length
    raise HandOverError("beyond_head", "file meta group")


def walk_explicit(
    head: bytes, position: int, found: Found, records: list[Record]
) -> tuple[int, bool]:
    """Explicit VR little endian up to the first tag past :data:`LAST_NEEDED`.

    The hot loop of the whole extractor: one ``unpack`` and one dict lookup per
    element; an unknown VR or a long element header past the bytes read raise
    :class:`HandOverError` (caught around the loop, not checked in it). Fills ``found`` and
    appends each element stepped over to ``records``. Returns the position reached and
    whether the walk stopped there at such a tag (False: it ran out of bytes).
    """
    end = len(head)
    short = EXPLICIT_SHORT.unpack_from
    long_length = UINT.unpack_from
    header_size = HEADER_SIZE
    needed = NEEDED
    last = LAST_NEEDED
    record = records.append
    try:
        while position + 8 <= end:
            group, element, vr, length = short(head, position)
            tag = group << 16 | element
            if tag > last:
                return position, True
            size = header_size[vr]  # KeyError: not a VR
            if size == 12:  # a 4-byte length; past the bytes read, unpack raises
                (length,) = long_length(head, position + 8)
            record((tag, vr, size, length))
            position += size
            if length == UNDEFINED:
                if tag in needed:
                    raise HandOverError("undefined_length")
                position = skip_undefined(head, position, False)
                continue
            if tag in needed:
                found[tag] = (vr, position, length)
            position += length
    except KeyError:
        raise HandOverError("malformed", "unknown VR") from None
    except struct.error:
        raise HandOverError("beyond_head", "element header") from None
    return position, False


def finish(head: bytes, position: int, size: int, found: Found) -> tuple[Found, PixelInfo | None]:
    """From the first tag past the last needed one: find the pixel data element.

    Searched for directly when possible (see :func:`_find_pixel_data`), so the private
    groups in between are not walked; otherwise by :func:`walk_general`.
    """
    group, element = TAG.unpack_from(head, position)
    if group << 16 | element not in _PIXEL_TAGS:
        pixel = _find_pixel_data(head, position, size)
        if pixel is not None:
            return found, pixel
    return walk_general(head, position, False, size, found)


def walk_general(
    head: bytes, position: int, implicit: bool, size: int, found: Found
) -> tuple[Found, PixelInfo | None]:
    """The careful walk: any tag order, item tags, implicit VR; stops at the pixel data."""
    end = len(head)
    while position + 8 <= end:
        tag, vr, length, start = _element_header(head, position, implicit)
        if tag in _PIXEL_TAGS:
            return found, PixelInfo(length, start)
        if length == UNDEFINED:
            if tag in NEEDED:
                raise HandOverError("undefined_length")
            position = skip_undefined(head, start, implicit)
            continue
        if tag in NEEDED:
            found[tag] = (vr, start, length)
        position = start + length
    if position != end or end < size:
        raise HandOverError("beyond_head", "data set")
    return found, None


def _find_pixel_data(head: bytes, position: int, size: int) -> PixelInfo | None:
    """The top-level PixelData element found by its header bytes, or None to keep walking.

    Explicit VR only: tag, ``OB``/``OW`` and two zero bytes, and the value must reach the
    end of the file (or beyond: truncated). That rejects the pixel data of an icon image
    nested in a sequence, which ends well before the file does.
    """
    at = head.find(_PIXEL_DATA, position)
    if at < 0 or at + 12 > len(head) or head[at + 4 : at + 8] not in (b"OB\x00\x00", b"OW\x00\x00"):
        return None
    (length,) = UINT.unpack_from(head, at + 8)
    if length == UNDEFINED or at + 12 + length < size:
        return None  # encapsulated, an icon's pixel data, or trailing elements: walk instead
    return PixelInfo(length, at + 12)


def _element_header(
    head: bytes, position: int, implicit: bool
) -> tuple[int, bytes | None, int, int]:
    if implicit:
        group, element, length = _IMPLICIT.unpack_from(head, position)
        return group << 16 | element, None, length, position + 8
    group, element, raw_vr, length = EXPLICIT_SHORT.unpack_from(head, position)
    tag = group << 16 | element
    if group == 0xFFFE:  # item tags carry no VR
        _, _, length = _IMPLICIT.unpack_from(head, position)
        return tag, None, length, position + 8
    if raw_vr in LONG_VRS:
        if position + 12 > len(head):
            raise HandOverError("beyond_head", "element header")
        _, _, _, length = _EXPLICIT_LONG.unpack_from(head, position)
        return tag, raw_vr, length, position + 12
    if raw_vr not in HEADER_SIZE:
        raise HandOverError("malformed", "unknown VR")
    return tag, raw_vr, length, position + 8


def skip_undefined(head: bytes, position: int, implicit: bool) -> int:
    """Past a sequence of undefined length: items, nested data sets, the delimiter."""
    while True:
        if position + 8 > len(head):
            raise HandOverError("beyond_head", "sequence")
        tag, _, length, start = _element_header(head, position, True)
        if tag == _SEQUENCE_END:
            return start
        if tag != _ITEM:
            raise HandOverError("malformed", "tag in a sequence")
        if length != UNDEFINED:
            position = start + length
            continue
        position = _skip_item(head, start, implicit)


def _skip_item(head: bytes, position: int, implicit: bool) -> int:
    """Past an item of undefined length: its elements up to the item delimiter."""
    while True:
        if position + 8 > len(head):
            raise HandOverError("beyond_head", "sequence item")
        tag, _, length, start = _element_header(head, position, implicit)
        if tag == _ITEM_END:
            return start
        position = skip_undefined(head, start, implicit) if length == UNDEFINED else start + length
