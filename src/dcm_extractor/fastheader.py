"""The fast header reader: walk the tags of a file's first bytes, let pydicom decode values.

pydicom's full parse builds every element of a header (often 200 with private groups);
the table needs about 20. This walker steps over elements by their lengths alone,
keeps the raw bytes of the needed ones, and hands those to pydicom as raw elements,
so values decode exactly as pydicom decodes them (character sets included). Anything
unusual is left to pydicom's full parse: no preamble, deflated or big-endian transfer
syntaxes, a needed element or the pixel data beyond the bytes read, encapsulated pixel
data in a partial read, or anything malformed. :func:`inspect_head` says which path ran.
"""

from __future__ import annotations

import os
import struct
from typing import Final

from pydicom.charset import python_encoding
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from .header import (
    TEXT_TAGS,
    HeaderFields,
    ImageFacts,
    PixelInfo,
    Skip,
    classify,
    inspect_dicom,
    text_values,
)

__all__ = ["HEAD_BYTES", "inspect_head", "read_head"]

HEAD_BYTES: Final = 16 * 1024  # enough for the header of nearly every CT/MR file

_IMPLICIT_LE: Final = "1.2.840.10008.1.2"
_HANDED_TO_PYDICOM: Final = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}  # deflate, BE
_LONG_VRS: Final = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_UNDEFINED: Final = 0xFFFFFFFF
_ITEM: Final = 0xFFFEE000
_ITEM_END: Final = 0xFFFEE00D
_SEQUENCE_END: Final = 0xFFFEE0DD
_PIXEL_TAGS: Final = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_NEEDED: Final = frozenset(
    {
        0x00080005, 0x00080016, 0x00080018, 0x00080020, 0x00080060, 0x00080070,
        0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00101010,
        0x0020000D, 0x0020000E,
        0x00280002, 0x00280004, 0x00280008, 0x00280010, 0x00280011, 0x00280100,
        0x00041220,  # DirectoryRecordSequence: a DICOMDIR
    }
)  # fmt: skip
_LAST_NEEDED: Final = max(_NEEDED)
_PIXEL_DATA: Final = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian
_US: Final = struct.Struct("<H")
_PATIENT_NAME: Final = 0x00100010
_EXPLICIT_SHORT: Final = struct.Struct("<HH2sH")
_EXPLICIT_LONG: Final = struct.Struct("<HH2s2xI")
_IMPLICIT: Final = struct.Struct("<HHI")
_UINT: Final = struct.Struct("<I")
# Every VR of the standard, with the size of its element header in explicit VR.
_HEADER_SIZE: Final = {
    vr: 12 if vr in _LONG_VRS else 8
    for vr in (
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
        b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST",
        b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
    )
}  # fmt: skip

# Needed elements found by the walk: tag -> (VR as in the file or None, value start, length).
_Found = dict[int, tuple[bytes | None, int, int]]


class _HandOverError(Exception):
    """The walker met something it leaves to pydicom."""


def read_head(path: str | os.PathLike[str], limit: int = HEAD_BYTES) -> tuple[bytes, int]:
    """A file's first ``limit`` bytes and its size.

    Plain ``os`` calls: a Python file object costs twice as much as the read itself,
    and this runs once per file (see benchmarks/header_reader.py).

    Raises
    ------
    OSError
        The file cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        head = os.read(fd, limit)
        while len(head) < min(limit, size):  # a short read (network file systems)
            more = os.read(fd, limit - len(head))
            if not more:
                break
            head += more
        return head, size
    finally:
        os.close(fd)


def inspect_head(head: bytes, size: int, read_all: object = None) -> tuple[ImageFacts | Skip, bool]:
    """The verdict on a file from its first bytes; returns ``(verdict, fast)``.

    Parameters
    ----------
    head : bytes
        The file's first bytes (:data:`HEAD_BYTES`, or the whole file when smaller).
    size : int
        The file's full size in bytes.
    read_all : callable, optional
        Returns the whole file's bytes; called only when pydicom must take over and
        ``head`` is not the whole file.

    ``fast`` is False when pydicom's full parse decided (counted in the run summary).
    """
    try:
        return _fast(head, size), True
    except (_HandOverError, struct.error, ValueError, IndexError, KeyError, TypeError):
        data = head if len(head) >= size or read_all is None else read_all()  # type: ignore[operator]
        return inspect_dicom(data), False


def _fast(head: bytes, size: int) -> ImageFacts | Skip:
    if not head or head[128:132] != b"DICM":
        raise _HandOverError("no preamble")
    position, meta = _walk_meta(head)
    syntax = meta.get(0x00020010, b"").rstrip(b"\x00 ").decode("ascii")
    if syntax in _HANDED_TO_PYDICOM:
        raise _HandOverError(syntax)
    implicit = syntax == _IMPLICIT_LE
    found, pixel = _walk_dataset(head, position, implicit, size)
    if pixel is not None and pixel.length == _UNDEFINED and len(head) < size:
        raise _HandOverError("encapsulated pixel data in a partial read")
    meta_class = _ascii(meta.get(0x00020002, b""))
    return classify(_fields(head, found, pixel, meta_class, implicit), head, size)


def _ascii(raw: bytes) -> str:
    """A plain ASCII value (UIDs, codes, numbers) as pydicom shows it."""
    return raw.decode("ascii").strip(" \x00").replace("\x00", "")


def _fields(
    head: bytes,
    found: _Found,
    pixel: PixelInfo | None,
    meta_class: str,
    implicit: bool,
) -> HeaderFields:
    end = len(head)
    raw: dict[int, bytes] = {}
    for tag, (_, start, length) in found.items():
        if start + length > end:
            raise _HandOverError("needed element beyond the bytes read")
        raw[tag] = head[start : start + length]
    text: dict[str, str] = {}
    hard = []
    codec = _single_codec(raw.get(0x00080005, b""))
    for keyword, tag in TEXT_TAGS:
        value = raw.get(tag)
        if value is None:
            continue
        if b"\x1b" in value or b"\\" in value:  # escape sequences, several values
            hard.append(tag)
        elif tag == _PATIENT_NAME and (b"=" in value or value.rstrip(b" \x00").endswith(b"^")):
            hard.append(tag)  # person-name groups: pydicom's PersonName trims them its way
        elif value.isascii():
            text[keyword] = _ascii(value)
        elif codec is not None:  # one character set without code extensions
            try:
                text[keyword] = value.decode(codec).strip(" \x00").replace("\x00", "").strip()
            except UnicodeDecodeError:
                hard.append(tag)  # pydicom decides how to report and replace
        else:
            hard.append(tag)
    undecodable: tuple[str, ...] = ()
    if hard:
        decoded, undecodable = _decode_by_pydicom(found, raw, hard, implicit)
        text.update(decoded)
    return HeaderFields(
        meta_class=meta_class,
        sop_class=_ascii(raw.get(0x00080016, b"")),
        sop_instance_uid=_ascii(raw.get(0x00080018, b"")),
        directory_records=0x00041220 in raw,
        text=text,
        undecodable=undecodable,
        rows=_us(raw, found, 0x00280010),
        columns=_us(raw, found, 0x00280011),
        samples=_us(raw, found, 0x00280002) or 1,
        bits=_us(raw, found, 0x00280100),
        frames=_is(raw.get(0x00280008)),
        photometric=_ascii(raw.get(0x00280004, b"")),
        pixel=pixel,
    )


def _decode_by_pydicom(
    found: _Found, raw: dict[int, bytes], hard: list[int], implicit: bool
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Text values the fast path leaves to pydicom, decoded in the file's character set."""
    subset = Dataset()
    for tag in (0x00080005, *hard):
        if tag in found:
            vr, start, length = found[tag]
            text_vr = None if vr is None else vr.decode("ascii")
            key = BaseTag(tag)
            subset[key] = RawDataElement(key, text_vr, length, raw[tag], start, implicit, True)
    decoded, undecodable = text_values(subset)
    wanted = {keyword for keyword, tag in TEXT_TAGS if tag in hard}
    return {k: v for k, v in decoded.items() if k in wanted}, undecodable


def _single_codec(charset: bytes) -> str | None:
    """The Python codec of a single, non-ISO-2022 SpecificCharacterSet, else None."""
    term = charset.decode("ascii", "replace").strip(" \x00")
    if not term or "\\" in term or term.startswith("ISO 2022") or term not in python_encoding:
        return None
    return python_encoding[term]


def _us(raw: dict[int, bytes], found: _Found, tag: int) -> int | None:
    """An unsigned short as pydicom reads it; anything else goes to pydicom."""
    value = raw.get(tag)
    if value is None:
        return None
    if found[tag][0] not in (None, b"US") or len(value) != 2:
        raise _HandOverError("unusual encoding of an image attribute")
    number: int = _US.unpack(value)[0]
    return number


def _is(value: bytes | None) -> int | None:
    """NumberOfFrames: 1 when absent or empty; None when present but not a number."""
    if value is None:
        return 1
    text = _ascii(value)
    if not text:
        return 1
    try:
        return int(text) or 1
    except ValueError:
        return None


def _walk_meta(head: bytes) -> tuple[int, dict[int, bytes]]:
    """Group 0002 (always explicit VR little endian): its values and where the data set starts."""
    position, meta, end = 132, dict[int, bytes](), len(head)
    while position + 8 <= end:
        group, element, vr, length = _EXPLICIT_SHORT.unpack_from(head, position)
        if group != 0x0002:
            return position, meta
        if vr in _LONG_VRS:
            (length,) = _UINT.unpack_from(head, position + 8)
            start = position + 12
        else:
            start = position + 8
        if length == _UNDEFINED or start + length > end:
            raise _HandOverError("odd file meta")
        meta[group << 16 | element] = head[start : start + length]
        position = start + length
    raise _HandOverError("header longer than the bytes read")


def _walk_dataset(
    head: bytes, position: int, implicit: bool, size: int
) -> tuple[_Found, PixelInfo | None]:
    """Needed elements as (VR, value start, length), and the pixel data element (value not read).

    The loop up to the last needed tag is the hot path of the whole extractor: explicit
    VR little endian only, one ``unpack`` and one dict lookup per element (an unknown VR
    is a KeyError: pydicom takes over). Implicit VR, and whatever follows the last needed
    tag when the pixel data cannot be found directly, take :func:`_walk_general`.
    """
    found: _Found = {}
    if implicit:
        return _walk_general(head, position, True, size, found)
    end = len(head)
    short = _EXPLICIT_SHORT.unpack_from
    long_length = _UINT.unpack_from
    header_size = _HEADER_SIZE
    needed = _NEEDED
    last = _LAST_NEEDED
    while position + 8 <= end:
        group, element, vr, length = short(head, position)
        tag = group << 16 | element
        if tag > last:
            if tag not in _PIXEL_TAGS:
                pixel = _find_pixel_data(head, position, size)
                if pixel is not None:  # no need to walk the private groups in between
                    return found, pixel
            return _walk_general(head, position, False, size, found)
        if header_size[vr] == 8:
            position += 8
        else:  # a 4-byte length; past the bytes read, unpack raises and pydicom takes over
            (length,) = long_length(head, position + 8)
            position += 12
            if length == _UNDEFINED:
                if tag in needed:
                    raise _HandOverError("needed element of undefined length")
                position = _skip_undefined(head, position, False)
                continue
        if tag in needed:
            found[tag] = (vr, position, length)
        position += length
    return _walk_general(head, position, False, size, found)


def _walk_general(
    head: bytes, position: int, implicit: bool, size: int, found: _Found
) -> tuple[_Found, PixelInfo | None]:
    """The careful walk: any tag order, item tags, implicit VR; stops at the pixel data."""
    end = len(head)
    while position + 8 <= end:
        tag, vr, length, start = _element_header(head, position, implicit)
        if tag in _PIXEL_TAGS:
            return found, PixelInfo(length, start)
        if length == _UNDEFINED:
            if tag in _NEEDED:
                raise _HandOverError("needed element of undefined length")
            position = _skip_undefined(head, start, implicit)
            continue
        if tag in _NEEDED:
            found[tag] = (vr, start, length)
        position = start + length
    if position != end or end < size:
        raise _HandOverError("the bytes read end inside the header")
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
    (length,) = struct.unpack_from("<I", head, at + 8)
    if length == _UNDEFINED or at + 12 + length < size:
        return None  # encapsulated, an icon's pixel data, or trailing elements: walk instead
    return PixelInfo(length, at + 12)


def _element_header(
    head: bytes, position: int, implicit: bool
) -> tuple[int, bytes | None, int, int]:
    if implicit:
        group, element, length = _IMPLICIT.unpack_from(head, position)
        return group << 16 | element, None, length, position + 8
    group, element, raw_vr, length = _EXPLICIT_SHORT.unpack_from(head, position)
    tag = group << 16 | element
    if group == 0xFFFE:  # item tags carry no VR
        _, _, length = _IMPLICIT.unpack_from(head, position)
        return tag, None, length, position + 8
    if raw_vr in _LONG_VRS:
        if position + 12 > len(head):
            raise _HandOverError("element beyond the bytes read")
        _, _, _, length = _EXPLICIT_LONG.unpack_from(head, position)
        return tag, raw_vr, length, position + 12
    if raw_vr not in _HEADER_SIZE:
        raise _HandOverError("not an explicit VR")
    return tag, raw_vr, length, position + 8


def _skip_undefined(head: bytes, position: int, implicit: bool) -> int:
    """Past a sequence of undefined length: items, nested data sets, the delimiter."""
    while True:
        if position + 8 > len(head):
            raise _HandOverError("sequence beyond the bytes read")
        tag, _, length, start = _element_header(head, position, True)
        if tag == _SEQUENCE_END:
            return start
        if tag != _ITEM:
            raise _HandOverError("unexpected tag in a sequence")
        if length != _UNDEFINED:
            position = start + length
            continue
        position = _skip_item(head, start, implicit)


def _skip_item(head: bytes, position: int, implicit: bool) -> int:
    """Past an item of undefined length: its elements up to the item delimiter."""
    while True:
        if position + 8 > len(head):
            raise _HandOverError("item beyond the bytes read")
        tag, _, length, start = _element_header(head, position, implicit)
        if tag == _ITEM_END:
            return start
        if length == _UNDEFINED:
            position = _skip_undefined(head, start, implicit)
        else:
            position = start + length
