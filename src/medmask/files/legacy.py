"""medmask 0.1.3's archives (``MSKA``), read-only: ``MaskArchive(path)`` opens them too.

:class:`~medmask.files.archive.MaskArchive` looks at a file's first bytes and hands
0.1.3 archives to :class:`LegacyMaskArchive` (nibabel's ``loadsave`` picks an image class
the same way), so the format-2 reader carries no branches for them; the reader has no
writing method to call. They convert to format 2 with
:func:`medmask.convert_legacy_archive` (``medmask convert``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from spacetransformer import Space

from ..codecs.legacy import decode_legacy_blob
from ..deprecation import check_legacy_codec, warn_deprecated
from ..errors import FormatError
from ..format.commit import Committed
from ..format.legacy_mska import legacy_archive_header, unpack_legacy_archive
from ..model.bbox import bounding_box
from ..model.mask import LabelStatistics, SegmentationMask
from ..model.space import voxel_volume_ml
from .index import Entry, Index
from .opened import ArchiveMode
from .reader import ArchiveReader, MaskStatistics, StoredMask

__all__ = ["LegacyMaskArchive"]


@dataclass
class _LegacyFile:
    """A 0.1.3 archive read whole into memory: what :class:`ArchiveReader` reads through
    (:class:`~medmask.files.reader.OpenedFile`), nothing to commit or release."""

    path: Path
    space: Space | None
    entries: Index
    data: bytes
    committed: Committed | None = None
    geometry_written: bool = False
    batch_depth: int = 0

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    def enter(self) -> None:
        self.batch_depth += 1

    def leave(self) -> bool:
        self.batch_depth -= 1
        return self.batch_depth == 0


class LegacyMaskArchive(ArchiveReader):
    """A medmask 0.1.3 archive, read-only by type: the reading API of
    :class:`~medmask.files.archive.MaskArchive` and no writing method."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        mode: ArchiveMode = "r",
        *,
        space: Space | None = None,
        level: int | None = None,
        codec: str | None = None,
    ) -> None:
        check_legacy_codec(codec, "MaskArchive")
        source = os.fspath(path)
        if mode not in ("r", "w", "a"):
            raise ValueError(f"mode must be 'r', 'w' or 'a', got {mode!r}")
        if mode != "r":
            raise FormatError(
                f"{source}: a medmask 0.1.3 archive opens read-only; "
                "convert it with `medmask convert` or medmask.convert_legacy_archive"
            )
        data = Path(path).read_bytes()
        legacy = unpack_legacy_archive(data, source)
        try:
            # 0.1.3 wrote the Space with its axes reversed and reversed it back on reading.
            geometry = Space.from_json(legacy.space_json.decode("utf-8")).reverse_axis_order()
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
            raise FormatError(f"{source}: medmask 0.1.3 geometry is damaged: {err!r}") from err
        self._data = data  # read whole: nothing stays open
        self._mode = mode
        self._state = _LegacyFile(Path(path), geometry, Index(len(data), source), data)
        for item in legacy.entries:
            mapping = {str(k): int(v) for k, v in dict(item.get("mapping") or {}).items()}
            name = str(item["name"])
            self._state.entries[name] = Entry(
                name, "legacy", mapping, "", -1, None,
                int(item["offset"]), int(item["length"]), 0, -1, {},
            )  # fmt: skip
        self._closed = False
        if space is not None:
            self._take_space(space)

    def close(self) -> None:
        """Nothing to release: the file was read whole."""
        self._closed = True

    def load_mask(self, name: str) -> SegmentationMask:
        """The mask stored as ``name``, full size, in the dtype 0.1.3 stored."""
        entry = self._entry(name)
        blob = self._data[entry.offset : entry.offset + entry.length]
        array = decode_legacy_blob(blob, f"{self._state.path} [{name}]")
        return SegmentationMask(array, entry.mapping, self._require_space())

    def load_crop(self, name: str) -> tuple[NDArray[Any], tuple[int, int, int]]:
        """As :meth:`MaskArchive.load_crop` (0.1.3 stored whole arrays: decoded, then cut)."""
        full = np.asarray(self.load_mask(name).data)
        box = bounding_box(full)
        if box is None:
            return np.zeros((0, 0, 0), dtype=full.dtype), (0, 0, 0)
        crop = full[tuple(slice(a, b) for a, b in box)].copy()
        return crop, (box[0][0], box[1][0], box[2][0])

    def statistics(self) -> dict[str, MaskStatistics]:
        """Voxel counts and boxes (0.1.3 keeps none: every mask is decoded)."""
        space = self._require_space()
        ml = voxel_volume_ml(space)
        out = {}
        for name in self:
            data = np.asarray(self.load_mask(name).data)
            count = int(np.count_nonzero(data))
            centroid = None
            if count:
                where = np.nonzero(data)
                centroid = (float(where[0].mean()), float(where[1].mean()), float(where[2].mean()))
            out[name] = MaskStatistics(
                name, count, count * ml, bounding_box(data), {}, None, centroid
            )
        return out

    def label_statistics(self, name: str) -> dict[str, LabelStatistics]:
        """Per name of the mask ``name``, decoded (0.1.3 keeps no statistics)."""
        return self.load_mask(name).statistics()

    def storage(self) -> dict[str, StoredMask]:
        """Every mask as 0.1.3 stored it."""
        return {
            name: StoredMask(name, "legacy", "medmask-0.1.3", "", entry.length, ())
            for name, entry in self._state.entries.items()
        }

    @property
    def format_version(self) -> str:
        """``"0.1.3"``."""
        return "0.1.3"

    @property
    def header(self) -> dict[str, int]:
        """0.1.3's own header fields."""
        warn_deprecated(
            "MaskArchive.header", "use len(archive), archive.commit or archive.storage()"
        )
        return legacy_archive_header(self._data)
