"""The image series a segmentation is drawn on: its slices, identifiers and geometry."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

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
    folder: str | os.PathLike[str], series_uid: str | None = None
) -> SourceSeries:
    """Read the image series in ``folder`` (headers only, files in any order or sub-folder).

    Parameters
    ----------
    folder : str or os.PathLike
        A folder of one series' files (other files are skipped and listed).
    series_uid : str, optional
        Which series, when the folder holds several.

    Raises
    ------
    FormatError
        No image slices, several series and no ``series_uid``, or slices that disagree
        on their orientation or size.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FormatError(f"{root}: not a folder of DICOM files")
    skipped: list[tuple[str, str]] = []
    by_series = _slices_by_series(root, skipped)
    chosen = _choose_series(root, by_series, series_uid, len(skipped))
    for uid, others in by_series.items():
        if uid != chosen:
            skipped += [(str(p), f"another series ({uid})") for p, _ in others]
    slices = by_series[chosen]
    first = slices[0][1]
    orientation = np.asarray([float(v) for v in first.ImageOrientationPatient])
    rows, columns = int(first.Rows), int(first.Columns)
    spacing = tuple(float(v) for v in first.PixelSpacing)
    for path, ds in slices:
        other = np.asarray([float(v) for v in ds.ImageOrientationPatient])
        if np.abs(other - orientation).max() > 1e-4:
            raise FormatError(f"{path}: its orientation differs from the series' first slice")
        if (int(ds.Rows), int(ds.Columns)) != (rows, columns):
            raise FormatError(f"{path}: {ds.Rows} x {ds.Columns} pixels, not {rows} x {columns}")
    u, v = orientation[:3], orientation[3:]
    normal = np.cross(u, v)
    slices.sort(key=lambda item: float(np.asarray(item[1].ImagePositionPatient, float) @ normal))
    positions = np.asarray([[float(x) for x in ds.ImagePositionPatient] for _, ds in slices])
    if len(positions) > 1 and np.min(np.linalg.norm(np.diff(positions, axis=0), axis=1)) < 1e-6:
        raise FormatError(f"{root}: two slices lie at one position (a duplicate or a 4-D series)")
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
        if keyword in first:
            setattr(header, keyword, first.data_element(keyword).value)  # type: ignore[union-attr]
    thickness = first.get("SliceThickness")
    return SourceSeries(
        folder=root,
        grid=grid,
        sop_class_uid=str(first.SOPClassUID),
        sop_instance_uids=tuple(str(ds.SOPInstanceUID) for _, ds in slices),
        series_instance_uid=chosen,
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")),
        header=header,
        slice_thickness=float(thickness) if thickness not in (None, "") else None,
        skipped=tuple(skipped),
    )


def _slices_by_series(
    root: Path, skipped: list[tuple[str, str]]
) -> dict[str, list[tuple[Path, Dataset]]]:
    """Image slices under ``root`` by SeriesInstanceUID; other files go to ``skipped``."""
    by_series: dict[str, list[tuple[Path, Dataset]]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError) as err:
            skipped.append((str(path), f"not readable as DICOM ({type(err).__name__})"))
            continue
        if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
            skipped.append((str(path), "not an image slice (no position or orientation)"))
            continue
        by_series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((path, ds))
    return by_series


def _choose_series(
    root: Path, by_series: dict[str, list[tuple[Path, Dataset]]], wanted: str | None, others: int
) -> str:
    if wanted is not None:
        if wanted not in by_series:
            raise FormatError(f"{root}: no slices of series {wanted}")
        return wanted
    if len(by_series) == 1:
        return next(iter(by_series))
    if not by_series:
        raise FormatError(f"{root}: no DICOM image slices found ({others} other files)")
    listing = ", ".join(f"{uid} ({len(v)} slices)" for uid, v in by_series.items())
    raise FormatError(f"{root}: holds several series, choose one: {listing}")
