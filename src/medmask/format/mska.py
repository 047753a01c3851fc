"""Bytes of a mask archive ``.mska``, format 2 (docs/mask-format.md, "Mask archives").

Layout::

    0    superblock slot A   (64 bytes)
    64   superblock slot B   (64 bytes)
    128  geometry block      (160 bytes)
    288  data region         blobs and index blocks, append-only
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Final

import zstandard

from ..errors import ChecksumError, FormatError

__all__ = [
    "DATA_START",
    "FORMAT_VERSION",
    "GEOMETRY_OFFSET",
    "MAGIC",
    "SLOT_OFFSETS",
    "SLOT_SIZE",
    "Superblock",
    "choose_superblock",
    "commit_candidates",
    "entry_json",
    "pack_geometry",
    "pack_index",
    "pack_index_json",
    "pack_superblock",
    "read_slots",
    "slot_generation",
    "unpack_geometry",
    "unpack_index",
]

MAGIC: Final = b"\x89MSKA\r\n\x1a"
FORMAT_VERSION: Final = (2, 0)

# offset size field
#  0     8    magic
#  8     1    major
#  9     1    minor
# 10     6    reserved
# 16     8    generation
# 24     8    index_offset
# 32     8    index_length
# 40     8    data_end
# 48     4    index_crc32
# 52     8    reserved
# 60     4    superblock_crc32 (of bytes 0..59)
_SUPERBLOCK: Final = struct.Struct("<8sBB6xQQQQI8x")
_CRC: Final = struct.Struct("<I")
SLOT_SIZE: Final = 64
SLOT_OFFSETS: Final = (0, 64)

# offset size field (relative to GEOMETRY_OFFSET)
#  0     24   shape         3 x u64
#  24    24   origin        3 x f64
#  48    24   spacing       3 x f64
#  72    72   orientations  9 x f64 (x, y, z axis directions)
#  144   4    geometry_crc32
#  148   12   reserved
_GEOMETRY: Final = struct.Struct("<3Q3d3d9d")
GEOMETRY_OFFSET: Final = 128
GEOMETRY_SIZE: Final = 160
DATA_START: Final = GEOMETRY_OFFSET + GEOMETRY_SIZE  # 288

# Every add commits an index (docs/mask-format.md): level 12 is within 1% of level 19's
# size on s0000's 117 entries (1,320 vs 1,307 bytes) in a third of the time (0.15 ms).
INDEX_LEVEL: Final = 12
MAX_INDEX_BYTES: Final = 256 * 1024 * 1024  # decompressed; more is damage, not an index


@dataclass(frozen=True)
class Superblock:
    """One commit: where its index is and how much of the file it covers."""

    generation: int
    index_offset: int
    index_length: int
    data_end: int
    index_crc: int


def pack_superblock(block: Superblock) -> bytes:
    """The 64 bytes of a superblock slot."""
    body = _SUPERBLOCK.pack(
        MAGIC,
        *FORMAT_VERSION,
        block.generation,
        block.index_offset,
        block.index_length,
        block.data_end,
        block.index_crc,
    )
    return body + _CRC.pack(zlib.crc32(body))


def _unpack_superblock(raw: bytes, file_size: int) -> Superblock | str:  # noqa: PLR0911
    """The superblock in ``raw``, or why it is not valid."""
    if len(raw) < SLOT_SIZE:
        return f"slot is {len(raw)} bytes, expected {SLOT_SIZE}"
    magic, major, minor, generation, index_offset, index_length, data_end, index_crc = (
        _SUPERBLOCK.unpack_from(raw)
    )
    if magic != MAGIC:
        return f"magic {magic!r}, expected {MAGIC!r}"
    if major != FORMAT_VERSION[0]:
        return f"format version {major}.{minor} is not supported (this medmask reads 2.x)"
    if zlib.crc32(raw[: _SUPERBLOCK.size]) != _CRC.unpack_from(raw, _SUPERBLOCK.size)[0]:
        return "superblock checksum mismatch"
    if not DATA_START <= data_end <= file_size:
        return f"commit covers {data_end} bytes but the file has {file_size}"
    if index_offset < DATA_START or index_offset + index_length > data_end:
        return f"index at {index_offset}+{index_length} lies outside the committed {data_end} bytes"
    return Superblock(generation, index_offset, index_length, data_end, index_crc)


def choose_superblock(head: bytes, file_size: int, source: str) -> tuple[Superblock, int] | None:
    """The newest valid superblock among the two slots in ``head`` and its slot number.

    Returns None for a file whose slots are both still empty (created, never committed).

    Raises
    ------
    FormatError
        Neither slot holds a valid superblock; the message gives both reasons.
    """
    candidates = commit_candidates(head, file_size, source)
    return candidates[0] if candidates else None


def commit_candidates(head: bytes, file_size: int, source: str) -> list[tuple[Superblock, int]]:
    """The valid superblocks in ``head`` with their slots, newest first ([]: never committed).

    Readers take the newest whose index matches its checksum: the older one is only there
    while a commit is under way (docs/mask-format.md, "Commit protocol").

    Raises
    ------
    FormatError
        Neither slot holds a valid superblock; the message gives both reasons.
    """
    if len(head) < 4 or not (head.startswith(MAGIC[:4]) or head[SLOT_SIZE:].startswith(MAGIC[:4])):
        if head[:GEOMETRY_OFFSET].count(0) == min(len(head), GEOMETRY_OFFSET) and (
            file_size <= DATA_START or _geometry_intact(head[GEOMETRY_OFFSET:])
        ):
            return []  # a writer is making its first commit, or was stopped before it
        raise FormatError(f"{source}: not a medmask archive (starts with {head[:8]!r})")
    found = [_unpack_superblock(head[o : o + SLOT_SIZE], file_size) for o in SLOT_OFFSETS]
    valid = [(b, slot) for slot, b in enumerate(found) if isinstance(b, Superblock)]
    if not valid:
        reasons = "; ".join(f"slot {'AB'[i]}: {r}" for i, r in enumerate(found))
        version = [r for r in found if isinstance(r, str) and "version" in r]
        raise FormatError(
            f"{source}: {version[0] if version else 'no valid superblock'} ({reasons})"
        )
    return sorted(valid, key=lambda pair: -pair[0].generation)


def slot_generation(raw: bytes) -> int:
    """The generation field of a slot's bytes, valid or not (0 for an unused slot).

    A damaged slot whose number is above the served commit's may have held a newer one.
    """
    if len(raw) < SLOT_SIZE:
        return 0
    return int(_SUPERBLOCK.unpack_from(raw)[3])


def read_slots(head: bytes, file_size: int) -> tuple[Superblock | str | None, ...]:
    """Each slot's superblock, the reason it is invalid, or None while it is still unused."""
    return tuple(
        None
        if head[o : o + SLOT_SIZE].count(0) == SLOT_SIZE
        else _unpack_superblock(head[o : o + SLOT_SIZE], file_size)
        for o in SLOT_OFFSETS
    )


def pack_geometry(space: dict[str, Any]) -> bytes:
    """The 160-byte geometry block of a ``space_to_dict`` record."""
    values = [
        *space["shape"],
        *space["origin"],
        *space["spacing"],
        *space["x_orientation"],
        *space["y_orientation"],
        *space["z_orientation"],
    ]
    body = _GEOMETRY.pack(*values)
    block = body + _CRC.pack(zlib.crc32(body))
    return block + bytes(GEOMETRY_SIZE - len(block))


def _geometry_intact(raw: bytes) -> bool:
    body = raw[: _GEOMETRY.size]
    return (
        len(raw) >= GEOMETRY_SIZE and zlib.crc32(body) == _CRC.unpack_from(raw, _GEOMETRY.size)[0]
    )


def unpack_geometry(raw: bytes, source: str) -> dict[str, Any] | None:
    """The ``space_to_dict`` record in a geometry block; None while it is still unset (zeros)."""
    if len(raw) < GEOMETRY_SIZE:
        raise FormatError(f"{source}: geometry block is {len(raw)} bytes, expected {GEOMETRY_SIZE}")
    if raw.count(0) == len(raw):
        return None
    body = raw[: _GEOMETRY.size]
    if zlib.crc32(body) != _CRC.unpack_from(raw, _GEOMETRY.size)[0]:
        raise ChecksumError(f"{source}: geometry checksum mismatch; the file is damaged")
    v = _GEOMETRY.unpack(body)
    return {
        "shape": list(v[0:3]),
        "origin": list(v[3:6]),
        "spacing": list(v[6:9]),
        "x_orientation": list(v[9:12]),
        "y_orientation": list(v[12:15]),
        "z_orientation": list(v[15:18]),
    }


def pack_index(entries: list[dict[str, Any]]) -> bytes:
    """An index block: one zstd frame of ``{"entries": [...]}`` as compact UTF-8 JSON."""
    return pack_index_json([entry_json(entry) for entry in entries])


def entry_json(entry: dict[str, Any]) -> str:
    """One index entry as the compact JSON text the index block holds."""
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


IMAGE_SERIES_KEYS = ("SeriesInstanceUID", "FrameOfReferenceUID", "StudyInstanceUID")


def pack_index_json(entry_texts: list[str], image_series: dict[str, str] | None = None) -> bytes:
    """An index block of entries already in JSON (:func:`entry_json`): writers keep them;
    ``image_series`` (docs/mask-format.md) after them when given."""
    series = "" if not image_series else ',"image_series":' + entry_json(image_series)
    text = '{"entries":[' + ",".join(entry_texts) + "]" + series + "}"
    return zstandard.ZstdCompressor(level=INDEX_LEVEL).compress(text.encode("utf-8"))


def index_text(raw: bytes, expected_crc: int, source: str) -> bytes:
    """The JSON text of an index block (UTF-8, not parsed), after checking its checksum."""
    if zlib.crc32(raw) != expected_crc:
        raise ChecksumError(f"{source}: index checksum mismatch; the file is damaged")
    try:
        text: bytes = zstandard.ZstdDecompressor().decompress(raw, max_output_size=MAX_INDEX_BYTES)
    except zstandard.ZstdError as err:
        raise FormatError(f"{source}: index block does not decode: {err}") from err
    return text


def unpack_index(raw: bytes, expected_crc: int, source: str) -> list[dict[str, Any]]:
    """The entries of an index block, after checking its checksum."""
    return unpack_index_object(raw, expected_crc, source)[0]


def unpack_index_object(
    raw: bytes, expected_crc: int, source: str
) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
    """The entries of an index block and its ``image_series`` (None when absent)."""
    text = index_text(raw, expected_crc, source)
    try:
        data = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(f"{source}: index block does not decode: {err}") from err
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise FormatError(f"{source}: index block holds no entry list")
    series = data.get("image_series")
    if series is not None and not (
        isinstance(series, dict)
        and isinstance(series.get("SeriesInstanceUID"), str)
        and all(isinstance(series.get(k, ""), str) for k in IMAGE_SERIES_KEYS)
    ):
        raise FormatError(f"{source}: the index's image_series is malformed: {series!r}")
    kept = None if series is None else {k: series[k] for k in IMAGE_SERIES_KEYS if series.get(k)}
    return entries, kept
