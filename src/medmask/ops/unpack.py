"""Archives back to NIfTI: one file per mask, or one multi-label file.

A multi-label file holds one value per voxel, so overlapping masks cannot all survive
in it: :func:`write_multilabel` refuses (:class:`OverlapError`, with every pair and
voxel count) unless told which mask wins, and reports what it overwrote either way.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..errors import MedmaskError, OutputExistsError, OverlapError
from ..exchange.nifti import mask_file_name, mask_file_names, write_nifti
from ..files.archive import MaskArchive, StoredMask, select_masks
from ..files.atomic import check_writable
from ..model.label_values import label_limit
from ..model.mapping import LabelMapping
from ..model.mask import SegmentationMask

__all__ = [
    "MultilabelResult",
    "OverlapError",
    "OverlapPolicy",
    "mask_file_name",
    "select_masks",
    "unpack_archive",
    "write_multilabel",
]

OverlapPolicy = Literal["error", "first", "last"]
"""Who keeps a voxel two masks share: nobody (refuse), the earlier name, the later one."""


@dataclass(frozen=True)
class MultilabelResult:
    """The file written, its label names, and the voxels each overlap gave away."""

    path: Path
    mapping: dict[str, int]
    overlaps: dict[tuple[str, str], int] = field(default_factory=dict)  # (kept, lost): voxels


def unpack_archive(
    archive_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write masks of an archive as ``out_dir/<name>.nii.gz`` with the archive's geometry.

    Parameters
    ----------
    names : Sequence[str], optional
        The masks to write (groups included); default all.
    overwrite : bool
        Replace existing files; otherwise an existing file is an error before anything
        is written.

    Raises
    ------
    MaskNotFoundError
        A name is not in the archive.
    MedmaskError
        A file exists and ``overwrite`` is False, or a file cannot be written (then the
        files this call wrote so far and the folder it made are removed again).

    Notes
    -----
    A name that cannot be a file name everywhere is escaped (:func:`mask_file_name`,
    ``a/b`` -> ``a%2Fb.nii.gz``), and so are the capitals of names that differ only in
    case (``Liver`` -> ``%4Civer.nii.gz`` beside ``liver.nii.gz``: one file on Windows,
    macOS and USB drives; :func:`~medmask.exchange.nifti.mask_file_names`), and a name
    too long for a file name (255 bytes) is cut, its hash appended; the file's label
    table keeps the name itself, so ``medmask pack`` of the folder gives the name back.
    """
    out = Path(out_dir)
    with MaskArchive(archive_path) as archive:
        chosen = select_masks(archive, names, groups=True)
        files = mask_file_names(chosen)
        targets = {name: out / f"{files[name]}.nii.gz" for name in chosen}
        if not overwrite:
            existing = [str(p) for p in targets.values() if p.exists()]
            if existing:
                raise OutputExistsError(existing[0], len(existing) - 1)
        made = [p for p in (out, *out.parents) if not p.exists()]
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        try:
            for name, target in targets.items():
                fresh = not target.exists()
                write_nifti(archive.load_mask(name), target)
                if fresh:
                    written.append(target)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            for folder in made:  # deepest first
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
    return list(targets.values())


def write_multilabel(
    archive_path: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
    overlap: OverlapPolicy = "error",
    overwrite: bool = False,
) -> MultilabelResult:
    """Write masks of an archive into one multi-label NIfTI with a label-name table.

    Every name of every chosen mask gets its own label, 1, 2, ... in order (groups are
    left out unless named: they overlap their members by definition).

    Parameters
    ----------
    names : Sequence[str], optional
        The masks, in label order; default every mask that is not a group.
    overlap : {"error", "first", "last"}
        Where masks overlap: refuse; keep the mask earlier in ``names``; keep the later.

    Raises
    ------
    OverlapError
        ``overlap="error"`` and two masks share voxels (nothing is written).
    """
    out = Path(target)
    if overlap not in ("error", "first", "last"):
        raise ValueError(f"overlap must be 'error', 'first' or 'last', got {overlap!r}")
    check_writable(out, overwrite)
    with MaskArchive(archive_path) as archive:
        chosen = select_masks(archive, names, groups=False)
        space = archive.space
        if space is None:
            raise MedmaskError(f"{archive_path}: the archive holds no masks")
        mappings = archive.read_all_mapping()
        stored = archive.storage()
        mapping, dtype = _output_labels(chosen, mappings, stored)
        codes = {stored[name].nifti_codes for name in chosen}
        volume = np.zeros(tuple(int(n) for n in space.shape), dtype=dtype)
        by_label = {label: name for name, label in mapping.items()}
        overlaps: dict[tuple[str, str], int] = {}
        for name in chosen:
            crop, offset = archive.load_crop(name)
            if crop.size:
                box = tuple(slice(o, o + n) for o, n in zip(offset, crop.shape, strict=True))
                for label_name, value in mappings[name].items():
                    inside = crop == value
                    for pair, count in _paint(volume[box], inside, mapping[label_name], overlap):
                        key = (by_label[pair[0]], label_name)
                        key = key if overlap != "last" else (key[1], key[0])
                        overlaps[key] = overlaps.get(key, 0) + count
    if overlaps and overlap == "error":
        pairs = ", ".join(f"{a}/{b} ({n} voxels)" for (a, b), n in overlaps.items())
        raise OverlapError(
            f"masks overlap, a multi-label file keeps one label per voxel: {pairs}; "
            "say which wins (overlap='first'/'last', --overlap first|last) or leave one out",
            overlaps,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    combined = SegmentationMask._trusted(volume, LabelMapping(mapping), space)
    combined.nifti_codes = codes.pop() if len(codes) == 1 else None  # the files' own, if one
    write_nifti(combined, out)
    return MultilabelResult(out, mapping, overlaps)


def _output_labels(
    chosen: list[str], mappings: dict[str, LabelMapping], stored: dict[str, StoredMask]
) -> tuple[dict[str, int], np.dtype[Any]]:
    """Label of every name in the multi-label file, and the file's dtype.

    Masks packed from one multi-label file get their labels there back, in its dtype;
    otherwise names are numbered 1, 2, ... in order, in the smallest unsigned type.
    """
    mapping: dict[str, int] = {}
    for name in chosen:
        for label_name in mappings[name].names():
            if label_name in mapping:
                raise MedmaskError(f"label name {label_name!r} occurs in two masks")
            mapping[label_name] = len(mapping) + 1
    from_file = [stored[name].file_label for name in chosen]
    labels = [label for label in from_file if label is not None]
    single = all(len(mappings[name]) == 1 for name in chosen)
    if single and len(labels) == len(chosen) and len(set(labels)) == len(labels):
        mapping = {mappings[n].names()[0]: label for n, label in zip(chosen, labels, strict=True)}
    highest = max(mapping.values(), default=0)
    kinds = {stored[name].dtype for name in chosen}
    kind = np.dtype(kinds.pop()) if len(kinds) == 1 else None
    if kind is not None and kind != np.bool_ and label_limit(kind) >= highest:
        return mapping, kind
    for candidate in (np.uint8, np.uint16, np.uint32):
        if highest <= np.iinfo(candidate).max:
            return mapping, np.dtype(candidate)
    raise MedmaskError(f"label {highest} does not fit 32 bits")  # pragma: no cover - checked


def _paint(
    region: NDArray[Any], inside: NDArray[np.bool_], label: int, overlap: OverlapPolicy
) -> list[tuple[tuple[int, int], int]]:
    """Write ``label`` where ``inside``; return ``((holder, label), voxels)`` per overlap."""
    taken = inside & (region != 0)
    found = []
    if taken.any():
        holders, counts = np.unique(region[taken], return_counts=True)
        found = [((int(h), label), int(c)) for h, c in zip(holders, counts, strict=True)]
        if overlap == "first":
            inside = inside & ~taken
    region[inside] = label
    return found
