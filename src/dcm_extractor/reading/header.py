"""One file's verdict: an image with its table values, or the reason it is not counted.

The few header fields the table needs are gathered into :class:`HeaderFields` (by
pydicom's full parse here, or by the fast reader in :mod:`dcm_extractor.reading.fastheader`),
and :func:`classify` decides what the file is:

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

import dataclasses
import io
import re
import struct
import warnings
from collections.abc import Callable
from typing import Any, Final

from pydicom import dcmread
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.filereader import _read_file_meta_info as read_file_meta_info_from
from pydicom.filereader import data_element_generator, read_preamble
from pydicom.multival import MultiValue

from .columns import without_escapes
from .extras import Extras, dataset_extras
from .facts import HeaderFields, ImageFacts, PixelInfo, Skip, SkipReason
from .sopclass import DICOMDIR_CLASS, non_image_kind

__all__ = [
    "TEXT_KEYWORDS",
    "HeaderFields",
    "ImageFacts",
    "PixelInfo",
    "Skip",
    "SkipReason",
    "classify",
    "inspect_dicom",
    "text_values",
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
TEXT_TAGS: Final = tuple((keyword, int(tag_for_keyword(keyword) or 0)) for keyword in TEXT_KEYWORDS)
_PIXEL_TAGS: Final = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # PixelData, Float, DoubleFloat
_ITEM: Final = struct.Struct("<HHI")
_UNDEFINED: Final = 0xFFFFFFFF


# What identifies a series without a SeriesInstanceUID: FrameOfReferenceUID, SeriesNumber,
# SeriesDescription, Modality, ImageOrientationPatient (and Rows, Columns).
SERIES_KEY_TAGS: Final = (0x00200052, 0x00200011, 0x0008103E, 0x00080060, 0x00200037)
_ORIENTATION: Final = 0x00200037


def series_key(raw: dict[int, bytes], rows: int | None, columns: int | None) -> str:
    """What identifies an image's series when it has no SeriesInstanceUID, from the raw
    values of :data:`SERIES_KEY_TAGS` (missing ones ``b""``): frame of reference, series
    number, description, modality, orientation (rounded to 1e-4) and matrix size.

    Examples
    --------
    >>> series_key({0x00200011: b"3 ", 0x00080060: b"CT"}, 512, 512)
    '|3||CT||512x512'
    """
    parts = []
    for tag in SERIES_KEY_TAGS:
        text = raw.get(tag, b"").strip(b" \x00").decode("latin-1")
        if tag == _ORIENTATION and text:
            try:
                numbers = [round(float(v), 4) + 0.0 for v in text.split("\\")]  # -0.0 -> 0.0
                text = ",".join(f"{v:g}" for v in numbers)
            except ValueError:
                pass
        parts.append(text)
    return "|".join([*parts, f"{rows or ''}x{columns or ''}"])


def inspect_dicom(
    data: bytes,
    extras: Extras | None = None,
    *,
    size: int | None = None,
    read_at: Callable[[int, int], bytes] | None = None,
) -> ImageFacts | Skip:
    """Classify the bytes of one file (or zip member) by pydicom's full parse; ``extras``
    says which values beyond the fixed columns an image gives.

    ``data`` may be the file's first bytes only (``size`` is then the whole file's): the
    pixel data's position and length, set against ``size``, decide whether it is whole,
    and ``read_at(offset, n)`` reads the item headers of encapsulated pixel data past
    ``data``.
    """
    whole = size is None or len(data) >= size
    size = len(data) if size is None else size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's complaints about odd values; ours are verdicts
        if not data:
            return Skip("empty", "empty file")
        if not looks_like_dicom(data):
            return Skip("not_dicom", "no DICOM preamble or data set at the start")
        try:
            ds: Dataset
            if whole:
                ds = dcmread(io.BytesIO(data), defer_size=1024, force=True)
                fields = _fields_of(ds, extras)  # elements converted here: damage shows here too
            else:  # the first bytes of a larger file: the header, then where the pixels are
                ds, pixel = _prefix_dataset(data)
                fields = dataclasses.replace(_fields_of(ds, extras), pixel=pixel)
        except Exception as err:
            kind = None if whole else _non_image_by_meta(data)
            if kind is not None:  # a large RT structure set, say, past the bytes read
                return Skip("non_image", kind)
            return Skip("unreadable", parse_failure(err))
        verdict = classify(fields, data, size, read_at)
        if whole and isinstance(verdict, Skip) and verdict.reason == "no_pixel_data":
            return _header_only_or_cut(verdict, fields, data, ds, extras)
        return verdict


def _header_only_or_cut(
    verdict: Skip, fields: HeaderFields, data: bytes, ds: Dataset, extras: Extras | None
) -> Skip:
    """A whole file without pixel data: a header-only copy, or a file cut short."""
    if fields.pixel is None:  # pydicom drops a data set cut inside encapsulated pixels
        recut = _cut_pixel_verdict(data, extras)
        if recut is not None:
            return recut
    if _ends_inside_header(data, ds):  # not a header-only copy: cut
        detail = "the file ends inside its header, before any pixel data"
        return Skip("truncated", detail, verdict.facts)
    return verdict


def _cut_pixel_verdict(data: bytes, extras: Extras | None) -> Skip | None:
    """The verdict on a whole file whose pixel data pydicom's full parse lost: pydicom
    returns an empty data set for a file that ends inside encapsulated pixel data. The
    header up to the pixel data, and where that starts, decide instead."""
    try:
        ds, pixel = _prefix_dataset(data)
        if pixel is None:
            return None
        fields = dataclasses.replace(_fields_of(ds, extras), pixel=pixel)
    except Exception:  # no readable header either: the first verdict stands
        return None
    verdict = classify(fields, data, len(data))
    return verdict if isinstance(verdict, Skip) and verdict.reason == "truncated" else None


_LONG_VRS: Final = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"})


def _prefix_dataset(data: bytes) -> tuple[Dataset, PixelInfo | None]:
    """The data set up to its pixel data, from a file's first bytes, and where the pixel
    data element's value starts and how long it says it is (never read: it may lie past
    the bytes given)."""
    handle = io.BytesIO(_without_zero_tail(data))
    ds = dcmread(handle, defer_size=1024, force=True, stop_before_pixels=True)
    at = handle.tell()  # pydicom rewinds to the start of the pixel data element
    meta = getattr(ds, "file_meta", None)
    syntax = None if meta is None else meta.get("TransferSyntaxUID")
    implicit, little = ds.original_encoding
    if at + 8 > len(data) or implicit is None or (syntax is not None and syntax.is_deflated):
        return ds, None
    endian = "<" if little else ">"
    group, element = struct.unpack_from(f"{endian}HH", data, at)
    if (group << 16 | element) not in _PIXEL_TAGS:
        return ds, None
    if implicit:
        return ds, PixelInfo(struct.unpack_from(f"{endian}I", data, at + 4)[0], at + 8)
    if data[at + 4 : at + 6] in _LONG_VRS:
        if at + 12 > len(data):
            return ds, None
        return ds, PixelInfo(struct.unpack_from(f"{endian}I", data, at + 8)[0], at + 12)
    return ds, PixelInfo(struct.unpack_from(f"{endian}H", data, at + 6)[0], at + 8)


_ZERO_TAIL: Final = 2**20  # a run of zero bytes this long ending the bytes read


def _without_zero_tail(data: bytes) -> bytes:
    """A file's first bytes without a long run of zero bytes at their end (kept to a whole
    8 bytes past the last other byte).

    Such a run holds pixel values (the parse stops before the pixel data anyway) or no
    data set at all: a preallocated or zero-filled file, which pydicom would read as
    millions of empty (0000,0000) elements (9 s for 32 MiB). Element headers are never
    all zero, so no element before the run is lost.
    """
    if data[-_ZERO_TAIL:].count(0) < _ZERO_TAIL:  # no such run (the usual case: cheap)
        return data
    end = len(data.rstrip(b"\x00"))
    return data[: end + 16 - end % 8]


def _non_image_by_meta(data: bytes) -> str | None:
    """What kind of non-image object the file meta says a file is (a file too large for
    its data set to be parsed from the bytes read), or None."""
    try:
        handle = io.BytesIO(data)
        read_preamble(handle, False)
        meta = read_file_meta_info_from(handle)
    except Exception:  # no file meta, or a damaged one
        return None
    sop_class = str(meta.get("MediaStorageSOPClassUID", "") or "")
    kind = non_image_kind(sop_class)
    return None if kind is None else f"{kind} ({shown_uid(sop_class)})"


def _ends_inside_header(data: bytes, ds: Dataset) -> bool:
    """Whether the data set's bytes stop in the middle of an element (pydicom's parse
    stops there silently): the last element shorter than its length, or bytes left over
    that are no whole element."""
    walked = _walk_to_end(data, ds)
    if walked is None:
        return False
    cut, start, last, at = walked
    if cut or last is None:  # ran out; or cut inside the file meta, or bytes that are no element
        return cut or len(data) != start
    if not isinstance(last.value, bytes):  # a sequence, read to its end: the rest follows
        return at < len(data)
    value = last.value
    declared = getattr(last, "length", len(value))
    if declared == _UNDEFINED:
        return False  # read to its delimiter (pydicom checks it is there)
    if len(value) < declared:
        return True  # the last element is shorter than its length
    end = getattr(last, "value_tell", 0) + len(value)
    return end < len(data)  # bytes after it too few for an element: cut mid-header


def _walk_to_end(data: bytes, ds: Dataset) -> tuple[bool, int, Any, int] | None:
    """Walk the data set's elements: ``(ran out inside an element, where the data set
    starts, the last element, where the walk stopped)``; None when the file meta or an
    element is damaged (no verdict)."""
    try:
        meta = getattr(ds, "file_meta", None)
        syntax = None if meta is None else meta.get("TransferSyntaxUID")
        length = None if meta is None else meta.get("FileMetaInformationGroupLength")
        if syntax is None or length is None or data[128:132] != b"DICM" or syntax.is_deflated:
            return None
        start = 132 + 12 + int(length)
        handle = io.BytesIO(data)
        handle.seek(start)
        last = None
        try:
            for element in data_element_generator(
                handle, syntax.is_implicit_VR, syntax.is_little_endian
            ):
                last = element
        except EOFError:  # the data ran out inside an element: cut
            return True, start, last, handle.tell()
    except Exception:  # a damaged meta or element (not a transfer syntax ...): no verdict
        return None
    return False, start, last, handle.tell()


_TAG_IN_MESSAGE: Final = re.compile(r"\(([0-9A-Fa-f]{4}),\s*([0-9A-Fa-f]{4})\)")


def parse_failure(err: Exception) -> str:
    """Why pydicom could not read a file, free of its contents.

    pydicom's messages may quote the raw bytes of an element (a patient's name, say): only
    the kind of error and the tag it names are kept.
    """
    tag = _TAG_IN_MESSAGE.search(str(err))
    where = f" at tag ({tag.group(1).upper()},{tag.group(2).upper()})" if tag else ""
    return f"pydicom cannot parse it ({type(err).__name__}{where})"


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
    problem = _pixel_problem(fields, data, size, read_at)
    if problem is not None:
        return Skip("truncated", problem, facts)
    return facts


def _fields_of(ds: Dataset, extras: Extras | None = None) -> HeaderFields:
    """The verdict's fields from a data set pydicom parsed in full."""
    meta = getattr(ds, "file_meta", Dataset())
    text, undecodable, notes = text_values(ds)
    pixel = None
    element = next((ds.get_item(t, keep_deferred=True) for t in _PIXEL_TAGS if t in ds), None)
    if element is not None:
        tell = getattr(element, "value_tell", None)
        syntax = meta.get("TransferSyntaxUID")
        if syntax is not None and syntax.is_deflated:
            tell = None  # offsets point into the inflated stream, not into the file
        value = getattr(element, "value", None)
        pixel = PixelInfo(getattr(element, "length", None), tell, len(value or b""))
    rows, columns = _int(ds.get("Rows")), _int(ds.get("Columns"))
    key = ""
    if not text.get("SeriesInstanceUID"):
        key = series_key({t: _element_bytes(ds, t) for t in SERIES_KEY_TAGS}, rows, columns)
    return HeaderFields(
        meta_class=str(meta.get("MediaStorageSOPClassUID", "")),
        sop_class=str(ds.get("SOPClassUID", "") or ""),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "") or ""),
        directory_records=0x00041220 in ds,
        text=text,
        undecodable=undecodable,
        charset_notes=notes,
        rows=rows,
        columns=columns,
        samples=_int(ds.get("SamplesPerPixel", 1) or 1),
        bits=_int(ds.get("BitsAllocated")),
        frames=_int(ds.get("NumberOfFrames", 1) or 1),
        photometric=str(ds.get("PhotometricInterpretation", "") or ""),
        pixel=pixel,
        extra=dataset_extras(ds, extras) if extras else {},
        series_key=key,
    )


def _element_bytes(ds: Dataset, tag: int) -> bytes:
    """An element's value as the file holds it (as text when pydicom converted it already)."""
    raw = _raw_bytes(ds, tag)
    if raw is not None:
        return raw
    value = ds.get(tag)
    return _as_text(value.value).encode("utf-8") if value is not None and value.value else b""


def looks_like_dicom(data: bytes) -> bool:
    """A preamble with ``DICM``, or (old files without one) a group 0002/0008 tag first."""
    if data[128:132] == b"DICM":
        return True
    if len(data) < 8:
        return False
    little, big = struct.unpack_from("<H", data)[0], struct.unpack_from(">H", data)[0]
    return little in (0x0002, 0x0008) or big in (0x0002, 0x0008)  # no preamble: old files


def _pixel_problem(
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
        expected = _expected_bytes(fields)
        have = length if length not in (None, _UNDEFINED) else pixel.read_size
        if expected and have < expected:
            return f"pixel data has {have} bytes, the image needs {expected}"
        return None
    if length == _UNDEFINED:
        return _encapsulated_problem(data, tell, size, read_at)
    if tell + length > size:
        return f"file ends {tell + length - size} bytes inside the pixel data"
    expected = _expected_bytes(fields)
    if expected and length < expected:
        return f"pixel data has {length} bytes, the image needs {expected}"
    return None


def _encapsulated_problem(
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
        if (group, element) != (0xFFFE, 0xE000) or length == _UNDEFINED:
            return f"unexpected tag ({group:04X},{element:04X}) inside encapsulated pixel data"
        at += 8 + length
    return "file ends inside the encapsulated pixel data"


def _expected_bytes(fields: HeaderFields) -> int:
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


def text_values(ds: Dataset) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...]]:
    """The text columns decoded in the file's character set; those that failed; and notes
    on values whose bytes are not in the declared character set (see :func:`_repaired`)."""
    values: dict[str, str] = {}
    undecodable = []
    notes = []
    term = _charset_term(ds)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for keyword, tag in TEXT_TAGS:
            seen = len(caught)
            failed = False
            raw = _raw_bytes(ds, tag)
            repaired = _repaired(raw, term) if raw else None
            if repaired is not None:
                text, note = repaired
                values[keyword] = text.replace("\x00", "").strip()
                notes.append(f"{keyword}: {note}")
                continue
            try:
                element = ds.get(tag)
                value = None if element is None else element.value
                text = "" if value is None else without_escapes(_as_text(value))
            except (ValueError, LookupError, UnicodeError):
                text, failed = "", True
            if failed or any(_is_decode_warning(w) for w in caught[seen:]):
                undecodable.append(keyword)
            values[keyword] = text.replace("\x00", "").strip()
    return values, tuple(undecodable), tuple(notes)


def _plausible(text: str) -> float:
    """The share of characters a name plausibly holds: ASCII, Latin letters, CJK, kana,
    Hangul; on a tie UTF-8 wins (valid multi-byte UTF-8 rarely happens by chance)."""
    good = sum(
        c.isascii()
        or "\u00c0" <= c <= "\u024f"
        or "\u3000" <= c <= "\u30ff"
        or "\u4e00" <= c <= "\u9fff"
        or "\uac00" <= c <= "\ud7af"
        or "\uff00" <= c <= "\uffef"
        for c in text
    )
    return good / max(1, len(text))


def _charset_term(ds: Dataset) -> str:
    raw = _raw_bytes(ds, 0x00080005)
    if raw is not None:
        return raw.decode("ascii", "replace").strip(" \x00")
    value = ds.get("SpecificCharacterSet")
    return "\\".join(value) if isinstance(value, MultiValue | list) else str(value or "")


def _raw_bytes(ds: Dataset, tag: int) -> bytes | None:
    """An element's undecoded bytes, when pydicom has not converted it yet."""
    if tag not in ds:
        return None
    element = ds.get_item(tag)
    value = getattr(element, "value", None)
    return value if isinstance(value, bytes) else None


def _repaired(raw: bytes, term: str) -> tuple[str, str] | None:
    """A text value whose bytes cannot be in its declared character set, read as what they
    evidently are, with a note; None when the label fits (pydicom decodes it).

    * No SpecificCharacterSet (the default repertoire is ASCII) but other bytes: UTF-8 when
      they are valid UTF-8, else GB18030 when valid (Chinese exports often omit the term).
    * ISO_IR 100 (Latin-1) holding valid multi-byte UTF-8: read as UTF-8 (as Latin-1 it
      would be mojibake such as "å¼ ä¸‰").
    """
    if raw.isascii() or b"\x1b" in raw:
        return None
    if not term or term == "ISO_IR 6":
        readings: list[tuple[float, int, str, str]] = []
        for codec, name in (("utf-8", "UTF-8"), ("gb18030", "GB18030")):
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError:
                continue
            readings.append((_plausible(text), -len(readings), text, name))
        if not readings:
            return None
        _, _, text, name = max(readings)  # GBK bytes can be valid UTF-8 (住院: "סԺ")
        return text, f"no SpecificCharacterSet, not ASCII: read as {name}"
    if term == "ISO_IR 100":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return text, "labelled ISO_IR 100 (Latin-1) but UTF-8: read as UTF-8"
    return None


def _as_text(value: Any) -> str:
    """A value as DICOM writes it: several values joined by a backslash (``A1\\B2``)."""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(part).strip() for part in value)
    return str(value).strip()


def _is_decode_warning(record: Any) -> bool:
    message = str(getattr(record, "message", ""))
    return "decode" in message.lower() or "character set" in message.lower()


def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None
