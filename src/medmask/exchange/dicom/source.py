"""The image series a segmentation is drawn on: its slices, identifiers and geometry."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pydicom
import pydicom.datadict
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from ...errors import FormatError
from .grid import SliceGrid

__all__ = ["SourceSeries", "read_source_series"]

# What a derived object copies from its source (Patient, General Study, Frame of Reference).
PATIENT_STUDY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
)


@dataclass(frozen=True)
class SourceSeries:
    """One series of parallel image slices, sorted along the slice normal.

    Attributes
    ----------
    folder : Path
        Where it was read from.
    grid : SliceGrid
        Its geometry.
    sop_class_uid : str
        The slices' SOP Class UID.
    sop_instance_uids : tuple[str, ...]
        Each slice's SOP Instance UID, in grid order.
    series_instance_uid, frame_of_reference_uid : str
        The series and its frame of reference.
    header : Dataset
        Patient and study attributes (``PATIENT_STUDY_KEYWORDS``) of the first slice.
    skipped : tuple[tuple[str, str], ...]
        Files in the folder that are not slices of this series, with the reason.
    """

    folder: Path
    grid: SliceGrid
    sop_class_uid: str
    sop_instance_uids: tuple[str, ...]
    series_instance_uid: str
    frame_of_reference_uid: str
    header: Dataset
    slice_thickness: float | None = None
    skipped: tuple[tuple[str, str], ...] = field(default=())


def read_source_series(
    folder: str | os.PathLike[str],
    series_uid: str | None = None,
    *,
    named: Iterable[str] = (),
    namer: str = "",
) -> SourceSeries:
    """Read the image series in ``folder`` (headers only, files in any order or sub-folder).

    Parameters
    ----------
    folder : str or os.PathLike
        A folder of one series' files, or of a study's (a PACS export: the scan beside
        its scouts and other series); other files are skipped and listed.
    series_uid : str, optional
        Which series, when the folder holds several.
    named : iterable of str, optional
        The series the masks say they were drawn on (a SEG's Referenced Series, an RT
        Structure Set's, an archive's recorded series): without ``series_uid``, the one
        of them the folder holds is read.
    namer : str, optional
        What ``named`` comes from, for the error when the folder holds none of them.

    Raises
    ------
    FormatError
        No image slices, several series and none chosen, or slices that disagree on their
        orientation or size.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FormatError(f"{root}: not a folder of DICOM files")
    skipped: list[tuple[str, str]] = []
    by_series = _slices_by_series(root, skipped)
    chosen = _choose_series(root, by_series, series_uid, len(skipped), tuple(named), namer)
    for uid, others in by_series.items():
        if uid != chosen:
            skipped += [(str(s.path), f"another series ({uid})") for s in others]
    slices = by_series[chosen]
    first = slices[0]
    orientation = np.asarray(first.orientation)
    rows, columns = first.size
    for one in slices:
        if np.abs(np.asarray(one.orientation) - orientation).max() > 1e-4:
            raise FormatError(f"{one.path}: its orientation differs from the series' first slice")
        if one.size != first.size:
            raise FormatError(
                f"{one.path}: {one.size[0]} x {one.size[1]} pixels, not {rows} x {columns}"
            )
    u, v = orientation[:3], orientation[3:]
    normal = np.cross(u, v)
    all_positions = np.asarray([one.position for one in slices])
    order = np.argsort(all_positions @ normal, kind="stable")
    slices = [slices[i] for i in order.tolist()]
    positions = all_positions[order]
    if len(positions) > 1 and np.min(np.linalg.norm(np.diff(positions, axis=0), axis=1)) < 1e-6:
        raise FormatError(f"{root}: two slices lie at one position (a duplicate or a 4-D series)")
    ds = first.dataset
    spacing = _decimals(ds, _PIXEL_SPACING, first.path, 2)
    grid = SliceGrid(
        rows,
        columns,
        u / np.linalg.norm(u),
        v / np.linalg.norm(v),
        (spacing[0], spacing[1]),
        positions,
    )
    header = Dataset()
    for keyword in PATIENT_STUDY_KEYWORDS:
        if keyword in ds:
            setattr(header, keyword, ds.data_element(keyword).value)  # type: ignore[union-attr]
    thickness = ds.get("SliceThickness")
    return SourceSeries(
        folder=root,
        grid=grid,
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uids=tuple(one.instance_uid for one in slices),
        series_instance_uid=chosen,
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        header=header,
        slice_thickness=float(thickness) if thickness not in (None, "") else None,
        skipped=tuple(skipped),
    )


_IMAGE_POSITION: Final = 0x00200032
_IMAGE_ORIENTATION: Final = 0x00200037
_PIXEL_SPACING: Final = 0x00280030
_SERIES_UID: Final = 0x0020000E
_ROWS: Final = 0x00280010
_COLUMNS: Final = 0x00280011
_INSTANCE_UID: Final = 0x00080018


@dataclass(frozen=True)
class _Slice:
    """What the grid needs of one slice (the first one's dataset gives the rest)."""

    path: Path
    dataset: Dataset
    position: tuple[float, ...]
    orientation: tuple[float, ...]
    size: tuple[int, int]
    instance_uid: str


def _slices_by_series(root: Path, skipped: list[tuple[str, str]]) -> dict[str, list[_Slice]]:
    """Image slices under ``root`` by SeriesInstanceUID; other files go to ``skipped``.

    Positions, orientations and UIDs are read from the elements' bytes (text in every
    transfer syntax), not through pydicom's value conversion: a series of hundreds of
    slices is read several times faster, and a value that is not numbers is named."""
    by_series: dict[str, list[_Slice]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError) as err:
            skipped.append((str(path), f"not readable as DICOM ({type(err).__name__})"))
            continue
        if _IMAGE_POSITION not in ds or _IMAGE_ORIENTATION not in ds:
            skipped.append((str(path), "not an image slice (no position or orientation)"))
            continue
        one = _Slice(
            path,
            ds,
            _decimals(ds, _IMAGE_POSITION, path, 3),
            _decimals(ds, _IMAGE_ORIENTATION, path, 6),
            (_unsigned(ds, _ROWS), _unsigned(ds, _COLUMNS)),
            _uid(ds, _INSTANCE_UID),
        )
        by_series.setdefault(_uid(ds, _SERIES_UID), []).append(one)
    return by_series


def _text_of(ds: Dataset, tag: int) -> str:
    if tag not in ds:
        return ""
    value = ds.get_item(tag).value
    if isinstance(value, bytes):  # not converted yet: text in any transfer syntax
        return value.decode("ascii", "replace").strip(" \0")
    if isinstance(value, list | tuple | MultiValue):
        return "\\".join(str(v) for v in value)
    return "" if value is None else str(value)


def _unsigned(ds: Dataset, tag: int) -> int:
    """A US value (0 when absent), from its two bytes in the file's byte order."""
    if tag not in ds:
        return 0
    value = ds.get_item(tag).value
    if isinstance(value, bytes) and len(value) == 2:
        little_endian = ds.original_encoding[1] is not False
        return int.from_bytes(value, "little" if little_endian else "big")
    return int(ds[tag].value or 0)


def _uid(ds: Dataset, tag: int) -> str:
    return _text_of(ds, tag)


def _decimals(ds: Dataset, tag: int, path: Path, count: int) -> tuple[float, ...]:
    """A decimal-string value of ``count`` numbers, or FormatError naming the file."""
    text = _text_of(ds, tag)
    try:
        values = tuple(float(v) for v in text.split("\\"))
    except ValueError:
        values = ()
    if len(values) != count or not all(np.isfinite(values)):
        name = pydicom.datadict.keyword_for_tag(tag)
        raise FormatError(f"{path}: {name} is {text!r}, not {count} numbers")
    return values


def _choose_series(
    root: Path,
    by_series: dict[str, list[_Slice]],
    wanted: str | None,
    others: int,
    named: tuple[str, ...],
    namer: str,
) -> str:
    """The series to read: ``wanted``, the only one, or the one of ``named`` the folder
    holds."""
    if wanted is not None:
        if wanted not in by_series:
            raise FormatError(f"{root}: no slices of series {wanted}")
        return wanted
    if len(by_series) == 1:
        return next(iter(by_series))
    if not by_series:
        raise FormatError(f"{root}: no DICOM image slices found ({others} other files)")
    held = [uid for uid in dict.fromkeys(named) if uid in by_series]
    if len(held) == 1:
        return held[0]
    listing = ", ".join(f"{uid} ({len(v)} slices)" for uid, v in by_series.items())
    why = ""
    if named and not held:
        why = f"; none is the series {namer or 'the masks'} name(s) ({', '.join(named)})"
    raise FormatError(
        f"{root}: holds several series: {listing}{why}; choose one with --series-uid UID"
    )
