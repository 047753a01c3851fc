"""The image series a segmentation is drawn on: its slices, identifiers and geometry."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pydicom
import pydicom.datadict
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from ...errors import FormatError, MedmaskWarning
from .grid import SliceGrid
from .names import dicom_name

__all__ = ["SeriesVoxels", "SourceSeries", "read_series_voxels", "read_source_series"]

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
    frame_numbers : tuple[int, ...]
        For a series of multi-frame images (Enhanced CT, MR, PET): each slice's frame
        number (from 1) in its instance, in grid order; empty for single-frame files.
    paths : tuple[Path, ...]
        Each slice's file, in grid order (:func:`read_series_voxels` reads them).
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
    frame_numbers: tuple[int, ...] = field(default=())
    paths: tuple[Path, ...] = field(default=())

    @property
    def instances(self) -> tuple[str, ...]:
        """The SOP Instance UIDs of the series' images, each once, in grid order."""
        return tuple(dict.fromkeys(self.sop_instance_uids))


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
        what = "a file" if root.exists() else "no such folder"
        raise FormatError(f"{root}: {what}; give the folder of the image series' DICOM files")
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
    spacing = first.spacing
    grid = SliceGrid(
        rows,
        columns,
        u / np.linalg.norm(u),
        v / np.linalg.norm(v),
        (spacing[0], spacing[1]),
        positions,
    )
    header = _patient_study(ds, root)
    framed = any(one.frame for one in slices)
    return SourceSeries(
        folder=root,
        grid=grid,
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uids=tuple(one.instance_uid for one in slices),
        series_instance_uid=chosen,
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        header=header,
        slice_thickness=first.thickness,
        skipped=tuple(skipped),
        frame_numbers=tuple(one.frame for one in slices) if framed else (),
        paths=tuple(one.path for one in slices),
    )


def _patient_study(ds: Dataset, root: Path) -> Dataset:
    """The attributes a derived object copies (:data:`PATIENT_STUDY_KEYWORDS`), text as its
    bytes evidently are (:func:`.names.dicom_name`): a Chinese PACS' GBK PatientName
    without SpecificCharacterSet, which pydicom reads as Latin-1 mojibake ("ÕÅÈý" for
    张三), would be written so into a SEG or RT Structure Set (UTF-8); a warning says which
    were read otherwise."""
    header = Dataset()
    reasons: dict[str, list[str]] = {}
    for keyword in PATIENT_STUDY_KEYWORDS:
        if keyword not in ds:
            continue
        value = ds.data_element(keyword).value  # type: ignore[union-attr]
        if isinstance(value, str | PersonName) and str(value):
            text, why = dicom_name(ds, str(value))
            if text != str(value):  # (escape sequences left out too, unsaid: not data)
                value = text
            if why is not None:
                reasons.setdefault(why, []).append(keyword)
        setattr(header, keyword, value)
    for why, keywords in reasons.items():
        warnings.warn(MedmaskWarning(f"{root}: {', '.join(keywords)}: {why}"), stacklevel=4)
    return header


def read_series_voxels(series: SourceSeries) -> SeriesVoxels:
    """The series' pixel values on its grid (columns, rows, slices: the axes of
    ``series.grid.space()``), Rescale Slope and Intercept applied (CT: Hounsfield units),
    read as they are indexed: ``voxels[:, :, k]`` reads one slice's file, ``voxels[i]``
    one column of every slice, ``voxels[...]`` all (what a preview draws, without the
    gigabyte of a whole CT in memory).

    Raises
    ------
    FormatError
        When indexed: a slice's pixels cannot be read (a compressed transfer syntax no
        installed decoder handles, a damaged file), the file and the reason named.
    """
    return SeriesVoxels(series)


class SeriesVoxels:
    """A series' pixel values, read from its files as indexed (:func:`read_series_voxels`)."""

    def __init__(self, series: SourceSeries) -> None:
        self.series = series
        grid = series.grid
        self.shape = (grid.columns, grid.rows, len(series.paths))
        self.dtype = np.dtype(np.float32)
        # the last file read (a multi-frame file is read once for all its frames)
        self._last: dict[Path, tuple[NDArray[Any], Dataset]] = {}

    def __getitem__(self, key: Any) -> NDArray[np.float32]:
        """Basic indexing (integers and slices; ``...`` alone for all)."""
        if key is Ellipsis:
            key = ()
        parts: list[Any] = list(key) if isinstance(key, tuple) else [key]
        columns, rows, slices = parts + [slice(None)] * (3 - len(parts))
        chosen: int | range = range(self.shape[2])[slices]
        if isinstance(chosen, int):
            return self._plane(chosen)[columns, rows]
        planes = [self._plane(k)[columns, rows] for k in chosen]
        if not planes:
            return np.zeros(self.shape[:2], np.float32)[columns, rows][..., None][..., :0]
        return np.stack(planes, axis=-1)

    def _plane(self, k: int) -> NDArray[np.float32]:
        """Slice ``k`` as (columns, rows), rescaled."""
        series = self.series
        path = series.paths[k]
        frame = series.frame_numbers[k] if series.frame_numbers else 0
        pixels, ds = _pixels(path, self._last)
        plane = pixels[frame - 1] if frame else pixels
        if plane.ndim != 2:
            raise FormatError(f"{path}: not one plane of grey values (pixels {plane.shape})")
        slope, intercept = _rescale(ds, frame)
        return np.asarray(plane.T * slope + intercept, dtype=np.float32)


def _pixels(
    path: Path, cache: dict[Path, tuple[NDArray[Any], Dataset]]
) -> tuple[NDArray[Any], Dataset]:
    """A file's pixel array (frames first for a multi-frame one) and its data set; the
    last file read is kept in ``cache``."""
    if path in cache:
        return cache[path]
    cache.clear()
    cache[path] = _read_pixels(path)
    return cache[path]


def _read_pixels(path: Path) -> tuple[NDArray[Any], Dataset]:
    try:
        ds = pydicom.dcmread(path)
    except Exception as err:  # (read before, as a slice: changed or damaged since)
        raise FormatError(f"{path}: not readable as DICOM ({type(err).__name__})") from err
    try:
        return np.asarray(ds.pixel_array), ds
    except Exception as err:  # pydicom's decoders raise many kinds
        syntax = getattr(ds.get("file_meta"), "TransferSyntaxUID", "")
        name = getattr(syntax, "name", "") or str(syntax)
        raise FormatError(
            f"{path}: its pixels cannot be read ({name}): {type(err).__name__}: {err}"
        ) from err


def _rescale(ds: Dataset, frame: int) -> tuple[float, float]:
    """(slope, intercept) of a slice: its frame's Pixel Value Transformation, the shared
    one, else the data set's Rescale Slope and Intercept (1, 0 when absent)."""
    places: list[Dataset] = []
    if frame:
        per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
        shared = ds.get("SharedFunctionalGroupsSequence") or []
        places += [
            groups.PixelValueTransformationSequence[0]
            for groups in (per_frame[frame - 1], *(shared[:1]))
            if groups.get("PixelValueTransformationSequence")
        ]
    places.append(ds)
    for place in places:
        if "RescaleSlope" in place or "RescaleIntercept" in place:
            return float(place.get("RescaleSlope", 1) or 1), float(
                place.get("RescaleIntercept", 0) or 0
            )
    return 1.0, 0.0


_IMAGE_POSITION: Final = 0x00200032
_IMAGE_ORIENTATION: Final = 0x00200037
_PIXEL_SPACING: Final = 0x00280030
_SERIES_UID: Final = 0x0020000E
_ROWS: Final = 0x00280010
_COLUMNS: Final = 0x00280011
_INSTANCE_UID: Final = 0x00080018
_SLICE_THICKNESS: Final = 0x00180050
_PER_FRAME: Final = 0x52009230  # PerFrameFunctionalGroupsSequence
_CLASS_UID: Final = 0x00080016
# Segmentation and Label Map Segmentation Storage: multi-frame, positioned, never a source
_SEGMENTATIONS: Final = frozenset({"1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7"})


@dataclass(frozen=True)
class _Slice:
    """What the grid needs of one slice, a single-frame file or one frame of a multi-frame
    one (the first one's dataset gives the rest)."""

    path: Path
    dataset: Dataset
    position: tuple[float, ...]
    orientation: tuple[float, ...]
    size: tuple[int, int]
    instance_uid: str
    spacing: tuple[float, ...]
    thickness: float | None
    frame: int = 0  # its number (from 1) in a multi-frame instance; 0: a single-frame file


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
        if _uid(ds, _CLASS_UID) in _SEGMENTATIONS:
            skipped.append((str(path), "a segmentation, not an image"))
            continue
        if _PER_FRAME in ds and _IMAGE_POSITION not in ds:
            frames = _frames(path, ds)
            if frames:
                by_series.setdefault(_uid(ds, _SERIES_UID), []).extend(frames)
            else:
                skipped.append((str(path), "a multi-frame object without frame positions"))
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
            _decimals(ds, _PIXEL_SPACING, path, 2),
            _thickness(ds),
        )
        by_series.setdefault(_uid(ds, _SERIES_UID), []).append(one)
    return by_series


def _frames(path: Path, ds: Dataset) -> list[_Slice]:
    """The frames of an enhanced multi-frame image (Enhanced CT, MR, PET; Legacy Converted
    Enhanced) as slices: each frame's position, orientation and pixel measures from its
    functional groups, else the shared ones (PS3.3 C.7.6.16); none when a frame has no
    position."""
    shared_items: list[Dataset] = list(ds.get("SharedFunctionalGroupsSequence") or [])
    shared = shared_items[0] if shared_items else Dataset()
    per_frame: list[Dataset] = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    size = (_unsigned(ds, _ROWS), _unsigned(ds, _COLUMNS))
    uid = _uid(ds, _INSTANCE_UID)
    out = []
    for number, groups in enumerate(per_frame, start=1):
        where = f"{path} (frame {number})"
        position = _group_value(groups, shared, "PlanePositionSequence", _IMAGE_POSITION)
        if position is None:
            return []
        orientation = _group_value(groups, shared, "PlaneOrientationSequence", _IMAGE_ORIENTATION)
        measures = _group_value(groups, shared, "PixelMeasuresSequence", _PIXEL_SPACING)
        if orientation is None or measures is None:
            raise FormatError(f"{where}: no ImageOrientationPatient or PixelSpacing")
        out.append(
            _Slice(
                path,
                ds,
                _decimals(position, _IMAGE_POSITION, Path(where), 3),
                _decimals(orientation, _IMAGE_ORIENTATION, Path(where), 6),
                size,
                uid,
                _decimals(measures, _PIXEL_SPACING, Path(where), 2),
                _thickness(measures),
                number,
            )
        )
    return out


def _group_value(groups: Dataset, shared: Dataset, sequence: str, tag: int) -> Dataset | None:
    """The functional group item of ``sequence`` holding ``tag``: the frame's own, else
    the shared one; None when neither has it."""
    for functional in (groups, shared):
        items = functional.get(sequence) or []
        if items and tag in items[0]:
            return items[0]  # type: ignore[no-any-return]
    return None


def _thickness(ds: Dataset) -> float | None:
    """SliceThickness (mm), None when absent, empty or not a number."""
    try:
        return float(_text_of(ds, _SLICE_THICKNESS))
    except ValueError:
        return None


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
        why = f"; {namer or 'the masks'} was drawn on {', '.join(named)}, not among them"
    raise FormatError(
        f"{root}: holds several series: {listing}{why}; choose one with --series-uid UID"
    )
