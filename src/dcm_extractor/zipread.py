"""Zip files read in place, member by member: no temp folder, no zip-slip, bounded reads.

Member names without the UTF-8 flag are decoded per member: UTF-8 when they are valid
UTF-8 (many tools omit the flag), else GB18030 (a superset of the GBK that Chinese
Windows writes), else the zip standard's CP437.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_MAX_MEMBER_BYTES", "ZipMember", "ZipProblem", "iter_zip_members"]

DEFAULT_MAX_MEMBER_BYTES: Final = 2 * 1024**3  # a larger DICOM file is a zip bomb, not an image
_UTF8_FLAG: Final = 0x800
_ENCRYPTED_FLAG: Final = 0x1


@dataclass(frozen=True)
class ZipMember:
    """One file inside a zip: its decoded name and bytes."""

    name: str
    data: bytes


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
    path: str | os.PathLike[str], *, max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
) -> Iterator[ZipMember | ZipProblem]:
    """Yield each file member's bytes, or a problem, in member-name order.

    Directories are skipped. Encrypted members, nested zips, members larger than
    ``max_member_bytes`` (however small their header claims they are) and members that
    fail their CRC become :class:`ZipProblem`; so does a zip that cannot be opened.
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
            try:
                with archive.open(info) as stream:
                    data = stream.read(max_member_bytes + 1)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as err:
                yield ZipProblem(name, "corrupt_member", f"cannot be extracted: {err}")
                continue
            if len(data) > max_member_bytes:
                yield ZipProblem(
                    name, "too_large", f"inflates beyond {max_member_bytes} bytes (zip bomb?)"
                )
                continue
            yield ZipMember(name, data)
