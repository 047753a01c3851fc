"""Bytes of medmask 0.1.3's single-mask ``.msk`` files ("MSK1"), read-only.

Layout (little-endian, ``<4s2B B 6Q 7x`` = 62 bytes of header)::

    0   magic "MSK1"
    4   major, minor (1, 0)
    6   codec id (0 = zstd, the only one 0.1.3 had)
    7   space_offset, space_length      (u64, u64)  Space JSON, axes reversed (x,y,z)
    23  mapping_offset, mapping_length  (u64, u64)  {"name": label} JSON
    39  data_offset, data_length        (u64, u64)  blob, see medmask.codecs.legacy
    55  7 padding bytes

0.1.3 has no checksums; every offset is checked against the file size here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from ..errors import FormatError

__all__ = ["LEGACY_MSK_MAGIC", "LegacyMskParts", "legacy_msk_header", "unpack_legacy_msk"]

LEGACY_MSK_MAGIC: Final = b"MSK1"
LEGACY_HEADER: Final = struct.Struct("<4s2BB6Q7x")


@dataclass(frozen=True)
class LegacyMskParts:
    """Raw sections of a 0.1.3 ``.msk`` file."""

    space_json: bytes
    mapping_json: bytes
    blob: bytes


def unpack_legacy_msk(data: bytes, source: str) -> LegacyMskParts:
    """Check and split 0.1.3 ``.msk`` bytes; FormatError naming ``source`` when damaged."""
    if len(data) < LEGACY_HEADER.size:
        raise FormatError(
            f"{source}: {len(data)} bytes is too short for a medmask 0.1.3 .msk header"
        )
    magic, major, minor, codec, *sections = LEGACY_HEADER.unpack_from(data)
    if magic != LEGACY_MSK_MAGIC:
        raise FormatError(f"{source}: magic {magic!r}, expected {LEGACY_MSK_MAGIC!r}")
    if (major, minor) != (1, 0):
        raise FormatError(f"{source}: medmask 0.1.3 .msk version {major}.{minor}, expected 1.0")
    if codec != 0:
        raise FormatError(f"{source}: codec id {codec} unknown to medmask 0.1.3 files (expected 0)")
    parts = []
    for name, (offset, length) in zip(
        ("space", "mapping", "data"), zip(sections[0::2], sections[1::2], strict=True), strict=True
    ):
        if offset < LEGACY_HEADER.size or offset + length > len(data):
            raise FormatError(
                f"{source}: {name} section at {offset}+{length} lies outside the "
                f"{len(data)}-byte file (truncated?)"
            )
        parts.append(bytes(data[offset : offset + length]))
    return LegacyMskParts(*parts)


def legacy_msk_header(data: bytes) -> dict[str, int]:
    """The section offsets and lengths of a 0.1.3 ``.msk`` header, by 0.1.3's names."""
    unpack_legacy_msk(data, "")  # the same checks as reading
    names = ("space_offset", "space_length", "mapping_offset", "mapping_length",
             "data_offset", "data_length")  # fmt: skip
    return dict(zip(names, LEGACY_HEADER.unpack_from(data)[4:], strict=True))
