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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from spacetransformer import Space

from ..codecs import (
    DEFAULT_LEVEL,
    EncodedMask,
    encode_mask,
)
from ..deprecation import check_legacy_codec, warn_deprecated
from ..errors import MaskNotFoundError, MedmaskError
from ..format.legacy_mska import LEGACY_MSKA_MAGIC
from ..model.bbox import BBox, bounding_box, label_summaries
from ..model.groups import slices
from ..model.label_values import LABEL_MAX
from ..model.mapping import as_label
from ..model.mask import SegmentationMask
from ..model.meaning import SegmentMeaning
from ..model.space import spaces_close
from .atomic import atomic_path, check_writable
from .index import Entry, Sums
from .legacy import LegacyMaskArchive
from .opened import ArchiveFile, ArchiveMode, open_archive_file, open_file
from .reader import ArchiveReader, MaskStatistics, StoredMask, describe_space

__all__ = [
    "ArchiveMode",
    "ArchiveReader",
    "MaskArchive",
    "MaskStatistics",
    "StoredMask",
    "convert_legacy_archive",
    "select_masks",
]


class MaskArchive(ArchiveReader):
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

    def __new__(cls, path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Any:
        """The reader for the file's format, chosen by its first bytes: this format's
        MaskArchive, or for a medmask 0.1.3 archive its read-only reader (an
        :class:`~medmask.files.reader.ArchiveReader` with the same reading API and no
        writing method). Mode "w" always writes this format (over any file).
        """
        mode = args[0] if args else kwargs.get("mode", "r")
        if cls is MaskArchive and mode != "w":
            try:
                with os.fdopen(open_file(path, os.O_RDONLY), "rb") as stream:
                    head = stream.read(8)
            except (OSError, MedmaskError):
                head = b""  # a new file, or an error the constructor reports
            for magic, reader in _READERS:
                if head.startswith(magic):  # a reader of its own, with no writing method
                    return reader(path, *args, **kwargs)
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

    _state: ArchiveFile

    # -- opening ---------------------------------------------------------------------------
    def _take_space(self, space: Space) -> None:
        """The ``space`` argument: the archive's geometry if it has none, else checked."""
        if self._state.space is None:
            # Committed with the first mask (or at close): until then a MedMask-style
            # reversed Space can still give way to the first mask's (see add_mask).
            self._state.take_space(space)
            return
        super()._take_space(space)

    def _load(self) -> None:
        self._state.load(str(self._state.path))

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
        self._state.enter()
        try:
            yield self
        finally:
            if self._state.leave() and not self.closed:
                self._state.commit()

    def flush(self) -> None:
        """Commit staged changes now (inside a batch): afterwards a crash keeps them."""
        self._writable()
        self._state.commit()

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
            state.take_space(mask.space)
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
                    f"mask {name!r} has geometry {describe_space(mask.space)}, "
                    f"the archive {describe_space(state.space)}"
                )
            state.take_space(mask.space)
        array = np.asarray(mask.data)
        encoded = encode_mask(array, level=state.level)
        extents = _label_extents(array, encoded.bbox)
        if file_label is not None and not 0 < as_label(file_label, "file_label") <= LABEL_MAX:
            raise ValueError(f"file_label must be in 1..{LABEL_MAX}, got {file_label!r}")
        if meaning is not None and not isinstance(meaning, SegmentMeaning):
            raise TypeError(f"meaning must be a SegmentMeaning, got {type(meaning).__name__}")
        self._store(
            name, "mask", mask.mapping.to_dict(), encoded, extents.counts, (),
            file_label=file_label, nifti_codes=mask.nifti_codes, label_bboxes=extents.boxes,
            meaning=meaning, voxel_sums=extents.sums, label_voxel_sums=extents.label_sums,
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
        extent = _bbox_of(target)
        extents = _label_extents(target, extent)
        label = next(iter(mapping.values()))
        counts = {label: extents.counts[1]} if extents.counts else {}
        self._store(
            name, "group", mapping, stored, counts, names, residual.bbox, extent,
            voxel_sums=extents.sums,
        )  # fmt: skip

    def set_image_series(
        self,
        series_instance_uid: str,
        frame_of_reference_uid: str | None = None,
        study_instance_uid: str | None = None,
    ) -> None:
        """Record the DICOM image series the masks were drawn on (docs/mask-format.md,
        ``image_series``): catalogs join the archive's masks to the series by it.

        Raises
        ------
        ValueError
            A UID that is not a DICOM UID (digits and dots, at most 64 characters).
        """
        self._writable()
        values = {
            "SeriesInstanceUID": series_instance_uid,
            "FrameOfReferenceUID": frame_of_reference_uid,
            "StudyInstanceUID": study_instance_uid,
        }
        for keyword, uid in values.items():
            if uid is not None and not _is_uid(uid):
                raise ValueError(f"{keyword} {uid!r} is not a DICOM UID (digits and dots)")
        self._state.image_series = {k: v for k, v in values.items() if v}
        self._state.changed()

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
        voxel_sums: Sums | None = None,
        label_voxel_sums: dict[int, Sums] | None = None,
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
            voxel_sums=voxel_sums,
            label_voxel_sums=label_voxel_sums,
        )
        state.put(entry)


# Readers of the other formats MaskArchive(path) opens, by the file's first bytes.
_READERS: tuple[tuple[bytes, Callable[..., ArchiveReader]], ...] = (
    (LEGACY_MSKA_MAGIC, LegacyMaskArchive),
)


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


def _bbox_of(array: NDArray[Any]) -> BBox | None:
    return bounding_box(array)


@dataclass(frozen=True)
class _Extents:
    """What the index says of a mask's voxels (docs/mask-format.md): per label count,
    box and index sums when there are several labels, and the sums of all of them."""

    counts: dict[int, int]
    boxes: dict[int, BBox] | None
    sums: Sums | None
    label_sums: dict[int, Sums] | None


def _label_extents(array: NDArray[Any], bbox: BBox | None) -> _Extents:
    if bbox is None:
        return _Extents({}, None, None, None)
    summaries = label_summaries(array[slices(bbox)])
    counts = {label: s.voxels for label, s in summaries.items()}
    offset = [start for start, _ in bbox]
    sums = {  # back from the crop to the whole grid
        label: (s.sums[0] + offset[0] * s.voxels, s.sums[1] + offset[1] * s.voxels,
                s.sums[2] + offset[2] * s.voxels)
        for label, s in summaries.items()
    }  # fmt: skip
    total = (
        sum(v[0] for v in sums.values()),
        sum(v[1] for v in sums.values()),
        sum(v[2] for v in sums.values()),
    )
    if len(summaries) < 2:
        return _Extents(counts, None, total, None)
    boxes = {
        label: tuple((a + o, b + o) for (a, b), o in zip(s.box, offset, strict=True))
        for label, s in summaries.items()
    }
    return _Extents(counts, boxes, total, sums)  # type: ignore[arg-type]


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


def _is_uid(value: object) -> bool:
    """A DICOM UID: 1 to 64 characters of digits and dots, no empty component."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 64
        and all(part.isdigit() and part.isascii() for part in value.split("."))
    )
