"""Reading an archive: the API :class:`~medmask.files.archive.MaskArchive` shares with
the read-only reader of medmask 0.1.3's archives (:mod:`medmask.files.legacy`).

:class:`ArchiveReader` holds every read of MedMask's API (``load_mask``, ``all_names``,
``read_all_mapping``, ``read_all_masks``), crops, statistics from the index and how masks
are stored; it has no writing method. :class:`~medmask.files.archive.MaskArchive` adds
the writes; the 0.1.3 reader adds nothing but its own decoding, so it cannot be written
by type, not by a check at each call.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, Self

import numpy as np
from numpy.typing import NDArray
from spacetransformer import Space

from ..codecs import (
    CodecId,
    EncodedMask,
    LabelReader,
    decode_crop,
    decode_mask,
)
from ..deprecation import warn_deprecated
from ..errors import ChecksumError, FormatError, MaskNotFoundError, MedmaskError
from ..format import mska as fmt
from ..format.commit import Committed
from ..model.bbox import BBox
from ..model.groups import group_values, union_of
from ..model.label_values import MASK_DTYPES
from ..model.mapping import LabelMapping
from ..model.mask import LabelStatistics, SegmentationMask, warn_legacy_axis_order
from ..model.meaning import SegmentMeaning
from ..model.space import spaces_close, voxel_volume_ml
from .index import Entry, Index
from .opened import ArchiveMode

__all__ = ["ArchiveReader", "MaskStatistics", "StoredMask", "describe_space"]


@dataclass(frozen=True)
class MaskStatistics:
    """Size and extent of one stored mask, read from the index without decoding."""

    name: str
    voxel_count: int
    volume_ml: float
    bbox: BBox | None
    label_counts: dict[int, int]
    label_bboxes: dict[int, BBox] | None = None  # several labels: each one's box (None: unknown)
    centroid: tuple[float, float, float] | None = None  # mean voxel index (None: empty, or
    # an index from a writer before voxel_sums)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {
            "name": self.name,
            "voxel_count": self.voxel_count,
            "volume_ml": self.volume_ml,
            "bbox": [list(axis) for axis in self.bbox] if self.bbox else None,
            "label_counts": {str(k): v for k, v in self.label_counts.items()},
        }
        if self.label_bboxes is not None:
            out["label_bboxes"] = {
                str(k): [list(axis) for axis in v] for k, v in self.label_bboxes.items()
            }
        if self.centroid is not None:
            out["centroid"] = list(self.centroid)
        return out


@dataclass(frozen=True)
class StoredMask:
    """How one mask is stored: kind, codec and bytes on disk (for ``medmask info``)."""

    name: str
    kind: Literal["mask", "group", "legacy"]
    codec: str  # CodecId name, or "medmask-0.1.3"
    dtype: str
    stored_bytes: int
    members: tuple[str, ...]
    file_label: int | None = None  # its label in the multi-label file it was packed from
    nifti_codes: tuple[int, int] | None = None  # (qform, sform) codes of its NIfTI file


class OpenedFile(Protocol):
    """What a reader reads through: the open file's name, geometry, index and bytes
    (:class:`~medmask.files.opened.ArchiveFile` for this format, which also stages and
    commits; an in-memory copy for a 0.1.3 archive)."""

    path: Path
    space: Space | None
    entries: Index
    committed: Committed | None
    geometry_written: bool
    batch_depth: int

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes of the file at ``offset``."""
        ...  # pragma: no cover - a protocol

    def enter(self) -> None:
        """A ``with`` block starts."""
        ...  # pragma: no cover - a protocol

    def leave(self) -> bool:
        """A ``with`` block ends; whether it was the outermost."""
        ...  # pragma: no cover - a protocol


class ArchiveReader:
    """The reading API of an open archive (this format's or medmask 0.1.3's): what
    :class:`~medmask.files.archive.MaskArchive` and the 0.1.3 reader share. Opened by
    ``MaskArchive(path)``, which picks the reader by the file's first bytes."""

    _state: OpenedFile
    _mode: ArchiveMode
    _closed: bool
    _finalizer: Callable[[], Any]

    def _take_space(self, space: Space) -> None:
        """The ``space`` argument of a reader: checked against the archive's geometry."""
        state = self._state
        if state.space is not None and not spaces_close(state.space, space):
            if spaces_close(state.space, space.reverse_axis_order()):
                warn_legacy_axis_order("MaskArchive(space=...)")  # MedMask's reversed Space
                return
            raise ValueError(
                f"{state.path}: space {describe_space(space)} does not match the archive's "
                f"geometry {describe_space(state.space)}"
            )

    # -- context and lifetime ----------------------------------------------------------------
    def __enter__(self) -> Self:
        self._state.enter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._state.leave()
        self.close()

    def close(self) -> None:
        """Commit what is staged (writers) and release the file; safe to call twice.

        Writer objects opened on one file in one process share it: the file is released
        when the last of them is closed.
        """
        self._closed = True
        self._finalizer()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def mode(self) -> ArchiveMode:
        """The mode the archive was opened with: "r", "w" or "a"."""
        return self._mode

    # -- collection protocol ---------------------------------------------------------------
    @property
    def space(self) -> Space | None:
        """The archive's geometry (None for a new, empty archive without one)."""
        return self._state.space

    @property
    def path(self) -> Path:
        """The archive file."""
        return self._state.path

    def all_names(self) -> list[str]:
        """Names in the order they were added."""
        return list(self._state.entries)

    def __contains__(self, name: object) -> bool:
        return name in self._state.entries

    def __len__(self) -> int:
        return len(self._state.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._state.entries))

    def __repr__(self) -> str:
        return f"MaskArchive({str(self._state.path)!r}, mode={self._mode!r}, masks={len(self)})"

    # -- reading ---------------------------------------------------------------------------
    def load_mask(self, name: str) -> SegmentationMask:
        """The mask stored as ``name`` (groups included), full size, in its original dtype."""
        entry = self._entry(name)
        space = self._require_space()
        mapping = LabelMapping(entry.mapping)
        present = {int(label) for label in entry.label_counts}
        trusted = present <= set(mapping.labels())
        if entry.kind == "mask" and entry.codec == CodecId.LABEL_LAYERS and trusted:
            # decoded on first use, so that one name of a label map paints only its layer
            source = _StoredLabels(self._encoded(entry), f"{self._state.path} [{name}]")
            mask = SegmentationMask._stored(source, mapping, space)
            mask.nifti_codes = entry.nifti_codes
            return mask
        if entry.kind == "mask":
            with self._decoding(name):
                full = decode_mask(self._encoded(entry))
        else:
            crop, offset = self.load_crop(name)
            full = np.zeros(self._shape(), dtype=crop.dtype)
            if crop.size:
                full[tuple(slice(o, o + n) for o, n in zip(offset, crop.shape, strict=True))] = crop
        if not trusted:  # written by another tool? validate fully
            mask = SegmentationMask(full, mapping, space)
        else:
            mask = SegmentationMask._trusted(full, mapping, space)
        mask.nifti_codes = entry.nifti_codes
        return mask

    def load_segmask(self, name: str) -> SegmentationMask:
        """medmask 0.1.3's name of :meth:`load_mask`."""
        warn_deprecated("MaskArchive.load_segmask", "use MaskArchive.load_mask")
        return self.load_mask(name)

    def load_crop(self, name: str) -> tuple[NDArray[Any], tuple[int, int, int]]:
        """The mask cropped to its bounding box, and the index of the crop's first voxel.

        An empty mask gives a ``(0, 0, 0)`` array at ``(0, 0, 0)``.
        """
        entry = self._entry(name)
        with self._decoding(name):
            if entry.kind == "group":
                return self._group_crop(entry)
            return decode_crop(self._encoded(entry))

    def read_all_mapping(self) -> dict[str, LabelMapping]:
        """``{name: LabelMapping}`` of every stored mask, without decoding."""
        return {n: LabelMapping(e.mapping) for n, e in self._state.entries.items()}

    def index_records(self) -> list[dict[str, Any]]:
        """The index entries as stored: JSON objects whose default values are left out
        (docs/mask-format.md, "Index block"), not validated. For tools that read the
        indexes of many archives and apply the spec's defaults themselves (the catalog);
        :meth:`statistics` and the other methods validate what they read."""
        return self._state.entries.records()

    def read_all_masks(self) -> dict[str, SegmentationMask]:
        """Every mask, decoded, by name."""
        return {name: self.load_mask(name) for name in self._state.entries}

    def statistics(self) -> dict[str, MaskStatistics]:
        """Voxel count, volume (ml) and bounding box of every mask, from the index alone."""
        ml = voxel_volume_ml(self._state.space) if self._state.space is not None else 0.0
        out = {}
        for name, entry in self._state.entries.items():
            boxes = _label_boxes(entry)
            sums = entry.voxel_sums
            centroid = (
                None
                if sums is None or not entry.count
                else (sums[0] / entry.count, sums[1] / entry.count, sums[2] / entry.count)
            )
            out[name] = MaskStatistics(
                name, entry.count, entry.count * ml, entry.bbox, dict(entry.label_counts), boxes,
                centroid,
            )  # fmt: skip
        return out

    def label_statistics(self, name: str) -> dict[str, LabelStatistics]:
        """Per name of the mask ``name`` (a label map's organs): what ``statistics()`` of
        the loaded mask gives, from the index alone.

        Masks of several labels written before the index kept each label's box
        (``label_bboxes``) are decoded instead.
        """
        entry = self._entry(name)
        boxes = _label_boxes(entry)
        if boxes is None:
            return self.load_mask(name).statistics()
        ml = voxel_volume_ml(self._require_space())
        out = {}
        for label_name, label in entry.mapping.items():
            count = entry.label_counts.get(label, 0)
            out[label_name] = LabelStatistics(
                label_name, label, count, count * ml, boxes.get(label)
            )
        return out

    def meaning(self, name: str) -> SegmentMeaning | None:
        """What the file ``name`` was packed from said the mask is (None: nothing was said).

        Raises
        ------
        MaskNotFoundError
            ``name`` is not in the archive.
        """
        return self._entry(name).meaning

    def storage(self) -> dict[str, StoredMask]:
        """How every mask is stored, from the index alone."""
        out = {}
        known = {c.value: c.name for c in CodecId}
        for name, entry in self._state.entries.items():
            codec = known.get(entry.codec, f"unknown ({entry.codec})")
            out[name] = StoredMask(
                name, entry.kind, codec, entry.dtype, entry.length, entry.members,
                entry.file_label, entry.nifti_codes,
            )  # fmt: skip
        return out

    @property
    def image_series(self) -> dict[str, str] | None:
        """The DICOM image series the masks were drawn on, when the archive records it:
        ``{"SeriesInstanceUID": ..., "FrameOfReferenceUID": ..., "StudyInstanceUID": ...}``
        (the last two when known); None otherwise."""
        series = getattr(self._state, "image_series", None)
        return dict(series) if series else None

    @property
    def format_version(self) -> str:
        """``"2.0"`` for this medmask's format, ``"0.1.3"`` for a medmask 0.1.3 archive."""
        return ".".join(map(str, fmt.FORMAT_VERSION))

    @property
    def commit(self) -> fmt.Superblock | None:
        """The archive's last commit (None: never committed, or a 0.1.3 archive)."""
        committed = self._state.committed
        return committed.superblock if committed else None

    @property
    def header(self) -> dict[str, int]:
        """medmask 0.1.3's header dict: where geometry, index and data lie, and the mask count.

        For a 0.1.3 archive its own header; for this format the same keys describe the
        geometry block, the index block and the blobs before it, plus the ``generation``.
        """
        warn_deprecated(
            "MaskArchive.header", "use len(archive), archive.commit or archive.storage()"
        )
        state = self._state
        block = self.commit
        return {
            "space_offset": fmt.GEOMETRY_OFFSET if state.geometry_written else 0,
            "space_length": fmt.GEOMETRY_SIZE if state.geometry_written else 0,
            "index_offset": block.index_offset if block else 0,
            "index_length": block.index_length if block else 0,
            "data_offset": fmt.DATA_START if block else 0,
            "data_length": block.index_offset - fmt.DATA_START if block else 0,
            "mask_count": len(state.entries),
            "generation": block.generation if block else 0,
        }

    def groups(self) -> dict[str, tuple[str, ...]]:
        """``{group name: member names}``."""
        return {n: e.members for n, e in self._state.entries.items() if e.kind == "group"}

    # -- internals -------------------------------------------------------------------------
    def _encoded(self, entry: Entry) -> EncodedMask:
        return EncodedMask(
            CodecId(entry.codec), entry.dtype, self._shape(), entry.bbox, self._blob(entry)
        )

    def _decoding(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Name the archive and mask in decoding errors."""
        return _named_errors(f"{self._state.path} [{name}]")

    def _entry(self, name: str) -> Entry:
        if self.closed:
            raise ValueError(f"{self._state.path}: archive is closed")
        try:
            return self._state.entries[name]
        except KeyError:
            known = ", ".join(list(self._state.entries)[:8])
            raise MaskNotFoundError(
                f"no mask named {name!r} in {self._state.path} (has: {known} ...)"
            ) from None

    def _shape(self) -> tuple[int, int, int]:
        space = self._require_space()
        return (int(space.shape[0]), int(space.shape[1]), int(space.shape[2]))

    def _require_space(self) -> Space:
        if self._state.space is None:
            raise MedmaskError(f"{self._state.path}: the archive has no geometry yet")
        return self._state.space

    def _blob(self, entry: Entry) -> bytes:
        data = self._state.read(entry.offset, entry.length)
        if zlib.crc32(data) != entry.crc:
            raise ChecksumError(
                f"{self._state.path}: data of {entry.name!r} fails its checksum; damaged"
            )
        return data

    def _union(self, names: tuple[str, ...]) -> tuple[NDArray[np.bool_], BBox | None]:
        return union_of([self.load_crop(n) for n in names])

    def _group_crop(self, entry: Entry) -> tuple[NDArray[Any], tuple[int, int, int]]:
        if entry.dtype not in MASK_DTYPES:
            raise FormatError(f"unsupported stored dtype {entry.dtype!r}")
        dtype = np.dtype(entry.dtype)
        extent = entry.bbox
        if extent is None:
            return np.zeros((0, 0, 0), dtype=dtype), (0, 0, 0)
        residual = None
        if entry.length:
            if entry.residual_bbox is None:
                raise FormatError("group residual without a bounding box")
            encoded = EncodedMask(
                CodecId(entry.codec), "bool", self._shape(), entry.residual_bbox, self._blob(entry)
            )
            residual = (decode_crop(encoded)[0], entry.residual_bbox)
        label = next(iter(entry.mapping.values()), 1)
        values = group_values(self._union(entry.members), residual, extent, label, dtype)
        return values, (extent[0][0], extent[1][0], extent[2][0])


@contextlib.contextmanager
def _named_errors(where: str) -> Iterator[None]:
    """Name the archive and mask (``where``) in decoding errors."""
    try:
        yield
    except ChecksumError:
        raise
    except ValueError as err:  # FormatError, and CodecId of an unknown id
        raise FormatError(f"{where}: {err}") from err


class _StoredLabels:
    """A label map's codec 5 blob, checksummed, decoded when the mask first needs it.

    Single labels are painted from their layer alone. Read in increasing order (a loop
    over the names) that decodes each layer once; out of order, each read may start
    again from the first layer, so once single reads have decoded twice the layers of
    a full decode, the mask decodes the whole array instead and serves the rest from it.
    """

    def __init__(self, encoded: EncodedMask, where: str) -> None:
        self.encoded, self.where = encoded, where
        self.shape = encoded.shape
        self.dtype: np.dtype[Any] = np.dtype(encoded.dtype)
        self._reader: LabelReader | None = None
        self._spent = 0  # layers decoded so far for single labels

    def decode_all(self) -> NDArray[Any]:
        with _named_errors(self.where):
            return decode_mask(self.encoded)

    def decode_label(self, label: int) -> NDArray[np.bool_] | None:
        with _named_errors(self.where):
            if self._reader is None:
                self._reader = LabelReader(self.encoded)
            reader = self._reader
            if label in reader.labels:
                layer = reader.labels.index(label)
                start = reader.position if layer >= reader.position else 0
                if self._spent + layer + 1 - start > 2 * len(reader.labels):
                    return None
                self._spent += layer + 1 - start
            return reader.read(label)


def describe_space(space: Space) -> str:
    shape = "x".join(str(int(n)) for n in space.shape)
    spacing = ", ".join(f"{float(v):g}" for v in space.spacing)
    origin = ", ".join(f"{float(v):.4g}" for v in space.origin)
    return f"{shape} voxels of ({spacing}) mm at ({origin})"


def _label_boxes(entry: Entry) -> dict[int, BBox] | None:
    """Each label's box from the index; None when the index does not know them."""
    if entry.label_bboxes is not None:
        return dict(entry.label_bboxes)
    present = [label for label, count in entry.label_counts.items() if count]
    if len(present) > 1:
        return None
    return {present[0]: entry.bbox} if present and entry.bbox is not None else {}
