"""Zip files read in place, member by member: no temp folder, no zip-slip, bounded reads.

Only the head of each member is inflated (what the header reader needs, like the first
bytes of a loose file); the rest, and the member's CRC check, only when pydicom has to
take over and asks for the whole member.

Member names without the UTF-8 flag are decoded per member: UTF-8 when they are valid
UTF-8 (many tools omit the flag), else GB18030 (a superset of the GBK that Chinese
Windows writes), else the zip standard's CP437.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

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
            raise MemberReadError(f"cannot be extracted: {err}") from err
        if len(data) > self._limit:
            raise MemberReadError(f"inflates beyond {self._limit} bytes (zip bomb?)")
        return data


@dataclass(frozen=True)
class ZipProblem:
    """A member (or, with ``name`` None, the whole zip) that could not be read, and why."""

    name: str | None
    reason: str
    detail: str


def decode_member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its writer meant it (see the module docstring)."""
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    raw = info.orig_filename.encode("cp437")  # zipfile decoded the raw bytes as CP437
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.orig_filename


def iter_zip_members(
    path: str | os.PathLike[str],
    *,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    head_bytes: int | None = DEFAULT_HEAD_BYTES,
) -> Iterator[ZipMember | ZipProblem]:
    """Yield each file member (its first ``head_bytes``), or a problem, in member-name order.

    Directories are skipped. Encrypted members, nested zips, members declaring more
    than ``max_member_bytes`` and members whose head cannot be inflated become
    :class:`ZipProblem`; so does a zip that cannot be opened. ``head_bytes=None``
    reads every member whole, checking its CRC and the size limit as it inflates.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        yield ZipProblem(None, "corrupt_zip", f"not a readable zip: {err}")
        return
    with archive:
        infos = [
            (decode_member_name(info), info) for info in archive.infolist() if not info.is_dir()
        ]
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
                with archive.open(info) as stream:
                    data = stream.read(want)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as err:
                yield ZipProblem(name, "corrupt_member", f"cannot be extracted: {err}")
                continue
            if len(data) > max_member_bytes:
                yield ZipProblem(
                    name, "too_large", f"inflates beyond {max_member_bytes} bytes (zip bomb?)"
                )
                continue
            size = len(data) if head_bytes is None else info.file_size
            yield ZipMember(name, data, size, archive, info, max_member_bytes)
