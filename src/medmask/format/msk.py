"""Bytes of a single-mask ``.msk`` file, format 2 (docs/mask-format.md, "Single-mask files").

Layout::

    0   header   40 bytes, fixed (HEADER below)
    40  meta     UTF-8 JSON object: geometry, names, dtype, codec, bounding box
    ..  blob     the encoded crop (absent for an empty mask)

Readers check, in this order: size, magic, major version, header checksum, total
size, metadata checksum, blob checksum; each failure has its own message.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Final

from ..errors import ChecksumError, FormatError

__all__ = ["FORMAT_VERSION", "HEADER", "MAGIC", "MskParts", "msk_header", "pack_msk", "unpack_msk"]

MAGIC: Final = b"\x89MSK\r\n\x1a\n"  # PNG-style: catches text-mode and 7-bit transfers
FORMAT_VERSION: Final = (2, 0)  # major 1 was medmask 0.1.3's "MSK1" layout

# offset  size  field
#  0      8     magic
#  8      1     major version
#  9      1     minor version
# 10      2     flags (reserved, 0)
# 12      4     meta_length   (u32)
# 16      8     blob_length   (u64)
# 24      4     meta_crc32    CRC-32 (zlib) of the meta bytes
# 28      4     blob_crc32    CRC-32 of the blob bytes
# 32      4     reserved (0)
# 36      4     header_crc32  CRC-32 of bytes 0..35
HEADER: Final = struct.Struct("<8sBBHIQIII")
_HEADER_CRC: Final = struct.Struct("<I")
HEADER_SIZE: Final = HEADER.size + _HEADER_CRC.size  # 40


@dataclass(frozen=True)
class MskParts:
    """The decoded sections of a ``.msk`` file."""

    version: tuple[int, int]
    meta: dict[str, Any]
    blob: bytes


def pack_msk(meta: dict[str, Any], blob: bytes) -> bytes:
    """The complete file bytes for ``meta`` (JSON-ready) and ``blob``."""
    meta_bytes = json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    head = HEADER.pack(
        MAGIC,
        *FORMAT_VERSION,
        0,
        len(meta_bytes),
        len(blob),
        zlib.crc32(meta_bytes),
        zlib.crc32(blob),
        0,
    )
    return head + _HEADER_CRC.pack(zlib.crc32(head)) + meta_bytes + blob


def unpack_msk(data: bytes, source: str) -> MskParts:
    """Check and split ``.msk`` bytes; ``source`` names the file in error messages.

    Raises
    ------
    FormatError
        Too short, wrong magic, unsupported major version, wrong total size, or
        metadata that is not a JSON object.
    ChecksumError
        A header, metadata or blob checksum does not match.
    """
    if len(data) < HEADER_SIZE:
        raise FormatError(f"{source}: file is {len(data)} bytes, a .msk header needs {HEADER_SIZE}")
    magic, major, minor, _flags, meta_length, blob_length, meta_crc, blob_crc, _ = (
        HEADER.unpack_from(data)
    )
    if magic != MAGIC:
        raise FormatError(
            f"{source}: not a medmask .msk file (magic {magic!r}, expected {MAGIC!r})"
        )
    if major != FORMAT_VERSION[0]:
        raise FormatError(
            f"{source}: .msk format version {major}.{minor} is not supported "
            f"(this medmask reads {FORMAT_VERSION[0]}.x); upgrade medmask"
        )
    (header_crc,) = _HEADER_CRC.unpack_from(data, HEADER.size)
    if zlib.crc32(data[: HEADER.size]) != header_crc:
        raise ChecksumError(f"{source}: header checksum mismatch; the file is damaged")
    expected = HEADER_SIZE + meta_length + blob_length
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "followed by extra bytes"
        raise FormatError(f"{source}: file is {len(data)} bytes, expected {expected} ({state})")
    meta_bytes = data[HEADER_SIZE : HEADER_SIZE + meta_length]
    blob = data[HEADER_SIZE + meta_length :]
    if zlib.crc32(meta_bytes) != meta_crc:
        raise ChecksumError(f"{source}: metadata checksum mismatch; the file is damaged")
    if zlib.crc32(blob) != blob_crc:
        raise ChecksumError(f"{source}: mask data checksum mismatch; the file is damaged")
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(f"{source}: metadata is not valid UTF-8 JSON: {err}") from err
    if not isinstance(meta, dict):
        raise FormatError(f"{source}: metadata must be a JSON object")
    return MskParts((major, minor), meta, bytes(blob))


def msk_header(data: bytes, source: str) -> dict[str, int]:
    """Where the sections of a format-2 ``.msk`` file lie, after the checks of reading."""
    unpack_msk(data, source)
    _, major, minor, _flags, meta_length, blob_length, *_ = HEADER.unpack_from(data)
    return {
        "major": major,
        "minor": minor,
        "meta_offset": HEADER_SIZE,
        "meta_length": meta_length,
        "data_offset": HEADER_SIZE + meta_length,
        "data_length": blob_length,
    }
