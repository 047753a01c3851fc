"""The fast header reader: walk the tags of a file's first bytes, let pydicom decode values.

pydicom's full parse builds every element of a header (often 200 with private groups);
the table needs about 20. This walker steps over elements by their lengths alone,
keeps the raw bytes of the needed ones and decodes them by the rules of :mod:`.charset`
(which pydicom's parse applies too), and gives pydicom what those rules leave to it.

It hands a file over to pydicom's full parse only for the kinds of input
:data:`~.tagwalk.HANDOVER_REASONS` lists (no preamble, deflated or big-endian syntaxes,
a header past the bytes read, a malformed header ...); :meth:`FastReader.inspect` says
which, and the run summary counts them. Any other exception out of the fast path is a
bug: in strict mode (``DCM_EXTRACT_STRICT=1``; the test suite sets it) it is raised as
:class:`FastReaderBug`, otherwise the file goes to pydicom and the hand-over is counted
as ``fast_reader_error`` and logged, so a bug costs speed, never a wrong verdict.

The walking itself is in :mod:`.tagwalk`; :mod:`.layout` lets the files of a series
skip most of it. A :class:`FastReader` owns what is remembered between files (the latest
layout, decoded values), each with a size bound.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import warnings
from collections.abc import Callable
from itertools import repeat
from typing import Final

from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from .charset import (
    COLUMN_VRS,
    TEXT_VRS,
    column_texts,
    plain_ascii,
    plain_value,
    single_codec,
    term_of,
)
from .columns import ColumnSpec, value_text
from .extras import TRANSFER_SYNTAX, Extras, FastTags, frame_geometry
from .facts import TEXT_TAGS, HeaderFields, ImageFacts, PixelInfo, Skip, series_key
from .fullparse import inspect_dicom, text_values
from .layout import Layout, LayoutCache, follow
from .tagwalk import (
    HANDOVER_REASONS,
    UNDEFINED,
    Found,
    HandOverError,
    Record,
    finish,
    walk_explicit,
    walk_general,
    walk_meta,
)
from .verdict import classify, looks_like_dicom

__all__ = [
    "BUG",
    "HANDOVER_BYTES",
    "HANDOVER_REASONS",
    "HEAD_BYTES",
    "STRICT_VARIABLE",
    "DecodedValues",
    "FastReader",
    "FastReaderBug",
    "inspect_head",
    "read_at",
    "read_head",
]

log = logging.getLogger(__name__)

HEAD_BYTES: Final = 16 * 1024  # enough for the header of nearly every CT/MR file
HANDOVER_BYTES: Final = 32 * 2**20
"""The most pydicom's parse is given of one file or member: the header (up to the pixel
data, whose length and position decide its completeness without reading it) lies within
it in every real file; a file that is no DICOM, or a "header" of 4 GB, costs at most this
much memory and the time to parse it (docs/dcm-extractor.md, "Bounded cost per file")."""

_IMPLICIT_LE: Final = "1.2.840.10008.1.2"
_HANDED_TO_PYDICOM: Final = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}  # deflate, BE
_US: Final = struct.Struct("<H")
STRICT_VARIABLE: Final = "DCM_EXTRACT_STRICT"
"""Set to ``1``: a bug in the fast reader raises :class:`FastReaderBug` (the tests set it)."""
BUG: Final = "fast_reader_error"
"""The hand-over reason counted when the fast reader failed in a way it does not document."""


class FastReaderBug(AssertionError):  # noqa: N818 (a bug of ours, not an input error)
    """The fast reader failed on a file in a way :data:`~.tagwalk.HANDOVER_REASONS` does
    not list (strict mode only). An AssertionError, not a :class:`DcmExtractorError`:
    no per-file handler may take it for a damaged file."""


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


class DecodedValues:
    """Extra values decoded before, per tag: raw bytes -> (VR in the file, the codec when
    the bytes are not ASCII, text). A series' files repeat most values, so each is decoded
    once; at most ``most`` values per tag (a tag's memo starts afresh when full), for the
    tags the run's ``--columns`` and series attributes name."""

    def __init__(self, most: int = 1_000) -> None:
        self.most = most
        self.by_tag: dict[int, dict[bytes, tuple[bytes | None, str | None, str]]] = {}

    def get(self, tag: int, raw: bytes, vr: bytes | None, codec: str | None) -> str | None:
        memo = self.by_tag.get(tag)
        hit = memo.get(raw) if memo is not None else None
        if hit is not None and hit[0] == vr and (hit[1] is None or hit[1] == codec):
            return hit[2]
        return None

    def put(self, tag: int, raw: bytes, vr: bytes | None, codec: str | None, text: str) -> None:
        memo = self.by_tag.get(tag)
        if memo is None:
            memo = self.by_tag[tag] = {}
        elif len(memo) >= self.most:
            memo.clear()
        memo[raw] = (vr, None if raw.isascii() else codec, text)


class FastReader:
    """The fast header reader, with what it remembers between files: the latest header
    layout (:class:`~.layout.LayoutCache`) and decoded extra values
    (:class:`DecodedValues`), each bounded.

    One reader per case scan (:func:`~dcm_extractor.sources.cases.scan_case`): no state
    crosses from one case to another, or between the threads of a Dask worker.

    Parameters
    ----------
    strict : bool, optional
        Raise :class:`FastReaderBug` for a failure the hand-over reasons do not list;
        default: whether ``$DCM_EXTRACT_STRICT`` is ``1``.
    """

    def __init__(self, *, strict: bool | None = None) -> None:
        self.layouts = LayoutCache()
        self.decoded = DecodedValues()
        self._followed: Layout | None = None  # the layout the latest file followed
        self._vrs_checked: Layout | None = None  # a layout whose text columns' VRs are text
        # the extra values a series' files give (_fast_extras): for the latest layout
        # followed, Extras and series attributes held, the tags wanted and whether all
        # of them the file holds are in text VRs
        self._wanted_for: tuple[Layout, Extras, frozenset[str]] | None = None
        self._wanted = FastTags(())
        self._text_vrs = False
        self.strict = os.environ.get(STRICT_VARIABLE) == "1" if strict is None else strict
        self.bugs = 0

    def inspect(
        self,
        head: bytes,
        size: int,
        read_all: Callable[[], bytes] | None = None,
        extras: Extras | None = None,
        known: Callable[[str, str], frozenset[str]] | None = None,
        reader: Callable[[int, int], bytes] | None = None,
    ) -> tuple[ImageFacts | Skip, str | None]:
        """The verdict on a file from its first bytes; returns ``(verdict, handed_over)``.

        Parameters
        ----------
        head : bytes
            The file's first bytes (:data:`HEAD_BYTES`, or the whole file when smaller).
        size : int
            The file's full size in bytes.
        read_all : callable, optional
            Returns the file's first :data:`HANDOVER_BYTES` (all of it when smaller);
            called only when pydicom must take over and ``head`` is not the whole file.
        extras : Extras, optional
            Values an image gives beyond the fixed columns (:mod:`.extras`).
        known : callable, optional
            Given the image's StudyInstanceUID and SeriesInstanceUID, the ``extras`` keys
            the caller already holds for that series (:meth:`.SeriesTally.settled`): they
            are left out of ``extra`` instead of being decoded again.
        reader : callable, optional
            ``reader(offset, n)``: ``n`` bytes of the file at ``offset`` (the item headers
            of encapsulated pixel data that lie past what pydicom was given).

        Returns
        -------
        verdict : ImageFacts or Skip
        handed_over : str or None
            None when the fast path decided; else why pydicom's full parse did: a key of
            :data:`~.tagwalk.HANDOVER_REASONS`, or :data:`BUG`.

        Raises
        ------
        FastReaderBug
            In strict mode, for a failure that is not a documented hand-over.
        """
        try:
            verdict = self._fast(head, size, extras, known)
        except HandOverError as err:
            reason = err.reason
            if reason == "beyond_head" and len(head) >= size:
                reason = "ends_in_header"  # nothing past the bytes read: the file ends there
            if reason not in HANDOVER_REASONS:
                return self._bug(err, head, size, read_all, extras, reader)
        except Exception as err:
            return self._bug(err, head, size, read_all, extras, reader)
        else:
            if extras is not None and isinstance(verdict, ImageFacts):
                if extras.slow_columns:
                    verdict.extra.update(_slow_columns(head, extras.slow_columns))
                if extras.series and verdict.frames > 1 and not verdict.extra.get(_POSITION):
                    verdict.extra.update(_frame_geometry(head))
            return verdict, None
        return _by_pydicom(head, size, read_all, extras, reader), reason

    def _bug(
        self,
        err: Exception,
        head: bytes,
        size: int,
        read_all: Callable[[], bytes] | None,
        extras: Extras | None,
        reader: Callable[[int, int], bytes] | None,
    ) -> tuple[ImageFacts | Skip, str]:
        """A failure no hand-over reason covers: raised in strict mode, else pydicom's
        verdict, counted as :data:`BUG` (and logged once per reader)."""
        if self.strict:
            raise FastReaderBug(f"the fast reader failed with {type(err).__name__}: {err}") from err
        if not self.bugs:
            log.warning(
                "the fast header reader failed (%s): pydicom read the file; a bug, "
                "counted as %s in the run summary",
                type(err).__name__,
                BUG,
            )
        self.bugs += 1
        return _by_pydicom(head, size, read_all, extras, reader), BUG

    def _fast(
        self,
        head: bytes,
        size: int,
        extras: Extras | None,
        known: Callable[[str, str], frozenset[str]] | None,
    ) -> ImageFacts | Skip:
        if not head or head[128:132] != b"DICM":
            raise HandOverError("no_preamble")
        position, meta = walk_meta(head)
        syntax = _ascii(meta.get(0x00020010, b""))
        if syntax in _HANDED_TO_PYDICOM:
            raise HandOverError("transfer_syntax", syntax)
        implicit = syntax == _IMPLICIT_LE
        found, pixel = self._walk_dataset(head, position, implicit, size)
        followed = self._followed
        if followed is None or followed is not self._vrs_checked:
            _check_text_vrs(found)
            self._vrs_checked = followed  # its files have these very VRs (layout.follow)
        if pixel is not None and pixel.length == UNDEFINED and len(head) < size:
            raise HandOverError("encapsulated")
        meta_class = _ascii(meta.get(0x00020002, b""))
        extra: dict[str, str] = {}  # filled below: the facts hold this dict
        raw = _raw_values(head, found)
        fields = _fields(raw, found, pixel, meta_class, implicit, extra)
        if extras is not None:  # (an empty Extras reads nothing: no tags, no series)
            held = _NOTHING
            if known is not None:
                text = fields.text
                held = known(text.get("StudyInstanceUID", ""), text.get("SeriesInstanceUID", ""))
            self._fast_extras(extra, extras, raw, found, implicit, held)
            if extras.syntax:
                extra[TRANSFER_SYNTAX] = syntax
        verdict = classify(fields, head, size)
        if isinstance(verdict, Skip) and verdict.reason == "no_pixel_data":
            if pixel is None:
                raise HandOverError("no_pixel_data")
            if fields.rows is None or fields.columns is None:  # pixels no image can be made of
                raise HandOverError("malformed", "pixel data without Rows or Columns")
        return verdict

    def _fast_extras(
        self,
        values: dict[str, str],
        extras: Extras,
        raw: dict[int, bytes],
        found: Found,
        implicit: bool,
        held: frozenset[str],
    ) -> None:
        """Put into ``values`` the extra values among the walked tags but ``held``, as
        :func:`~.columns.value_text` writes pydicom's values: plain text by
        :func:`.charset.plain_value`, anything else decoded by pydicom.

        When every value is ASCII text in a text VR the file names (nearly every image:
        UIDs, numbers, codes, dates) they are taken in one pass
        (:func:`.charset.plain_ascii`); else each such value is taken inline, as
        :func:`.charset.plain_value` would, and the rest goes through it with the file's
        character set (read once, when first needed) and the memo of values decoded
        before."""
        followed = self._followed
        if followed is not None and (followed, extras, held) == self._wanted_for:
            wanted, text_vrs = self._wanted, self._text_vrs
        else:
            wanted = extras.fast_wanted(held)
            text_vrs = all(
                where[0] in TEXT_VRS for where in map(found.get, wanted.tags) if where is not None
            )
            if followed is not None:  # the files that follow it have these VRs (layout.py)
                self._wanted_for, self._wanted, self._text_vrs = (
                    (followed, extras, held),
                    wanted,
                    text_vrs,
                )
        if text_vrs:  # (absent values count as text)
            plain = plain_ascii(list(map(raw.get, wanted.tags, repeat(b""))))
            if plain is not None:  # (nearly every image: one pass over all the values)
                values.update(zip(wanted.keys, plain, strict=True))
                return
        self._each_extra(values, wanted, raw, found, implicit)

    def _each_extra(
        self,
        values: dict[str, str],
        wanted: FastTags,
        raw: dict[int, bytes],
        found: Found,
        implicit: bool,
    ) -> None:
        """:meth:`_fast_extras` one value at a time."""
        hard: list[tuple[str, int]] = []
        decoded = self.decoded
        codec: str | None = None
        codec_read = False
        for key, tag in wanted.pairs:
            value = raw.get(tag)
            if value is None:
                values[key] = ""
                continue
            file_vr = found[tag][0]
            if file_vr in TEXT_VRS and value.isascii():  # plain_value's first case, inline
                text = value.decode("ascii")
                if text[-1:] == "\x00":  # a UID's padding
                    text = text[:-1]
                if text.isprintable():
                    bare = text.strip(" ")
                    if " " not in bare:
                        values[key] = bare
                        continue
            if not codec_read:
                codec, codec_read = single_codec(term_of(raw.get(0x00080005, b""))), True
            memo = decoded.get(tag, value, file_vr, codec)
            if memo is not None:
                values[key] = memo
                continue
            decoded_text = plain_value(value, file_vr or _dictionary_vr(tag), codec)
            if decoded_text is None:
                hard.append((key, tag))
                continue
            values[key] = decoded_text
            if tag not in _PER_IMAGE:  # (never the same twice: not kept)
                decoded.put(tag, value, file_vr, codec, decoded_text)
        if hard:
            values.update(_hard_extras(raw, found, hard, implicit))

    def _walk_dataset(
        self, head: bytes, position: int, implicit: bool, size: int
    ) -> tuple[Found, PixelInfo | None]:
        """Needed elements as (VR, value start, length), and the pixel data (value not read).

        Explicit VR: the latest layout is followed if it fits this file, else the elements
        are walked one by one and the layout learns from them. Implicit VR: the careful walk.
        """
        found: Found = {}
        self._followed = None
        if implicit:
            return walk_general(head, position, True, size, found)
        layouts = self.layouts
        layout = layouts.layout
        if layout is not None and layout.segments:
            stop = follow(layout, head, position, found)
            if stop is not None:
                layouts.hits += 1
                self._followed = layout
                return finish(head, stop, size, found)
            layouts.misses += 1
            found.clear()
        records: list[Record] = []
        stop, stopped = walk_explicit(head, position, found, records)
        if not stopped:
            return walk_general(head, stop, False, size, found)
        layouts.remember(records)
        return finish(head, stop, size, found)


def _by_pydicom(
    head: bytes,
    size: int,
    read_all: Callable[[], bytes] | None,
    extras: Extras | None,
    reader: Callable[[int, int], bytes] | None,
) -> ImageFacts | Skip:
    """pydicom's verdict, given the file's first :data:`HANDOVER_BYTES`."""
    if len(head) >= size or read_all is None or not looks_like_dicom(head):
        data = head  # all of it, or no DICOM at all: nothing more to read
    else:
        data = read_all()
    return inspect_dicom(data, extras, size=size, read_at=reader)


def inspect_head(
    head: bytes,
    size: int,
    read_all: Callable[[], bytes] | None = None,
    extras: Extras | None = None,
    known: Callable[[str, str], frozenset[str]] | None = None,
    reader: Callable[[int, int], bytes] | None = None,
) -> tuple[ImageFacts | Skip, str | None]:
    """One file's verdict by a fresh :class:`FastReader` (nothing remembered from other
    files); see :meth:`FastReader.inspect`."""
    return FastReader().inspect(head, size, read_all, extras, known, reader)


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


def _frame_geometry(head: bytes) -> dict[str, str]:
    """A multi-frame image's frames' geometry (:func:`.extras.frame_geometry`) from
    pydicom's parse of its header: for images without an ImagePositionPatient of their
    own, which the series table would otherwise have no geometry for. The fast path
    decides only files whose header up to the pixel data lies within ``head``, and the
    per-frame groups come before it (a longer header is pydicom's from the start)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = dcmread(io.BytesIO(head), force=True, stop_before_pixels=True)
        except Exception:  # (not expected: the fast path read this header)
            return {}
    return frame_geometry(ds)


_NOTHING: Final = frozenset[str]()
_POSITION: Final = "ImagePositionPatient"


# Values that differ from image to image (positions, numbers, times, UIDs): not remembered.
_PER_IMAGE: Final = frozenset(
    {0x00080013, 0x00080018, 0x00080032, 0x00080033, 0x00200013, 0x00200032, 0x00201041}
)


def _hard_extras(
    raw: dict[int, bytes], found: Found, hard: list[tuple[str, int]], implicit: bool
) -> dict[str, str]:
    """Extra values pydicom decodes: other VRs, escape sequences, unknown character sets."""
    values: dict[str, str] = {}
    subset = Dataset()
    for tag in {0x00080005, *(tag for _, tag in hard)} & found.keys():
        file_vr, start, length = found[tag]
        key_tag = BaseTag(tag)
        raw_vr = None if file_vr is None else file_vr.decode("ascii")
        subset[key_tag] = RawDataElement(key_tag, raw_vr, length, raw[tag], start, implicit, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, tag in hard:
            try:
                values[key] = value_text(subset[tag].value)
            except Exception:  # a value pydicom cannot convert: shown as hex
                values[key] = value_text(raw[tag])
    return values


def _dictionary_vr(tag: int) -> bytes:
    try:
        return str(dictionary_VR(tag)).encode("ascii")
    except KeyError:
        return b"UN"


def _ascii(raw: bytes) -> str:
    """A plain ASCII value (UIDs, codes, numbers) as pydicom shows it."""
    if not raw.isascii():
        raise HandOverError("malformed", "a UID, code or number that is not ASCII")
    return raw.decode("ascii").strip(" \x00").replace("\x00", "")


def _check_text_vrs(found: Found) -> None:
    """Charset rule 0: a fixed text column in a VR that is not text (a name in ``UL``) is
    pydicom's to judge. Files that follow a checked layout have the same VRs: not again."""
    for _, tag in TEXT_TAGS:
        where = found.get(tag)
        if where is not None and where[0] is not None and where[0] not in COLUMN_VRS:
            raise HandOverError("malformed", "a text column in a VR that is not text")


def _raw_values(head: bytes, found: Found) -> dict[int, bytes]:
    """The value bytes of every element found, by tag (all of them within ``head``)."""
    end = len(head)
    raw: dict[int, bytes] = {}
    for tag, (_, start, length) in found.items():
        if start + length > end:
            raise HandOverError("beyond_head", "a needed element")
        raw[tag] = head[start : start + length]
    return raw


def _fields(
    raw: dict[int, bytes],
    found: Found,
    pixel: PixelInfo | None,
    meta_class: str,
    implicit: bool,
    extra: dict[str, str],
) -> HeaderFields:
    text, notes, hard = column_texts(raw, term_of(raw.get(0x00080005, b"")))
    undecodable: tuple[str, ...] = ()
    if hard:
        by_pydicom, undecodable = _decode_by_pydicom(found, raw, hard, implicit)
        text.update(by_pydicom)
    rows, columns = _us(raw, found, 0x00280010), _us(raw, found, 0x00280011)
    key = "" if text.get("SeriesInstanceUID") else series_key(raw, rows, columns)
    return HeaderFields(
        meta_class=meta_class,
        sop_class=_ascii(raw.get(0x00080016, b"")),
        sop_instance_uid=_ascii(raw.get(0x00080018, b"")),
        directory_records=0x00041220 in raw,
        text=text,
        undecodable=undecodable,
        charset_notes=tuple(notes),
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


def _decode_by_pydicom(
    found: Found, raw: dict[int, bytes], hard: list[int], implicit: bool
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Text values :func:`.charset.column_text` leaves to pydicom, decoded in the file's
    character set by the full reader's :func:`~.fullparse.text_values`; those that failed."""
    subset = Dataset()
    for tag in (0x00080005, *hard):
        if tag in found:
            vr, start, length = found[tag]
            text_vr = None if vr is None else vr.decode("ascii")
            key = BaseTag(tag)
            subset[key] = RawDataElement(key, text_vr, length, raw[tag], start, implicit, True)
    decoded, undecodable, _ = text_values(subset)  # no notes: the rules gave those already
    wanted = {keyword for keyword, tag in TEXT_TAGS if tag in hard}
    return {k: v for k, v in decoded.items() if k in wanted}, undecodable


def _us(raw: dict[int, bytes], found: Found, tag: int) -> int | None:
    """An unsigned short as pydicom reads it; anything else goes to pydicom."""
    value = raw.get(tag)
    if value is None:
        return None
    if found[tag][0] not in (None, b"US") or len(value) != 2:
        raise HandOverError("unusual_encoding")
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
