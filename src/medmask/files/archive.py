"""``MaskArchive``: every named mask of one scan in one ``.mska`` file.

MedMask's API (``add_mask``/``add_segmask``, ``load_mask``/``load_segmask``,
``all_names``, ``read_all_mapping``, ``read_all_masks``) on the checksummed format of
docs/mask-format.md, plus groups, crops, statistics without decoding, remove/replace and
``compact``. As in MedMask, every change is committed when the call returns (another
process sees it; a crash keeps it); inside ``with archive:`` or ``with archive.batch():``
changes wait for the end of the block and are committed together.

The open file (lock, staging, commits) is :mod:`medmask.files.opened`, the group
arithmetic :mod:`medmask.model.groups`; medmask 0.1.3 archives are read by
:mod:`medmask.files.legacy`, which ``MaskArchive(path)`` picks by the file's magic.
"""

from __future__ import annotations

import contextlib
import os
import weakref
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from spacetransformer import Space

from ..codecs import (
    DEFAULT_LEVEL,
    CodecId,
    EncodedMask,
    LabelReader,
    decode_crop,
    decode_mask,
    encode_mask,
)
from ..deprecation import check_legacy_codec, warn_deprecated
from ..errors import ChecksumError, FormatError, MaskNotFoundError, MedmaskError
from ..format import mska as fmt
from ..model.bbox import BBox, bounding_box, label_extents
from ..model.groups import group_values, slices, union_of
from ..model.label_values import LABEL_MAX, MASK_DTYPES
from ..model.mapping import LabelMapping, as_label
from ..model.mask import LabelStatistics, SegmentationMask, warn_legacy_axis_order
from ..model.meaning import SegmentMeaning
from ..model.space import spaces_close, voxel_volume_ml
from .atomic import atomic_path, check_writable
from .index import Entry
from .opened import ArchiveMode, open_archive_file

__all__ = [
    "ArchiveMode",
    "MaskArchive",
    "MaskStatistics",
    "StoredMask",
    "convert_legacy_archive",
    "select_masks",
]


@dataclass(frozen=True)
class MaskStatistics:
    """Size and extent of one stored mask, read from the index without decoding."""

    name: str
    voxel_count: int
    volume_ml: float
    bbox: BBox | None
    label_counts: dict[int, int]
    label_bboxes: dict[int, BBox] | None = None  # several labels: each one's box (None: unknown)

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


class MaskArchive:
    """A ``.mska`` file of named masks sharing one geometry.

    Parameters
    ----------
    path : str or os.PathLike
        The archive file.
    mode : {"r", "w", "a"}
        Read; write a new archive (replacing any file); or add to an existing one
        (created if missing). Writers hold an exclusive lock: a second writer gets
        :class:`~medmask.errors.ArchiveLockedError`. Readers need no lock.
    space : spacetransformer.Space, optional
        The archive's geometry; by default the first added mask's.
    level : int, optional
        compression level for new blobs (default :data:`medmask.codecs.DEFAULT_LEVEL`).

    Raises
    ------
    FileNotFoundError
        Mode "r" and no such file.
    FormatError, ChecksumError
        The file is not a readable archive.

    Examples
    --------
    >>> with MaskArchive("organs.mska", mode="w", space=space) as archive:  # doctest: +SKIP
    ...     archive.add_mask(liver, "liver")
    >>> MaskArchive("organs.mska").load_mask("liver")  # doctest: +SKIP
    """

    def __new__(cls, path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> MaskArchive:
        """The reader for the file's format, chosen by its first bytes (0.1.3's or this).

        Mode "w" always writes this format (over any file).
        """
        mode = args[0] if args else kwargs.get("mode", "r")
        if cls is MaskArchive and mode != "w":
            try:
                with Path(path).open("rb") as stream:
                    head = stream.read(8)
            except OSError:
                head = b""  # a new file, or an error the constructor reports
            for magic, reader in _READERS:
                if head.startswith(magic):
                    return super().__new__(reader)
        return super().__new__(cls)

    def __init__(
        self,
        path: str | os.PathLike[str],
        mode: ArchiveMode = "r",
        *,
        space: Space | None = None,
        level: int | None = None,
        codec: str | None = None,
    ) -> None:
        if mode not in ("r", "w", "a"):
            raise ValueError(f"mode must be 'r', 'w' or 'a', got {mode!r}")
        check_legacy_codec(codec, "MaskArchive")
        target = Path(path)
        self._mode: ArchiveMode = mode
        self._closed = False
        self._state, shared = open_archive_file(
            target, mode, DEFAULT_LEVEL if level is None else level
        )
        self._finalizer = weakref.finalize(self, self._state.release)
        try:
            if shared and mode == "w":
                self._state.reset()
            elif not shared:
                self._load()
            if space is not None:
                self._take_space(space)
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------------------------
    def _load(self) -> None:
        self._state.load(str(self._state.path))

    def _take_space(self, space: Space) -> None:
        """The ``space`` argument: the archive's geometry if it has none, else checked."""
        state = self._state
        if state.space is None:
            # Committed with the first mask (or at close): until then a MedMask-style
            # reversed Space can still give way to the first mask's (see add_mask).
            state.space = space
            state.dirty = state.writable
        elif not spaces_close(state.space, space):
            if spaces_close(state.space, space.reverse_axis_order()):
                warn_legacy_axis_order("MaskArchive(space=...)")  # MedMask's reversed Space
                return
            raise ValueError(
                f"{state.path}: space {_describe(space)} does not match the archive's "
                f"geometry {_describe(state.space)}"
            )

    # -- context and lifetime ----------------------------------------------------------------
    def __enter__(self) -> MaskArchive:
        self._state.batch_depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._state.batch_depth -= 1
        self.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[MaskArchive]:
        """Changes inside the block are committed together at its end (one commit, faster).

        Examples
        --------
        >>> with archive.batch():  # doctest: +SKIP
        ...     for name, mask in masks.items():
        ...         archive.add_mask(mask, name)
        """
        self._writable()
        self._state.batch_depth += 1
        try:
            yield self
        finally:
            self._state.batch_depth -= 1
            if self._state.batch_depth == 0 and not self.closed:
                self._state.commit()

    def close(self) -> None:
        """Commit what is staged (writers) and release the file; safe to call twice.

        Writer objects opened on one file in one process share it: the file is released
        when the last of them is closed.
        """
        self._closed = True
        self._finalizer()

    def flush(self) -> None:
        """Commit staged changes now (inside a batch): afterwards a crash keeps them."""
        self._writable()
        self._state.commit()

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

    # -- writing ---------------------------------------------------------------------------
    def add_mask(
        self,
        mask: SegmentationMask,
        name: str,
        *,
        replace: bool = False,
        file_label: int | None = None,
        meaning: SegmentMeaning | None = None,
    ) -> None:
        """Store ``mask`` under ``name``.

        ``file_label`` is the label the mask had in a multi-label file it was cut from
        (``medmask pack labels.nii.gz`` stores one mask per label): a multi-label file
        written back from the archive gives it that value again. ``meaning`` is what a
        SEG or Slicer file said the mask is (codes, colour, algorithm): ``export-seg``
        and ``export-slicer`` write it back (:meth:`meaning`).

        Raises
        ------
        ValueError
            The name is taken (pass ``replace=True``), or the mask's geometry differs
            from the archive's.
        """
        self._writable()
        self._check_name(name, replace)
        state = self._state
        if not isinstance(mask, SegmentationMask):
            raise TypeError(f"add_mask needs a SegmentationMask, got {type(mask).__name__}")
        if state.space is None:
            state.space = mask.space
        elif not spaces_close(state.space, mask.space):
            if not (
                # MedMask code opened the archive with its axes reversed (as the notebook's
                # Space.from_nifty(...).reverse_axis_order()); its masks carry the Space
                # of their arrays, which is the same grid: until geometry is on disk, use it.
                not state.geometry_written
                and not state.entries
                and spaces_close(state.space.reverse_axis_order(), mask.space)
            ):
                raise ValueError(
                    f"mask {name!r} has geometry {_describe(mask.space)}, "
                    f"the archive {_describe(state.space)}"
                )
            state.space = mask.space
        array = np.asarray(mask.data)
        encoded = encode_mask(array, level=state.level)
        counts, boxes = _label_extents(array, encoded.bbox)
        if file_label is not None and not 0 < as_label(file_label, "file_label") <= LABEL_MAX:
            raise ValueError(f"file_label must be in 1..{LABEL_MAX}, got {file_label!r}")
        if meaning is not None and not isinstance(meaning, SegmentMeaning):
            raise TypeError(f"meaning must be a SegmentMeaning, got {type(meaning).__name__}")
        self._store(
            name, "mask", mask.mapping.to_dict(), encoded, counts, (),
            file_label=file_label, nifti_codes=mask.nifti_codes, label_bboxes=boxes,
            meaning=meaning,
        )  # fmt: skip

    def add_segmask(self, segmask: SegmentationMask, name: str) -> None:
        """medmask 0.1.3's name of :meth:`add_mask`."""
        warn_deprecated("MaskArchive.add_segmask", "use MaskArchive.add_mask")
        self.add_mask(segmask, name)

    def add_group(
        self, name: str, members: Iterable[str], mask: SegmentationMask | None = None
    ) -> None:
        """Store ``name`` as the union of ``members`` (masks already in the archive).

        With ``mask``, the group is that mask: only where it differs from the union is a
        residual stored, so a group that is exactly the union costs no voxel data.
        """
        self._writable()
        self._check_name(name, False)
        state = self._state
        names = tuple(members)
        if not names:
            raise ValueError(f"group {name!r} needs at least one member")
        for member in names:
            entry = state.entries.get(member)
            if entry is None:
                raise MaskNotFoundError(f"group {name!r}: no mask named {member!r} in the archive")
            if entry.kind != "mask":
                raise ValueError(f"group {name!r}: member {member!r} is a {entry.kind}, not a mask")
        union, bbox = self._union(names)
        shape = self._shape()
        full = np.zeros(shape, dtype=bool)
        if bbox is not None:
            full[slices(bbox)] = union
        if mask is None:
            mapping, dtype, target = {name: 1}, "uint8", full
        else:
            if tuple(mask.shape) != shape:
                raise ValueError(
                    f"group mask shape {mask.shape} does not match the archive {shape}"
                )
            mapping, dtype, target = mask.mapping.to_dict(), str(mask.dtype), mask.data != 0
        if len(mapping) != 1:
            raise ValueError(f"group {name!r} needs exactly one name in its mapping, got {mapping}")
        residual = encode_mask(np.logical_xor(target, full), level=state.level)
        stored = EncodedMask(residual.codec, dtype, shape, residual.bbox, residual.blob)
        count = int(np.count_nonzero(target))
        label = next(iter(mapping.values()))
        counts = {label: count} if count else {}
        self._store(name, "group", mapping, stored, counts, names, residual.bbox, _bbox_of(target))

    def remove(self, name: str) -> None:
        """Forget ``name`` (its bytes stay until :meth:`compact`)."""
        self._writable()
        self._entry(name)
        users = [e.name for e in self._state.entries.values() if name in e.members]
        if users:
            raise ValueError(f"{name!r} is a member of group(s) {users}; remove those first")
        del self._state.entries[name]
        self._state.changed()

    def replace(self, name: str, mask: SegmentationMask) -> None:
        """Store ``mask`` under an existing ``name``."""
        self._entry(name)
        users = [e.name for e in self._state.entries.values() if name in e.members and e.length]
        if users:
            raise ValueError(f"{name!r} is a member of group(s) {users} stored with a residual")
        self.add_mask(mask, name, replace=True)

    def compact(self) -> None:
        """Rewrite the file with only live data (after removals and replacements)."""
        self._writable()
        state = self._state
        state.rewrite([(entry, self._blob(entry) if entry.length else b"") for entry in
                       state.entries.values()])  # fmt: skip

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

    def read_all_masks(self) -> dict[str, SegmentationMask]:
        """Every mask, decoded, by name."""
        return {name: self.load_mask(name) for name in self._state.entries}

    def statistics(self) -> dict[str, MaskStatistics]:
        """Voxel count, volume (ml) and bounding box of every mask, from the index alone."""
        ml = voxel_volume_ml(self._state.space) if self._state.space is not None else 0.0
        out = {}
        for name, entry in self._state.entries.items():
            boxes = _label_boxes(entry)
            out[name] = MaskStatistics(
                name, entry.count, entry.count * ml, entry.bbox, dict(entry.label_counts), boxes
            )
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

    def _writable(self) -> None:
        if self.closed:
            raise ValueError(f"{self._state.path}: archive is closed")
        if self._mode == "r":
            raise ValueError(f"{self._state.path}: archive is open read-only (mode 'r')")

    def _check_name(self, name: str, replace: bool) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"mask names must be non-empty strings, got {name!r}")
        if name in self._state.entries and not replace:
            raise ValueError(f"a mask named {name!r} is already in the archive; use replace=True")

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

    def _store(
        self,
        name: str,
        kind: Literal["mask", "group"],
        mapping: dict[str, int],
        encoded: EncodedMask,
        counts: dict[int, int],
        members: tuple[str, ...],
        residual_bbox: BBox | None = None,
        extent: BBox | None = None,
        file_label: int | None = None,
        nifti_codes: tuple[int, int] | None = None,
        label_bboxes: dict[int, BBox] | None = None,
        meaning: SegmentMeaning | None = None,
    ) -> None:
        state = self._state
        offset = state.stage(encoded.blob) if encoded.blob else 0
        entry = Entry(
            name=name,
            kind=kind,
            mapping=mapping,
            dtype=encoded.dtype,
            codec=int(encoded.codec),
            bbox=encoded.bbox if kind == "mask" else extent,
            offset=offset,
            length=len(encoded.blob),
            crc=zlib.crc32(encoded.blob) if encoded.blob else 0,
            count=sum(counts.values()),
            label_counts=counts,
            members=members,
            residual_bbox=residual_bbox,
            file_label=None if file_label is None else int(file_label),
            nifti_codes=nifti_codes,
            label_bboxes=label_bboxes,
            meaning=meaning,
        )
        state.entries.pop(name)
        state.entries[name] = entry
        state.changed()

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


_READERS: list[tuple[bytes, type[MaskArchive]]] = []


def register_reader(magic: bytes, reader: type[MaskArchive]) -> None:
    """Open files starting with ``magic`` with ``reader`` (a MaskArchive subclass)."""
    _READERS.append((magic, reader))


def convert_legacy_archive(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    level: int | None = None,
    overwrite: bool = True,
) -> int:
    """Copy every mask of an archive (e.g. medmask 0.1.3's) into a new format-2 archive.

    The new archive appears under ``target`` only when complete. Returns the number of
    masks copied.

    Raises
    ------
    MedmaskError
        ``target`` is ``source``, or exists and ``overwrite`` is False.
    """
    src, dst = Path(source), Path(target)
    if dst.exists() and (dst.resolve() == src.resolve()):
        raise MedmaskError(f"{dst}: convert into a new file, not onto the archive itself")
    check_writable(dst, overwrite)
    with (
        MaskArchive(src) as old,
        atomic_path(dst) as partial,
        MaskArchive(partial, "w", space=old.space, level=level) as new,
    ):
        for name in old:
            new.add_mask(old.load_mask(name), name)
        count = len(new)
    return count


def _describe(space: Space) -> str:
    shape = "x".join(str(int(n)) for n in space.shape)
    spacing = ", ".join(f"{float(v):g}" for v in space.spacing)
    origin = ", ".join(f"{float(v):.4g}" for v in space.origin)
    return f"{shape} voxels of ({spacing}) mm at ({origin})"


def _bbox_of(array: NDArray[Any]) -> BBox | None:
    return bounding_box(array)


def _label_boxes(entry: Entry) -> dict[int, BBox] | None:
    """Each label's box from the index; None when the index does not know them."""
    if entry.label_bboxes is not None:
        return dict(entry.label_bboxes)
    present = [label for label, count in entry.label_counts.items() if count]
    if len(present) > 1:
        return None
    return {present[0]: entry.bbox} if present and entry.bbox is not None else {}


def _label_extents(
    array: NDArray[Any], bbox: BBox | None
) -> tuple[dict[int, int], dict[int, BBox] | None]:
    """Voxels per label, and each label's box when there are several labels."""
    if bbox is None:
        return {}, None
    crop = array[slices(bbox)]
    if crop.dtype == np.bool_:
        return {1: int(np.count_nonzero(crop))}, None
    extents = label_extents(crop)
    counts = {label: count for label, (count, _) in extents.items()}
    if len(extents) < 2:
        return counts, None
    boxes = {
        label: tuple((a + o, b + o) for (a, b), (o, _) in zip(box, bbox, strict=True))
        for label, (_, box) in extents.items()
    }
    return counts, boxes  # type: ignore[return-value]


def select_masks(
    archive: MaskArchive, names: Iterable[str] | None = None, *, groups: bool = False
) -> list[str]:
    """The masks an export or unpack writes: ``names`` checked against the archive, in
    the order given, each once; without names (None or empty) every mask in archive
    order, groups only when ``groups`` (they cover their members). The one place every
    writer (unpack, preview, DICOM SEG, Slicer) chooses.

    Raises
    ------
    MaskNotFoundError
        A name is not in the archive.
    """
    wanted = list(dict.fromkeys(names or ()))
    if wanted:
        missing = [n for n in wanted if n not in archive]
        if missing:
            raise MaskNotFoundError(
                f"{archive.path}: no mask named {', '.join(map(repr, missing))} "
                f"(see `medmask ls {archive.path}`)"
            )
        return wanted
    group_names = set(archive.groups())
    return [n for n in archive if groups or n not in group_names]
