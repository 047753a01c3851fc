"""What a path to pack is, decided once: an ordered list of source kinds, each saying
whether a path is its kind (as nibabel's ``imageclasses`` + ``loadsave.load``).

:func:`source_kind` asks each kind of :data:`SOURCE_KINDS` in order; the first that claims
the path reads it (:meth:`SourceKind.read`). :func:`pack <medmask.ops.pack.pack>` and the
command line use the same list (its summary line names the kind :attr:`PackResult.kind
<medmask.ops.pack.PackResult.kind>` says), and :func:`grid_of` does the same for the
grids a DICOM SEG can be read onto (``--like``: an archive or a NIfTI, by content).

=====================  ===============================================================
``slicer``             a 3D Slicer ``.seg.nrrd`` file (each segment one mask)
``nifti-labels``       a ``.nii``/``.nii.gz`` file: a multi-label map (each label one mask)
``nrrd-labels``        any other ``.nrrd`` file: a label map (Slicer's label map volume,
                       MITK's and ITK-SNAP's segmentations; each label one mask)
``dicom-seg``          a DICOM SEG file, or a folder of one segmentation's SEG instances
``dicom-rtstruct``     a DICOM RT Structure Set (contours: needs ``--source`` or ``--like``)
                       (and no NIfTI file)
``nifti-folder``       any other folder: its ``.nii``/``.nii.gz`` files, one mask each
=====================  ===============================================================
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from spacetransformer import Space

from ..errors import FormatError, GeometryMismatchError, MedmaskError
from ..exchange.nifti import (
    NIFTI_SUFFIXES,
    is_nifti,
    label_table_colours,
    nifti_space,
    nifti_stem,
    read_nifti,
    unplaced_note,
)
from ..files.archive import MaskArchive
from ..format.legacy_mska import LEGACY_MSKA_MAGIC
from ..format.mska import MAGIC
from ..model.bbox import label_extents
from ..model.mapping import LabelMapping
from ..model.mask import SegmentationMask
from ..model.meaning import SegmentMeaning

if TYPE_CHECKING:
    from ..exchange.dicom.source import SourceSeries

__all__ = [
    "GRID_KINDS",
    "SOURCE_KINDS",
    "SourceKind",
    "SourceRead",
    "folder_files",
    "grid_of",
    "natural_key",
    "source_kind",
    "source_series",
    "split_labels",
]

# (name, mask, label it had in a multi-label file or None)
MaskItem = tuple[str, SegmentationMask, int | None]


@dataclass
class SourceRead:
    """A source opened for packing: its masks (streamed: one in memory at a time) and
    what reading them found."""

    masks: Iterator[MaskItem]
    input_bytes: int
    meanings: dict[str, SegmentMeaning] = field(default_factory=dict)  # SEG, Slicer
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    notes: list[str] = field(default_factory=list)  # what reading changed (thresholds)
    drift: list[tuple[str, float]] = field(default_factory=list)  # (file, largest mm)
    nothing: str = "no masks found"  # why no mask came, in the words of the kind


@dataclass(frozen=True)
class SourceKind:
    """One kind of pack source: its name, how a summary line calls it, whether a path is
    of it, and how to read it."""

    name: str
    label: str
    claims: Callable[[Path], bool]
    opener: Callable[[Path, bool, Space | SourceSeries | None], SourceRead]

    def read(
        self,
        path: Path,
        *,
        strict_geometry: bool = False,
        reference: Space | SourceSeries | None = None,
    ) -> SourceRead:
        """Open ``path`` (which this kind claimed) for packing."""
        return self.opener(path, strict_geometry, reference)


def _is_slicer(path: Path) -> bool:
    """A ``.seg.nrrd``, or a ``.nrrd`` whose header has Slicer's segment fields (a
    segmentation saved or renamed without ``.seg``)."""
    name = path.name.lower()
    if not path.is_file() or not name.endswith(".nrrd"):
        return False
    if name.endswith(".seg.nrrd"):
        return True
    try:
        with path.open("rb") as stream:
            head = stream.read(1 << 16)
    except OSError:
        return False
    header = head.split(b"\n\n", 1)[0]  # (a blank line ends a NRRD header)
    return b"\nSegment0_" in header


def _is_label_file(path: Path) -> bool:
    return path.is_file() and is_nifti(path)


def _is_nrrd_label_map(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(".nrrd")


def _is_dicom_seg(path: Path) -> bool:
    if path.is_dir() and any(is_nifti(p) for p in path.iterdir() if p.is_file()):
        return False
    return bool(_seg_files(path))


def _seg_files(path: Path) -> list[Path]:
    from ..exchange.dicom.exchange import seg_files  # noqa: PLC0415 - pydicom only for SEG

    return seg_files(path)


def _read_slicer(path: Path, strict: bool, reference: object) -> SourceRead:
    from ..exchange.slicer import read_seg_nrrd_segments  # noqa: PLC0415 - pynrrd for Slicer

    read = SourceRead(iter(()), path.stat().st_size, nothing="the segmentation holds no segments")
    read.masks = _keeping_meanings(read_seg_nrrd_segments(path), read.meanings)
    return read


def _read_label_file(path: Path, strict: bool, reference: object) -> SourceRead:
    read = SourceRead(iter(()), path.stat().st_size)
    colours = label_table_colours(path.parent, nifti_stem(path))
    read.masks = _coloured(split_labels(path, read.notes), colours, read.meanings)
    return read


def _read_nrrd_label_map(path: Path, strict: bool, reference: object) -> SourceRead:
    from ..exchange.slicer import read_nrrd_label_map  # noqa: PLC0415 - pynrrd for NRRD

    read = SourceRead(iter(()), path.stat().st_size, nothing="the label map holds no label")
    colours = label_table_colours(path.parent, path.name[: -len(".nrrd")])
    read.masks = _coloured(_split(read_nrrd_label_map(path)), colours, read.meanings)
    return read


def _coloured(
    items: Iterator[MaskItem],
    colours: dict[int, tuple[int, int, int]],
    meanings: dict[str, SegmentMeaning],
) -> Iterator[MaskItem]:
    """``items`` as they come, each mask of a label its label table colours given that
    colour in ``meanings`` (what the annotator saw, kept in the archive)."""
    for name, mask, label in items:
        if label in colours:
            meanings[name] = SegmentMeaning(colour=colours[label])
        yield name, mask, label


def _read_dicom_seg(path: Path, strict: bool, reference: Space | SourceSeries | None) -> SourceRead:
    from ..exchange.dicom.exchange import check_seg_source, seg_segments  # noqa: PLC0415
    from ..exchange.dicom.source import SourceSeries  # noqa: PLC0415

    files = _seg_files(path)
    read = SourceRead(
        iter(()),
        sum(p.stat().st_size for p in files),
        nothing="the DICOM SEG declares no segment that holds a mask",
    )
    if isinstance(reference, SourceSeries):
        check_seg_source(files, reference, read.notes)
        problems = reference.grid.problems()
        if problems:
            raise GeometryMismatchError(
                f"{reference.folder}: the image series is not one regular grid of voxels "
                f"({'; '.join(problems)}); pack the SEG without --source to read it onto "
                "its own frames"
            )
        reference = reference.grid.space()
    read.masks = _keeping_meanings(
        seg_segments(files, space=reference, notes=read.notes), read.meanings
    )
    return read


def _is_rtstruct(path: Path) -> bool:
    if not path.is_file():
        return False
    from ..exchange.dicom.rtstruct import is_rtstruct  # noqa: PLC0415 - pydicom only for DICOM

    return is_rtstruct(path)


def _read_rtstruct(path: Path, strict: bool, reference: Space | SourceSeries | None) -> SourceRead:
    from ..exchange.dicom.rtstruct import read_rtstruct  # noqa: PLC0415
    from ..exchange.dicom.source import SourceSeries  # noqa: PLC0415

    frame = series_uid = None
    if isinstance(reference, SourceSeries):
        problems = reference.grid.problems()
        if problems:
            raise GeometryMismatchError(
                f"{reference.folder}: the image series is not one regular grid of voxels "
                f"({'; '.join(problems)}): its contours cannot be filled onto it"
            )
        frame = reference.frame_of_reference_uid or None
        series_uid = reference.series_instance_uid or None
        reference = reference.grid.space()
    if reference is None:
        raise MedmaskError(
            f"{path}: an RT Structure Set holds contours, not voxels: give the image series "
            "they were drawn on (--source CT_DIR) or a grid (--like)"
        )
    read = SourceRead(iter(()), path.stat().st_size, nothing="the RT Structure Set has no ROI")
    space = reference

    def masks() -> Iterator[MaskItem]:
        for roi in read_rtstruct(
            path, space, frame_of_reference=frame, series_uid=series_uid, notes=read.notes
        ):
            data = roi.voxels.astype(np.uint8)
            mask = SegmentationMask._trusted(data, LabelMapping({roi.name: 1}), space)
            read.meanings[roi.name] = SegmentMeaning(colour=roi.colour)
            yield roi.name, mask, None

    read.masks = masks()
    return read


def _read_nifti_folder(path: Path, strict: bool, reference: object) -> SourceRead:
    from ..exchange.nifti import iter_nifti_masks  # noqa: PLC0415

    read = SourceRead(iter(()), 0, nothing="no .nii or .nii.gz masks found")
    files = folder_files(path, read.skipped)
    read.input_bytes = sum(p.stat().st_size for p in files)
    read.masks = (
        (name, mask, None)
        for name, mask in iter_nifti_masks(files, strict=strict, drift=read.drift, notes=read.notes)
    )
    return read


def _keeping_meanings(
    items: Iterator[tuple[str, SegmentationMask, SegmentMeaning]],
    meanings: dict[str, SegmentMeaning],
) -> Iterator[MaskItem]:
    """``(name, mask, None)`` of each item, its meaning put in ``meanings`` on the way."""
    for name, mask, meaning in items:
        meanings[name] = meaning
        yield name, mask, None


def folder_files(folder: Path, skipped: list[tuple[str, str]]) -> list[Path]:
    """The NIfTI masks of a folder in natural name order; anything else into ``skipped``
    (JSON label sidecars of its masks are read with them)."""
    files = []
    for path in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if path.is_file() and is_nifti(path):
            files.append(path)
        elif path.name.endswith(".json") and any(
            (folder / (path.name[:-5] + suffix)).exists() for suffix in NIFTI_SUFFIXES
        ):
            continue  # a label sidecar, read with its mask
        elif path.is_symlink() and not path.exists():  # (named like a mask, or not)
            skipped.append((path.name, f"a link to nothing ({path.readlink()}): not read"))
        else:
            kind = "folder" if path.is_dir() else "file"
            skipped.append((path.name, f"not a NIfTI mask ({kind})"))
    return files


def split_labels(
    path: Path, notes: list[str] | None = None
) -> Iterator[tuple[str, SegmentationMask, int | None]]:
    """Each named label of a multi-label file as its own 0/1 mask, in the file's dtype,
    with the label it had there (so a multi-label file written back gives it again);
    a file that records no place in space gets a note in ``notes``."""
    combined = read_nifti(path)
    if combined.nifti_codes == (0, 0) and notes is not None:
        notes.append(unplaced_note([path.name]))
    yield from _split(combined)


def _split(combined: SegmentationMask) -> Iterator[tuple[str, SegmentationMask, int | None]]:
    """Each named label of ``combined`` as its own 0/1 mask (see :func:`split_labels`)."""
    data = np.asarray(combined.data)
    extents = label_extents(data)
    for name, label in sorted(combined.mapping.items(), key=lambda item: item[1]):
        part = np.zeros(combined.shape, dtype=combined.dtype)
        if label in extents:
            box = extents[label][1]
            region = tuple(slice(a, b) for a, b in box)
            part[region] = data[region] == label
        mask = SegmentationMask._trusted(part, LabelMapping({name: 1}), combined.space)
        mask.nifti_codes = combined.nifti_codes
        yield name, mask, label


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting ``rib_left_2`` before ``rib_left_10``."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name) if p)


SOURCE_KINDS: tuple[SourceKind, ...] = (
    SourceKind("slicer", "Slicer .seg.nrrd", _is_slicer, _read_slicer),
    SourceKind("nifti-labels", "NIfTI", _is_label_file, _read_label_file),
    SourceKind("nrrd-labels", "NRRD label map", _is_nrrd_label_map, _read_nrrd_label_map),
    SourceKind("dicom-seg", "DICOM SEG", _is_dicom_seg, _read_dicom_seg),
    SourceKind("dicom-rtstruct", "DICOM RTSTRUCT", _is_rtstruct, _read_rtstruct),
    SourceKind("nifti-folder", "NIfTI", Path.is_dir, _read_nifti_folder),
)


def source_kind(source: str | os.PathLike[str]) -> SourceKind:
    """The kind of pack source ``source`` is: the first of :data:`SOURCE_KINDS` to claim it.

    Raises
    ------
    MedmaskError
        Nothing is there, or no kind claims it; :class:`FormatError` when it is a
        damaged DICOM file (the damage named).
    """
    path = Path(source)
    if not path.exists():
        raise MedmaskError(f"{path}: no such file or folder")
    for kind in SOURCE_KINDS:
        if kind.claims(path):
            return kind
    from ..exchange.dicom.seg_reader import dicom_header_problem  # noqa: PLC0415 - pydicom

    problem = dicom_header_problem(path)
    if problem:
        raise FormatError(f"{path}: {problem}")
    suffix = path.name.lower().rsplit(".", 1)[-1]
    hint = _CONVERT_HINTS.get(suffix, "") or _archive_hint(path)
    raise MedmaskError(
        f"{path}: not a folder of masks, a .nii/.nii.gz/.nrrd file or a DICOM SEG{hint}"
    )


# what to say of files of other image formats pack is given
_CONVERT_HINTS = dict.fromkeys(
    ("mha", "mhd", "hdr", "img", "mnc", "mgz", "nhdr"),
    "; convert it to .nii.gz first (SimpleITK: "
    "sitk.WriteImage(sitk.ReadImage(path), 'mask.nii.gz'); nibabel: "
    "nib.save(nib.load(path), 'mask.nii.gz'))",
)


# archives masks come in (a TotalSegmentator or nnU-Net result downloaded or mailed), by
# their first bytes (the formats' own magic numbers)
_ARCHIVES = (
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip file (a .tar.gz?)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"BZh", "a bzip2 file"),
    (b"\xfd7zXZ\x00", "an xz file"),
)


def _archive_hint(path: Path) -> str:
    """What to do with an archive given to pack: unpack it and pack the folder."""
    try:
        with path.open("rb") as stream:
            head = stream.read(512)
    except OSError:
        return ""
    kind = next((kind for magic, kind in _ARCHIVES if head.startswith(magic)), None)
    if kind is None and head[257:262] == b"ustar":
        kind = "a tar archive"
    if kind is None:
        return ""
    return f": it is {kind}; unpack it (e.g. into {path.name.split('.')[0]}/) and pack that folder"


def _starts_with(*magics: bytes) -> Callable[[Path], bool]:
    def claims(path: Path) -> bool:
        try:
            with path.open("rb") as stream:
                head = stream.read(max(len(m) for m in magics))
        except OSError:
            return False
        return any(head.startswith(m) for m in magics)

    return claims


def _archive_grid(path: Path) -> Space:
    with MaskArchive(path) as opened:
        return opened.space


def _nifti_grid(path: Path) -> Space:
    return nifti_space(path)  # (a scan's grid too: the header alone)


# The grids a DICOM SEG can be read onto (``--like``), by content, in order.
GRID_KINDS: tuple[tuple[str, Callable[[Path], bool], Callable[[Path], Space]], ...] = (
    ("medmask archive", _starts_with(MAGIC, LEGACY_MSKA_MAGIC), _archive_grid),
    ("NIfTI", lambda p: p.is_file() and is_nifti(p), _nifti_grid),
)


def source_series(
    src: str | os.PathLike[str], folder: str | os.PathLike[str], series_uid: str | None = None
) -> SourceSeries:
    """The image series of ``folder`` (``pack --source``) to read ``src`` onto:
    ``series_uid``, the only one, or, when ``folder`` holds several (a study's folder),
    the one a DICOM SEG or RT Structure Set ``src`` names as the series it was drawn on.

    Raises
    ------
    MedmaskError
        ``src`` is no pack source, or ``folder`` is no series or holds several and none
        is chosen (:func:`~medmask.exchange.dicom.source.read_source_series`).
    """
    from ..exchange.dicom.exchange import seg_series  # noqa: PLC0415 - pydicom for DICOM
    from ..exchange.dicom.rtstruct import rtstruct_series  # noqa: PLC0415
    from ..exchange.dicom.source import read_source_series  # noqa: PLC0415

    path = Path(src)
    kind = source_kind(path).name
    named: tuple[str, ...] = ()
    if kind == "dicom-seg":
        named = seg_series(_seg_files(path))
    elif kind == "dicom-rtstruct":
        named = rtstruct_series(path)
    return read_source_series(folder, series_uid, named=named, namer=path.name)


def grid_of(path: str | os.PathLike[str]) -> Space:
    """The voxel grid of an archive (this format or 0.1.3's, known by its first bytes) or
    of a NIfTI file, a mask's or the scan's (its header alone): what ``pack --like``
    reads a DICOM SEG onto.

    Raises
    ------
    MedmaskError
        ``path`` is neither.
    """
    where = Path(path)
    for _, claims, grid in GRID_KINDS:
        if claims(where):
            return grid(where)
    kinds = " or ".join(name for name, _, _ in GRID_KINDS)
    raise MedmaskError(f"{where}: not a {kinds} (a grid to read the SEG onto)")
