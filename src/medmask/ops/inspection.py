"""What an archive holds and whether it is intact: ``medmask info`` and ``medmask verify``.

:func:`describe_archive` reads the superblocks, geometry and index (every checksum but
the blobs'); :func:`verify_archive` also checks every blob's checksum, decodes every
mask and compares what it decoded with what the index says.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MedmaskError
from ..files.archive import MaskArchive
from ..format import mska as fmt
from ..model.bbox import bounding_box
from ..model.space import space_to_dict, voxel_volume_ml

__all__ = [
    "ArchiveInfo",
    "VerifyResult",
    "archives_in",
    "describe_archive",
    "list_masks",
    "verify_archive",
]


@dataclass(frozen=True)
class ArchiveInfo:
    """Format, geometry, sizes and codecs of one archive."""

    path: Path
    format_version: str
    file_bytes: int
    data_bytes: int
    index_bytes: int
    generation: int | None
    geometry: dict[str, Any] | None
    voxel_ml: float
    masks: int
    groups: int
    empty: int
    codecs: dict[str, int]
    slots: list[str]
    trailing_bytes: int
    image_series: dict[str, str] | None = None  # the DICOM series recorded (``pack --source``)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "path": str(self.path),
            "format_version": self.format_version,
            "file_bytes": self.file_bytes,
            "data_bytes": self.data_bytes,
            "index_bytes": self.index_bytes,
            "generation": self.generation,
            "geometry": self.geometry,
            "voxel_ml": self.voxel_ml,
            "masks": self.masks,
            "groups": self.groups,
            "empty": self.empty,
            "codecs": self.codecs,
            "image_series": self.image_series,
            "slots": self.slots,
            "trailing_bytes": self.trailing_bytes,
        }


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_archive`: ``ok`` unless something is damaged."""

    path: Path
    checked: int = 0
    damaged: list[str] = field(default_factory=list)  # one line per damaged part
    notes: list[str] = field(default_factory=list)  # not damage, worth knowing

    @property
    def ok(self) -> bool:
        """No damage found."""
        return not self.damaged


def list_masks(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One row per mask of an archive (``medmask ls``): its statistics (name, voxel
    count, volume in ml, bounding box), its labels, and for a group its members.

    Read from the index only: no mask is decoded.
    """
    with MaskArchive(path) as opened:
        stats = opened.statistics()
        mappings = opened.read_all_mapping()
        groups = opened.groups()
    rows = []
    for name, stat in stats.items():
        row = stat.to_dict()
        row["labels"] = mappings[name].to_dict()
        if name in groups:
            row["members"] = list(groups[name])
        rows.append(row)
    return rows


def describe_archive(path: str | os.PathLike[str]) -> ArchiveInfo:
    """Read an archive's superblocks, geometry and index and summarize them.

    Raises
    ------
    FormatError, ChecksumError
        The header, geometry or index is damaged (the archive cannot be opened).
    """
    target = Path(path)
    with MaskArchive(target) as archive:
        storage = archive.storage()
        stats = archive.statistics()
        commit = archive.commit
        space = archive.space
        version = archive.format_version
        series = archive.image_series
    file_bytes = target.stat().st_size
    slots, trailing = _slot_report(target, file_bytes, version)
    return ArchiveInfo(
        path=target,
        format_version=version,
        file_bytes=file_bytes,
        data_bytes=sum(s.stored_bytes for s in storage.values()),
        index_bytes=commit.index_length if commit else 0,
        generation=commit.generation if commit else None,
        geometry=space_to_dict(space) if space is not None else None,
        voxel_ml=voxel_volume_ml(space) if space is not None else 0.0,
        masks=sum(1 for s in storage.values() if s.kind != "group"),
        groups=sum(1 for s in storage.values() if s.kind == "group"),
        empty=sum(1 for s in stats.values() if s.voxel_count == 0),
        codecs=dict(Counter(s.codec for s in storage.values())),
        slots=slots,
        trailing_bytes=trailing,
        image_series=series,
    )


def archives_in(paths: list[Path]) -> list[Path]:
    """``paths`` with each folder replaced by the archives under it (``.mska``, sorted):
    what ``medmask verify`` checks.

    Raises
    ------
    MedmaskError
        A folder without any archive under it.
    """
    from .catalog import find_archives  # noqa: PLC0415 - (pyarrow) only for a folder

    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        inside = find_archives(path)
        if not inside:
            raise MedmaskError(f"{path}: no .mska archive under this folder")
        found += inside
    return found


def verify_archive(path: str | os.PathLike[str]) -> VerifyResult:
    """Check every checksum and decode every mask of an archive.

    Never raises for a damaged archive: each damaged part (superblock slot, geometry,
    index, a mask's blob or content) is one line of :attr:`VerifyResult.damaged`.
    """
    target = Path(path)
    result = VerifyResult(target)
    try:
        file_bytes = target.stat().st_size
        archive = MaskArchive(target)
    except (MedmaskError, OSError) as err:
        result.damaged.append(f"cannot be opened: {err}")
        return result
    with archive:
        slots, trailing = _slot_report(target, file_bytes, archive.format_version)
        result.damaged += [s for s in slots if "damaged" in s]
        if trailing:
            result.notes.append(
                f"{trailing} bytes after the last commit (an interrupted write; "
                "the next writer drops them)"
            )
        stats = archive.statistics() if archive.format_version != "0.1.3" else {}
        for name in archive:
            result.checked += 1
            problem = _check_mask(archive, name, stats.get(name))
            if problem:
                result.damaged.append(f"{name!r}: {problem}")
    return result


def _check_mask(archive: MaskArchive, name: str, expected: Any) -> str | None:
    try:
        crop, offset = archive.load_crop(name)
    except (MedmaskError, ValueError) as err:
        return str(err)
    if expected is None:  # medmask 0.1.3 archives store no statistics to compare with
        return None
    count = int(np.count_nonzero(crop))
    if count != expected.voxel_count:
        return f"decodes to {count} voxels, the index says {expected.voxel_count}"
    box = bounding_box(crop)
    if box is not None:
        found = tuple((o + a, o + b) for o, (a, b) in zip(offset, box, strict=True))
        if expected.bbox is not None and found != tuple(expected.bbox):
            return f"decodes to bounding box {found}, the index says {expected.bbox}"
    return None


def _slot_report(target: Path, file_bytes: int, version: str) -> tuple[list[str], int]:
    """One line per superblock slot, and the bytes beyond the newest commit."""
    if version == "0.1.3":
        return ["medmask 0.1.3 header (no superblocks)"], 0
    with target.open("rb") as handle:
        head = handle.read(fmt.DATA_START)
    lines, newest = [], 0
    for letter, slot in zip("AB", fmt.read_slots(head, file_bytes), strict=True):
        if slot is None:
            lines.append(f"slot {letter}: unused")
        elif isinstance(slot, str):
            lines.append(f"slot {letter}: damaged ({slot})")
        else:
            newest = max(newest, slot.data_end)
            lines.append(f"slot {letter}: generation {slot.generation}, ok")
    return lines, max(0, file_bytes - newest) if newest else 0
