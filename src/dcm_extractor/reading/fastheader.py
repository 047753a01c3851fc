"""The fast header reader: walk the tags of a file's first bytes, let pydicom decode values.

pydicom's full parse builds every element of a header (often 200 with private groups);
the table needs about 20. This walker steps over elements by their lengths alone,
keeps the raw bytes of the needed ones, and hands those to pydicom as raw elements,
so values decode exactly as pydicom decodes them (character sets included). Anything
unusual is left to pydicom's full parse: no preamble, deflated or big-endian transfer
syntaxes, a needed element or the pixel data beyond the bytes read, encapsulated pixel
data in a partial read, or anything malformed. :func:`inspect_head` says which path ran.

The walking itself is in :mod:`.tagwalk`; :mod:`.layout` lets the files of a series
skip most of it.
"""

from __future__ import annotations

import functools
import io
import os
import struct
import warnings
from collections.abc import Callable
from typing import Final

from pydicom import dcmread
from pydicom.charset import python_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from .columns import ColumnSpec, value_text
from .extras import TRANSFER_SYNTAX, Extras
from .header import (
    TEXT_TAGS,
    HeaderFields,
    ImageFacts,
    PixelInfo,
    Skip,
    classify,
    inspect_dicom,
    looks_like_dicom,
    series_key,
    text_values,
)
from .layout import LayoutCache, follow
from .tagwalk import (
    UNDEFINED,
    Found,
    HandOverError,
    Record,
    finish,
    walk_explicit,
    walk_general,
    walk_meta,
)

__all__ = ["HANDOVER_BYTES", "HEAD_BYTES", "inspect_head", "read_at", "read_head"]

HEAD_BYTES: Final = 16 * 1024  # enough for the header of nearly every CT/MR file
HANDOVER_BYTES: Final = 32 * 2**20
"""The most pydicom's parse is given of one file or member: the header (up to the pixel
data, whose length and position decide its completeness without reading it) lies within
it in every real file; a file that is no DICOM, or a "header" of 4 GB, costs at most this
much memory and the time to parse it (docs/dcm-extractor.md, "Bounded cost per file")."""

_IMPLICIT_LE: Final = "1.2.840.10008.1.2"
_HANDED_TO_PYDICOM: Final = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}  # deflate, BE
_US: Final = struct.Struct("<H")
_PATIENT_NAME: Final = 0x00100010

# The layout of the latest header walked in this process (see :mod:`.layout`).
LAYOUTS: Final = LayoutCache()


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


def read_at(path: str | os.PathLike[str]) -> Callable[[int, int], bytes]:
    """``reader(offset, n)`` of a file (``pread``: no file position to keep)."""

    def reader(offset: int, n: int) -> bytes:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            return os.pread(fd, n, offset)
        finally:
            os.close(fd)

    return reader


def inspect_head(
    head: bytes,
    size: int,
    read_all: object = None,
    extras: Extras | None = None,
    known: Callable[[str, str], frozenset[str]] | None = None,
    reader: Callable[[int, int], bytes] | None = None,
) -> tuple[ImageFacts | Skip, bool]:
    """The verdict on a file from its first bytes; returns ``(verdict, fast)``.

    Parameters
    ----------
    head : bytes
        The file's first bytes (:data:`HEAD_BYTES`, or the whole file when smaller).
    size : int
        The file's full size in bytes.
    read_all : callable, optional
        Returns the file's first :data:`HANDOVER_BYTES` (all of it when smaller); called
        only when pydicom must take over and ``head`` is not the whole file.
    extras : Extras, optional
        Values an image gives beyond the fixed columns (:mod:`dcm_extractor.reading.extras`).
    known : callable, optional
        Given the image's StudyInstanceUID and SeriesInstanceUID, the ``extras`` keys the
        caller already holds for that series (:meth:`.SeriesTally.settled`): the fast
        reader leaves them out of ``extra`` instead of decoding them again.

    reader : callable, optional
        ``reader(offset, n)``: ``n`` bytes of the file at ``offset`` (the item headers of
        encapsulated pixel data that lie past what pydicom was given).

    ``fast`` is False when pydicom's full parse decided (counted in the run summary).
    """
    try:
        verdict = _fast(head, size, extras, known)
    except (HandOverError, struct.error, ValueError, IndexError, KeyError, TypeError):
        if len(head) >= size or read_all is None or not looks_like_dicom(head):
            data = head  # all of it, or no DICOM at all: nothing more to read
        else:
            data = read_all()  # type: ignore[operator]
        return inspect_dicom(data, extras, size=size, read_at=reader), False
    if extras is not None and extras.slow_columns and isinstance(verdict, ImageFacts):
        verdict.extra.update(_slow_columns(head, extras.slow_columns))
    return verdict, True


def _slow_columns(head: bytes, columns: tuple[ColumnSpec, ...]) -> dict[str, str]:
    """``--columns`` values the walk does not reach, from pydicom's parse of the header bytes
    (up to the pixel data); "" for any the bytes read do not hold."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = dcmread(io.BytesIO(head), force=True, stop_before_pixels=True)
            return {column.header: column.value(ds) for column in columns}
        except Exception:  # the header runs past the bytes read: keep what parses
            return {column.header: "" for column in columns}


def _fast(
    head: bytes,
    size: int,
    extras: Extras | None,
    known: Callable[[str, str], frozenset[str]] | None,
) -> ImageFacts | Skip:
    if not head or head[128:132] != b"DICM":
        raise HandOverError("no preamble")
    position, meta = walk_meta(head)
    syntax = meta.get(0x00020010, b"").rstrip(b"\x00 ").decode("ascii")
    if syntax in _HANDED_TO_PYDICOM:
        raise HandOverError(syntax)
    implicit = syntax == _IMPLICIT_LE
    found, pixel = _walk_dataset(head, position, implicit, size)
    if pixel is not None and pixel.length == UNDEFINED and len(head) < size:
        raise HandOverError("encapsulated pixel data in a partial read")
    meta_class = _ascii(meta.get(0x00020002, b""))
    extra: dict[str, str] = {}  # filled below: the facts hold this dict
    fields = _fields(head, found, pixel, meta_class, implicit, extra)
    if extras is not None:  # (an empty Extras reads nothing: no tags, no series)
        held = _NOTHING
        if known is not None:
            text = fields.text
            held = known(text.get("StudyInstanceUID", ""), text.get("SeriesInstanceUID", ""))
        codec = _single_codec(_value(head, found, 0x00080005))
        _fast_extras(extra, extras, head, found, codec, implicit, held)
        if extras.series:
            extra[TRANSFER_SYNTAX] = syntax
    return classify(fields, head, size)


_NOTHING: Final = frozenset[str]()


def _value(head: bytes, found: Found, tag: int) -> bytes:
    if tag not in found:
        return b""
    _, start, length = found[tag]
    return head[start : start + length]


_TEXT_VRS: Final = frozenset(
    {b"AE", b"AS", b"CS", b"DA", b"DS", b"DT", b"IS", b"LO", b"LT", b"SH", b"ST", b"TM",
     b"UC", b"UI", b"UR", b"UT"}
)  # fmt: skip
_SINGLE_VALUED: Final = frozenset({b"LT", b"ST", b"UT", b"UR"})  # a backslash is text there
_CHARSET_VRS: Final = frozenset({b"LO", b"LT", b"SH", b"ST", b"UC", b"UT"})
# Decoded extra values per tag: raw bytes -> (VR in the file, the codec when the bytes are
# not ASCII, text). A series' files repeat most values, so each is decoded once per process.
_DECODED: Final[dict[int, dict[bytes, tuple[bytes | None, str | None, str]]]] = {}
_DECODED_MOST: Final = 1_000  # per tag (~300 kB); a tag's memo starts afresh when this full
# Values that differ from image to image (positions, numbers, times, UIDs): not remembered.
_PER_IMAGE: Final = frozenset(
    {0x00080013, 0x00080018, 0x00080032, 0x00080033, 0x00200013, 0x00200032, 0x00201041}
)


def _fast_extras(
    values: dict[str, str],
    extras: Extras,
    head: bytes,
    found: Found,
    codec: str | None,
    implicit: bool,
    held: frozenset[str],
) -> None:
    """Put into ``values`` the extra values among the walked tags but ``held``, as
    :func:`~.columns.value_text` writes pydicom's values: plain text here, anything else
    decoded by pydicom."""
    hard: list[tuple[str, int]] = []
    for key, tag in extras.fast_tags_besides(held):
        where = found.get(tag)
        if where is None:
            values[key] = ""
            continue
        file_vr, start, length = where
        raw = head[start : start + length]
        memo = _DECODED.get(tag)
        hit = memo.get(raw) if memo is not None else None
        if hit is not None and hit[0] == file_vr and (hit[1] is None or hit[1] == codec):
            values[key] = hit[2]
            continue
        text = _plain_text(raw, file_vr or _dictionary_vr(tag), codec)
        if text is None:
            hard.append((key, tag))
            continue
        values[key] = text
        if tag not in _PER_IMAGE:
            if memo is None:
                memo = _DECODED[tag] = {}
            elif len(memo) >= _DECODED_MOST:
                memo.clear()
            memo[raw] = (file_vr, None if raw.isascii() else codec, text)
    if hard:
        values.update(_hard_extras(head, found, hard, implicit))


def _plain_text(raw: bytes, vr: bytes, codec: str | None) -> str | None:
    """A text value decoded as pydicom shows it, or None when pydicom must decode it
    (other VRs, escape sequences, bytes the character set cannot decode)."""
    if vr not in _TEXT_VRS or b"\x1b" in raw:
        return None
    if raw.isascii():
        text = raw.decode("ascii")
    elif codec is not None and vr in _CHARSET_VRS:
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            return None
    else:
        return None
    if text.isprintable():  # no control or separator characters but the space
        bare = text.strip(" ")
        if " " not in bare:  # nothing to strip around any backslash either
            return bare
    parts = [text] if vr in _SINGLE_VALUED else text.split("\\")
    return "\\".join(p.replace("\x00", "").strip() for p in parts)


def _hard_extras(
    head: bytes, found: Found, hard: list[tuple[str, int]], implicit: bool
) -> dict[str, str]:
    """Extra values pydicom decodes: other VRs, escape sequences, unknown character sets."""
    values: dict[str, str] = {}
    subset = Dataset()
    for tag in {0x00080005, *(tag for _, tag in hard)} & found.keys():
        file_vr, start, length = found[tag]
        key_tag = BaseTag(tag)
        raw_vr = None if file_vr is None else file_vr.decode("ascii")
        subset[key_tag] = RawDataElement(
            key_tag, raw_vr, length, head[start : start + length], start, implicit, True
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, tag in hard:
            try:
                values[key] = value_text(subset[tag].value)
            except Exception:  # a value pydicom cannot convert: shown as hex
                values[key] = value_text(_value(head, found, tag))
    return values


def _dictionary_vr(tag: int) -> bytes:
    try:
        return str(dictionary_VR(tag)).encode("ascii")
    except KeyError:
        return b"UN"


def _ascii(raw: bytes) -> str:
    """A plain ASCII value (UIDs, codes, numbers) as pydicom shows it."""
    return raw.decode("ascii").strip(" \x00").replace("\x00", "")


def _fields(
    head: bytes,
    found: Found,
    pixel: PixelInfo | None,
    meta_class: str,
    implicit: bool,
    extra: dict[str, str],
) -> HeaderFields:
    end = len(head)
    raw: dict[int, bytes] = {}
    for tag, (_, start, length) in found.items():
        if start + length > end:
            raise HandOverError("needed element beyond the bytes read")
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
            text[keyword] = _ascii(value).strip()  # as the full reader: no edge whitespace
        elif codec == "latin_1" and _is_utf8(value):
            hard.append(tag)  # labelled Latin-1 but UTF-8: the full reader says so
        elif codec is not None:  # one character set without code extensions
            try:
                text[keyword] = value.decode(codec).strip(" \x00").replace("\x00", "").strip()
            except UnicodeDecodeError:
                hard.append(tag)  # pydicom decides how to report and replace
        else:
            hard.append(tag)
    undecodable: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    if hard:
        decoded, undecodable, notes = _decode_by_pydicom(found, raw, hard, implicit)
        text.update(decoded)
    rows, columns = _us(raw, found, 0x00280010), _us(raw, found, 0x00280011)
    key = "" if text.get("SeriesInstanceUID") else series_key(raw, rows, columns)
    return HeaderFields(
        meta_class=meta_class,
        sop_class=_ascii(raw.get(0x00080016, b"")),
        sop_instance_uid=_ascii(raw.get(0x00080018, b"")),
        directory_records=0x00041220 in raw,
        text=text,
        undecodable=undecodable,
        charset_notes=notes,
        rows=rows,
        columns=columns,
        samples=_us(raw, found, 0x00280002) or 1,
        bits=_us(raw, found, 0x00280100),
        frames=_is(raw.get(0x00280008)),
        photometric=_ascii(raw.get(0x00280004, b"")),
        pixel=pixel,
        extra=extra,
        series_key=key,
    )


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode_by_pydicom(
    found: Found, raw: dict[int, bytes], hard: list[int], implicit: bool
) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...]]:
    """Text values the fast path leaves to pydicom, decoded in the file's character set."""
    subset = Dataset()
    for tag in (0x00080005, *hard):
        if tag in found:
            vr, start, length = found[tag]
            text_vr = None if vr is None else vr.decode("ascii")
            key = BaseTag(tag)
            subset[key] = RawDataElement(key, text_vr, length, raw[tag], start, implicit, True)
    decoded, undecodable, notes = text_values(subset)
    wanted = {keyword for keyword, tag in TEXT_TAGS if tag in hard}
    kept = tuple(n for n in notes if n.split(":", 1)[0] in wanted)
    return {k: v for k, v in decoded.items() if k in wanted}, undecodable, kept


@functools.lru_cache(maxsize=64)  # a data set repeats a handful of character sets
def _single_codec(charset: bytes) -> str | None:
    """The Python codec of a single, non-ISO-2022 SpecificCharacterSet, else None."""
    term = charset.decode("ascii", "replace").strip(" \x00")
    if not term or "\\" in term or term.startswith("ISO 2022") or term not in python_encoding:
        return None
    return python_encoding[term]


def _us(raw: dict[int, bytes], found: Found, tag: int) -> int | None:
    """An unsigned short as pydicom reads it; anything else goes to pydicom."""
    value = raw.get(tag)
    if value is None:
        return None
    if found[tag][0] not in (None, b"US") or len(value) != 2:
        raise HandOverError("unusual encoding of an image attribute")
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


def _walk_dataset(
    head: bytes, position: int, implicit: bool, size: int
) -> tuple[Found, PixelInfo | None]:
    """Needed elements as (VR, value start, length), and the pixel data (value not read).

    Explicit VR: the latest layout is followed if it fits this file, else the elements
    are walked one by one and the layout learns from them. Implicit VR: the careful walk.
    """
    found: Found = {}
    if implicit:
        return walk_general(head, position, True, size, found)
    layout = LAYOUTS.layout
    if layout is not None and layout.segments:
        stop = follow(layout, head, position, found)
        if stop is not None:
            LAYOUTS.hits += 1
            return finish(head, stop, size, found)
        LAYOUTS.misses += 1
        found.clear()
    records: list[Record] = []
    stop, stopped = walk_explicit(head, position, found, records)
    if not stopped:
        return walk_general(head, stop, False, size, found)
    LAYOUTS.remember(records)
    return finish(head, stop, size, found)
