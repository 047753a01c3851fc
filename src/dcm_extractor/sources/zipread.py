"""Zip files read in place, member by member: no temp folder, no zip-slip, bounded reads.

Only the head of each member is inflated (what the header reader needs, like the first
bytes of a loose file); the rest, and the member's CRC check, only when pydicom has to
take over and asks for the whole member. A member that fits in the head is CRC-checked
at once. Heads of stored and deflated members (nearly every zip) are read by
:func:`_read_head`: one ``pread`` of the local header and the compressed bytes, one
inflate, none of :mod:`zipfile`'s per-member stream machinery, which cost more than the
inflating itself; other methods (bzip2, LZMA) go through :mod:`zipfile`.

Member names without the UTF-8 flag are decoded per zip, as one writer wrote them all:
UTF-8 when every such name is valid UTF-8 (many tools omit the flag), else GB18030 (a
superset of the GBK that Chinese Windows writes; some GBK names are valid UTF-8 by chance,
``住院`` would read ``סԺ``, so one name that is not decides for the whole zip; when
every name is both, the reading of more letters, as for file names: ``脾`` is UTF-8 for
``Ƣ``), else the zip standard's CP437 for the names neither decodes.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

from zlib_ng import zlib_ng

from ..reading.letters import letters
from .names import nameless

__all__ = [
    "DEFAULT_HEAD_BYTES",
    "DEFAULT_MAX_MEMBER_BYTES",
    "MemberReadError",
    "ZipMember",
    "ZipProblem",
    "iter_zip_members",
]

DEFAULT_MAX_MEMBER_BYTES: Final = 2 * 1024**3  # a larger DICOM file is a zip bomb, not an image
DEFAULT_HEAD_BYTES: Final = 16 * 1024
_UTF8_FLAG: Final = 0x800
_ENCRYPTED_FLAG: Final = 0x1
_LOCAL_HEADER: Final = struct.Struct("<4s22xHH")  # signature ... name length, extra length
_LOCAL_SIGNATURE: Final = b"PK\x03\x04"
_SLACK: Final = 1024  # local extra fields may be longer than the central directory's


PREFIX_BYTES: Final = 32 * 2**20  # = fastheader.HANDOVER_BYTES (no import: layers)


class MemberReadError(Exception):
    """A member's bytes could not be inflated or fail their CRC."""


@dataclass(frozen=True)
class ZipMember:
    """One file inside a zip: its decoded name, its first bytes, its declared size.

    :meth:`read_all` gives the whole member (CRC-checked) while the iteration that
    yielded it has not moved on.
    """

    name: str
    head: bytes
    size: int
    _archive: zipfile.ZipFile | None = field(default=None, repr=False, compare=False)
    _info: zipfile.ZipInfo | None = field(default=None, repr=False, compare=False)
    _limit: int = field(default=DEFAULT_MAX_MEMBER_BYTES, repr=False, compare=False)

    def read_prefix(self, limit: int | None = None) -> bytes:
        """The member's first ``limit`` bytes (default :data:`fastheader.HANDOVER_BYTES
        <dcm_extractor.reading.fastheader.HANDOVER_BYTES>`): the whole member, CRC-checked, when
        it is no larger; else only its start (a 1 GiB member costs 32 MB, not 1 GiB).

        Raises
        ------
        MemberReadError
            It cannot be inflated, fails its CRC, or inflates beyond the size limit.
        """
        want = PREFIX_BYTES if limit is None else limit
        if self.size <= want:
            return self.read_all()
        if self._archive is None or self._info is None or len(self.head) >= want:
            return self.head[:want]
        try:
            with self._archive.open(self._info) as stream:
                return stream.read(want)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as err:
            raise MemberReadError(f"cannot be extracted: {_failure(err)}") from err

    def reader(self) -> Callable[[int, int], bytes] | None:
        """``reader(offset, n)`` into the member, offsets not decreasing between calls
        (the item headers of encapsulated pixel data): inflates forward, keeping nothing.

        Valid while the iteration that yielded the member has not moved on.
        """
        if self._archive is None or self._info is None:
            return None
        archive, info = self._archive, self._info
        state: dict[str, Any] = {"stream": None, "at": 0}

        def read(offset: int, n: int) -> bytes:
            try:
                if state["stream"] is None or offset < state["at"]:
                    if state["stream"] is not None:
                        state["stream"].close()
                    state["stream"], state["at"] = archive.open(info), 0
                stream = state["stream"]
                while state["at"] < offset:  # skip forward in pieces
                    skipped = len(stream.read(min(offset - state["at"], 2**20)))
                    if not skipped:
                        return b""
                    state["at"] += skipped
                data: bytes = stream.read(n)
                state["at"] += len(data)
                return data
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as err:
                raise MemberReadError(f"cannot be extracted: {_failure(err)}") from err

        return read

    def read_all(self) -> bytes:
        """The whole member.

        Raises
        ------
        MemberReadError
            It cannot be inflated, fails its CRC, or inflates beyond the size limit.
        """
        if self._archive is None or self._info is None or len(self.head) >= self.size:
            return self.head
        try:
            with self._archive.open(self._info) as stream:
                data = stream.read(self._limit + 1)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as err:
            raise MemberReadError(f"cannot be extracted: {_failure(err)}") from err
        if len(data) > self._limit:
            raise MemberReadError(f"inflates beyond {self._limit} bytes (zip bomb?)")
        return data


@dataclass(frozen=True)
class ZipProblem:
    """A member (or, with ``name`` None, the whole zip) that could not be read, and why."""

    name: str | None
    reason: str
    detail: str


def decode_member_names(infos: list[zipfile.ZipInfo]) -> list[str]:
    """The members' names as their writer meant them (see the module docstring)."""
    raw = {
        id(info): info.orig_filename.encode("cp437")  # zipfile decoded the bytes as CP437
        for info in infos
        if not info.flag_bits & _UTF8_FLAG
    }
    utf8 = all(_decodes(r, "utf-8") for r in raw.values()) and not _more_letters_as_gbk(raw)
    encodings = ["utf-8", "gb18030"] if utf8 else ["gb18030", "utf-8"]
    names = []
    for info in infos:
        name = info.filename if id(info) not in raw else None
        for encoding in encodings if name is None else ():
            if _decodes(raw[id(info)], encoding):
                name = raw[id(info)].decode(encoding)
                break
        names.append(name if name is not None else info.orig_filename)
    return names


def _more_letters_as_gbk(raw: dict[int, bytes]) -> bool:
    """Whether names that are all valid UTF-8 are GB18030 too, and read as it give more
    letters (:func:`~dcm_extractor.reading.letters.letters`): GBK of one or two
    characters can be valid UTF-8 (脾, ``C6 A2``, is UTF-8 for Ƣ)."""
    names = [r for r in raw.values() if not r.isascii()]
    if not names or not all(_decodes(r, "gb18030") for r in names):
        return False
    as_gbk = sum(letters(r.decode("gb18030")) for r in names)
    return as_gbk > sum(letters(r.decode("utf-8")) for r in names)


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def iter_zip_members(
    path: str | os.PathLike[str],
    *,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    head_bytes: int | None = DEFAULT_HEAD_BYTES,
) -> Iterator[ZipMember | ZipProblem]:
    """Yield each file member (its first ``head_bytes``), or a problem, in member-name order.

    Directories are skipped (``name/``, and ``name\\`` of size 0 as old Windows tools
    wrote them). Encrypted members, nested zips, members declaring more
    than ``max_member_bytes`` and members whose head cannot be inflated become
    :class:`ZipProblem`; so does a zip that cannot be opened. ``head_bytes=None``
    reads every member whole, checking its CRC and the size limit as it inflates.
    """
    with contextlib.ExitStack() as stack:
        try:
            stream = stack.enter_context(Path(path).open("rb"))
            archive = stack.enter_context(zipfile.ZipFile(stream))
        except OSError as err:  # (not the zip's fault: permissions, an I/O error)
            yield ZipProblem(None, "unreadable", f"cannot be read ({nameless(err)})")
            return
        except (zipfile.BadZipFile, ValueError) as err:
            yield ZipProblem(None, "corrupt_zip", f"not a readable zip: {nameless(err)}")
            return
        files = [info for info in archive.infolist() if not info.is_dir()]
        infos = [
            (name, info)
            for name, info in zip(decode_member_names(files), files, strict=True)
            if not (name.endswith("\\") and info.file_size == 0)  # (a folder: old Windows
        ]  # zip tools wrote "CT\\" for "CT/", against the zip standard: not an empty file)
        for name, info in sorted(infos, key=lambda pair: pair[0]):
            if info.flag_bits & _ENCRYPTED_FLAG:
                yield ZipProblem(name, "encrypted", "encrypted member (no password)")
                continue
            if name.lower().endswith(".zip"):
                yield ZipProblem(name, "nested_zip", "a zip inside a zip is not opened")
                continue
            if info.file_size > max_member_bytes:
                yield ZipProblem(
                    name, "too_large", f"declares {info.file_size} bytes, limit {max_member_bytes}"
                )
                continue
            want = max_member_bytes + 1 if head_bytes is None else min(head_bytes, info.file_size)
            try:
                if head_bytes is not None and info.compress_type in _RAW_METHODS:
                    data = _read_head(stream, info, want)
                else:
                    with archive.open(info) as member:
                        data = member.read(want)
            except (
                zipfile.BadZipFile,
                zlib.error,
                _ZLIB_NG_ERROR,
                OSError,
                EOFError,
                NotImplementedError,
                MemberReadError,
            ) as err:
                yield ZipProblem(name, "corrupt_member", f"cannot be extracted: {_failure(err)}")
                continue
            if len(data) > max_member_bytes:
                yield ZipProblem(
                    name, "too_large", f"inflates beyond {max_member_bytes} bytes (zip bomb?)"
                )
                continue
            size = len(data) if head_bytes is None else info.file_size
            yield ZipMember(name, data, size, archive, info, max_member_bytes)


def _failure(err: BaseException) -> str:
    """Why a member could not be read, naming no file (:func:`~.names.nameless`)."""
    return nameless(err, kind=not isinstance(err, MemberReadError))


_RAW_METHODS: Final = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_HAS_PREAD: Final = hasattr(os, "pread")
# zlib_ng's stub declares ``error`` as an instance; it is the module's exception class.
_ZLIB_NG_ERROR: Final[type[Exception]] = zlib_ng.error  # type: ignore[assignment]


def _read_head(stream: BinaryIO, info: zipfile.ZipInfo, want: int) -> bytes:
    """The first ``want`` bytes of a stored or deflated member, read straight from the file.

    :mod:`zipfile` seeks before each of its own reads, so it can share the stream.
    The first read takes the local header and ``want * 9 / 8`` compressed bytes (fixed
    Huffman codes spend at most 9 bits on a byte), enough for ``want`` inflated bytes
    from any sane encoder; a pathological one costs further reads, not a wrong head.
    """
    compressed = min(info.compress_size, want + want // 8 + 64)
    guess = 30 + 4 * len(info.filename) + len(info.extra) + _SLACK
    block = _read_at(stream, guess + compressed, info.header_offset)
    if len(block) < 30 or block[:4] != _LOCAL_SIGNATURE:
        raise MemberReadError("bad local file header")
    _, name_length, extra_length = _LOCAL_HEADER.unpack_from(block)
    start = 30 + name_length + extra_length
    if start + compressed > len(block):
        block = block[:start] + _read_at(stream, compressed, info.header_offset + start)
    raw = block[start : start + compressed]
    if info.compress_type == zipfile.ZIP_STORED:
        data = raw[:want]
    else:
        inflate = zlib_ng.decompressobj(-zlib.MAX_WBITS)
        data = inflate.decompress(raw, want)
        taken = len(raw)
        while len(data) < want and not inflate.eof and taken < info.compress_size:
            more = _read_at(
                stream,
                min(64 * 1024, info.compress_size - taken),
                info.header_offset + start + taken,
            )
            if not more:
                break
            taken += len(more)
            data += inflate.decompress(inflate.unconsumed_tail + more, want - len(data))
    if len(data) < want:
        raise MemberReadError(f"ends after {len(data)} of {info.file_size} bytes")
    if want >= info.file_size and zlib.crc32(data) != info.CRC:
        raise MemberReadError(f"bad CRC-32 for file {info.filename!r}")
    return data


def _read_at(stream: BinaryIO, size: int, offset: int) -> bytes:
    """``size`` bytes at ``offset``: one ``pread`` call where there is one (not on Windows)."""
    if _HAS_PREAD:
        return os.pread(stream.fileno(), size, offset)
    stream.seek(offset)
    return stream.read(size)
