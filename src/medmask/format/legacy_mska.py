"""Bytes of medmask 0.1.3's archives ("MSKA"), read-only.

Header, 100 bytes, ``<4s2B B 7Q 27x``: magic, major/minor (1, 0), codec id (0), then
space offset/length (Space JSON, axes reversed), index offset/length (JSON list of
``{"name", "offset", "length", "mapping"}`` padded with NUL), data offset/length and
the mask count. Blobs are 0.1.3 data blobs (medmask.codecs.legacy).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, Final

from ..errors import FormatError

__all__ = ["LEGACY_MSKA_MAGIC", "LegacyArchive", "legacy_archive_header", "unpack_legacy_archive"]

LEGACY_MSKA_MAGIC: Final = b"MSKA"
_HEADER: Final = struct.Struct("<4s2BB7Q27x")


@dataclass(frozen=True)
class LegacyArchive:
    """The geometry JSON and the index entries of a 0.1.3 archive."""

    space_json: bytes
    entries: list[dict[str, Any]]


def unpack_legacy_archive(data: bytes, source: str) -> LegacyArchive:
    """Check a 0.1.3 archive's header and index; FormatError naming ``source`` when damaged."""
    if len(data) < _HEADER.size:
        raise FormatError(f"{source}: {len(data)} bytes is too short for a medmask 0.1.3 archive")
    magic, major, minor, codec, *fields = _HEADER.unpack_from(data)
    if magic != LEGACY_MSKA_MAGIC or (major, minor) != (1, 0) or codec != 0:
        raise FormatError(
            f"{source}: not a medmask 0.1.3 archive (magic {magic!r}, v{major}.{minor})"
        )
    space_offset, space_length, index_offset, index_length = fields[:4]
    for name, offset, length in (
        ("space", space_offset, space_length),
        ("index", index_offset, index_length),
    ):
        if offset < _HEADER.size or offset + length > len(data):
            raise FormatError(
                f"{source}: {name} section at {offset}+{length} lies outside the file"
            )
    try:
        raw_index = data[index_offset : index_offset + index_length].rstrip(b"\x00")
        entries = json.loads(raw_index.decode("utf-8")) if raw_index else []
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(f"{source}: medmask 0.1.3 index is damaged: {err}") from err
    if not isinstance(entries, list):
        raise FormatError(f"{source}: medmask 0.1.3 index is not a list")
    for entry in entries:
        try:
            offset, length = int(entry["offset"]), int(entry["length"])
            str(entry["name"])
        except (KeyError, TypeError, ValueError) as err:
            raise FormatError(f"{source}: medmask 0.1.3 index entry is damaged: {err!r}") from err
        if offset < _HEADER.size or offset + length > len(data):
            raise FormatError(
                f"{source}: mask {entry['name']!r} at {offset}+{length} lies outside the file"
            )
    return LegacyArchive(bytes(data[space_offset : space_offset + space_length]), entries)


def legacy_archive_header(data: bytes) -> dict[str, int]:
    """The header fields of a medmask 0.1.3 archive, by 0.1.3's names."""
    fields = _HEADER.unpack_from(data)[4:]
    names = ("space_offset", "space_length", "index_offset", "index_length", "data_offset",
             "data_length", "mask_count")  # fmt: skip
    return dict(zip(names, (int(v) for v in fields), strict=True))
