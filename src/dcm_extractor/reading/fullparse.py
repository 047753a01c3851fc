"""pydicom's full parse of a file: the reader that decides whatever the fast reader
(:mod:`.fastheader`) hands over, and the reference the fast reader is tested against.

Beyond gathering the header fields (:func:`fields_of`; character sets by the rules of
:mod:`.charset`), it tells a whole header-only object from a file cut short: pydicom stops
silently where a file ends inside an element, and returns an empty data set for a file
that ends inside encapsulated pixel data; :func:`inspect_dicom` checks both.
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
from pydicom.dataset import Dataset
from pydicom.filereader import _read_file_meta_info as read_file_meta_info_from
from pydicom.filereader import data_element_generator, read_preamble
from pydicom.multival import MultiValue

from .charset import column_texts, is_decode_warning, is_text_vr, term_of, without_escapes
from .extras import Extras, dataset_extras
from .facts import (
    SERIES_KEY_TAGS,
    TEXT_TAGS,
    HeaderFields,
    ImageFacts,
    PixelInfo,
    Skip,
    series_key,
)
from .sopclass import non_image_kind
from .verdict import (
    UNDEFINED,
    classify,
    container_kind,
    looks_like_dicom,
    other_kind,
    shown_uid,
)

__all__ = ["fields_of", "inspect_dicom", "parse_failure", "text_values"]

_PIXEL_TAGS: Final = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # PixelData, Float, DoubleFloat


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
            return Skip("not_dicom", _not_dicom_detail(data))
        try:
            ds: Dataset
            if whole:
                ds = dcmread(io.BytesIO(data), defer_size=1024, force=True)
                fields = fields_of(ds, extras)  # elements converted here: damage shows here too
            else:  # the first bytes of a larger file: the header, then where the pixels are
                ds, pixel = _prefix_dataset(data)
                fields = dataclasses.replace(fields_of(ds, extras), pixel=pixel)
        except Exception as err:
            kind = None if whole else _non_image_by_meta(data)
            if kind is not None:  # a large RT structure set, say, past the bytes read
                return Skip("non_image", kind)
            return Skip("unreadable", parse_failure(err))
        verdict = classify(fields, data, size, read_at)
        if whole and isinstance(verdict, Skip) and verdict.reason == "no_pixel_data":
            return _header_only_or_cut(verdict, fields, data, ds, extras)
        return verdict


def _not_dicom_detail(data: bytes) -> str:
    """Why bytes are not DICOM, naming an archive the images may be inside."""
    kind = container_kind(data)
    if kind is None:
        other = other_kind(data)
        if other is not None:
            return f"{other}, not DICOM"
        return "no DICOM preamble or data set at the start"
    if kind.startswith("a zip"):
        return f"{kind}: not opened (dcm-extract reads the .zip files of a case folder)"
    return f"{kind}: not opened (dcm-extract reads folders and .zip files); unpack it first"


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
        fields = dataclasses.replace(fields_of(ds, extras), pixel=pixel)
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
    if declared == UNDEFINED:
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


def fields_of(ds: Dataset, extras: Extras | None = None) -> HeaderFields:
    """The verdict's fields from a data set pydicom parsed."""
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


def text_values(ds: Dataset) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...]]:
    """The text columns decoded in the file's character set (:func:`.charset.column_texts`
    first, pydicom for the rest); those that failed; and notes on values whose bytes are
    not in the declared character set."""
    raw = {}
    for _, tag in TEXT_TAGS:
        value = _raw_bytes(ds, tag) if _text_vr(ds, tag) else None  # else pydicom judges
        if value is not None:
            raw[tag] = value
    values, notes, _ = column_texts(raw, _charset_term(ds))
    undecodable = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for keyword, tag in TEXT_TAGS:
            if keyword in values:
                continue
            seen = len(caught)
            failed = False
            try:
                element = ds.get(tag)
                value = None if element is None else element.value
                text = "" if value is None else without_escapes(_as_text(value))
            except (ValueError, LookupError, UnicodeError):
                text, failed = "", True
            if failed or any(is_decode_warning(w) for w in caught[seen:]):
                undecodable.append(keyword)
            values[keyword] = text.replace("\x00", "").strip()
    ordered = {keyword: values[keyword] for keyword, _ in TEXT_TAGS}
    return ordered, tuple(undecodable), tuple(notes)


def _charset_term(ds: Dataset) -> str:
    raw = _raw_bytes(ds, 0x00080005)
    if raw is not None:
        return term_of(raw)
    value = ds.get("SpecificCharacterSet")
    return "\\".join(value) if isinstance(value, MultiValue | list) else str(value or "")


def _text_vr(ds: Dataset, tag: int) -> bool:
    """Whether the element's VR, as the file spells it, is one :func:`.charset.column_text`
    reads (rule 0): a damaged VR is pydicom's to judge."""
    vr = getattr(ds.get_item(tag), "VR", None) if tag in ds else None
    return is_text_vr(None if vr is None else str(vr))


def _raw_bytes(ds: Dataset, tag: int) -> bytes | None:
    """An element's undecoded bytes, when pydicom has not converted it yet."""
    if tag not in ds:
        return None
    element = ds.get_item(tag)
    value = getattr(element, "value", None)
    return value if isinstance(value, bytes) else None


def _as_text(value: Any) -> str:
    """A value as DICOM writes it: several values joined by a backslash (``A1\\B2``)."""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(part).strip() for part in value)
    return str(value).strip()


def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None
