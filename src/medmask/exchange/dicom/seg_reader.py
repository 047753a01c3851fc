"""Read DICOM Segmentation objects from any writer into masks on one voxel grid.

BINARY, FRACTIONAL (thresholded at half the maximum, and said so) and LABELMAP
segmentations; frames in any order, slices without frames (empty there), several
instances of one segmentation (their segments side by side). Frames are placed by
their own position and orientation: onto a given Space (the source series' grid, so
that masks come back on the grid they were exported from) or, by default, onto the
grid the frames themselves span.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import SegmentationStorage
from spacetransformer import Space

from ...errors import FormatError, GeometryMismatchError, MedmaskError
from ...model.meaning import ALGORITHM_TYPES, Code, SegmentMeaning
from .concepts import rgb_of_cielab
from .grid import DIRECTION_TOLERANCE, POSITION_TOLERANCE, SliceGrid, describe_space
from .names import dicom_name, full_name, read_names

__all__ = [
    "SegSegment",
    "SegSeries",
    "dicom_header_problem",
    "is_dicom_seg",
    "meaning_of_segment",
    "read_seg",
]

KINDS = ("BINARY", "FRACTIONAL", "LABELMAP")
# Segmentation Storage, and Label Map Segmentation Storage (PS3.4, DICOM 2024 Sup 243)
SEG_CLASSES = (SegmentationStorage, "1.2.840.10008.5.1.4.1.1.66.7")


@dataclass(frozen=True)
class SegSegment:
    """One segment: its name (the label), number, file and colour, and where its frames are.

    A segmentation stored as several instances repeats its Segment Sequence in each and
    splits the frames among them: its segments are joined by segment number, ``parts``
    holding each instance's frames.
    """

    name: str
    number: int
    path: Path  # the first instance that declares it
    colour: tuple[int, int, int] | None
    frames: tuple[int, ...]  # indices into that instance's frames (LABELMAP: every frame)
    parts: tuple[tuple[Path, tuple[int, ...]], ...] = ()  # every instance's frames
    description: Dataset | None = field(default=None, repr=False, compare=False)

    @property
    def meaning(self) -> SegmentMeaning:
        """What the SEG says the segment is: codes, colour, algorithm."""
        return meaning_of_segment(self.description, self.colour)


def meaning_of_segment(
    item: Dataset | None, colour: tuple[int, int, int] | None = None
) -> SegmentMeaning:
    """A Segment Sequence item's coded concepts, colour and algorithm as a SegmentMeaning.

    Codes that are incomplete (no value or no scheme) are left out rather than guessed.
    """
    if item is None:
        return SegmentMeaning(colour=colour)

    def code(sequence: Any) -> Code | None:
        if not sequence:
            return None
        first = sequence[0]
        value = str(first.get("CodeValue", "") or first.get("LongCodeValue", "") or "")
        value = value or str(first.get("URNCodeValue", "") or "")
        scheme = str(first.get("CodingSchemeDesignator", "") or "")
        if not value or not scheme:
            return None
        return Code(value, scheme, str(first.get("CodeMeaning", "") or ""))

    types = item.get("SegmentedPropertyTypeCodeSequence")
    regions = item.get("AnatomicRegionSequence")
    category, kind = code(item.get("SegmentedPropertyCategoryCodeSequence")), code(types)
    if (category is None) != (kind is None):
        category = kind = None
    identification = item.get("SegmentationAlgorithmIdentificationSequence")
    first = identification[0] if identification else None
    algorithm_type = str(item.get("SegmentAlgorithmType", "") or "") or None
    name = str(item.get("SegmentAlgorithmName", "") or "") or (
        str(first.get("AlgorithmName", "") or "") if first is not None else ""
    )
    version = str(first.get("AlgorithmVersion", "") or "") if first is not None else ""
    return SegmentMeaning(
        category=category,
        type=kind,
        type_modifier=code(types[0].get("SegmentedPropertyTypeModifierCodeSequence"))
        if types
        else None,
        region=code(regions),
        region_modifier=code(regions[0].get("AnatomicRegionModifierSequence")) if regions else None,
        colour=colour,
        algorithm_type=algorithm_type if algorithm_type in ALGORITHM_TYPES else None,
        algorithm_name=name or None,
        algorithm_version=version or None,
        algorithm_family=code(first.get("AlgorithmFamilyCodeSequence"))
        if first is not None
        else None,
    )


@dataclass
class SegSeries:
    """Segments of one or more SEG instances, and the grid they are read onto.

    Use :meth:`masks` to decode them one at a time (each a full-size boolean array).
    """

    space: Space
    kind: str
    segments: list[SegSegment]
    notes: list[str] = field(default_factory=list)
    _instances: dict[Path, Dataset] = field(default_factory=dict, repr=False)
    _pixels: dict[Path, NDArray[Any]] = field(default_factory=dict, repr=False)

    def masks(self) -> Iterator[tuple[SegSegment, NDArray[np.bool_]]]:
        """Each segment's voxels on :attr:`space`, in segment order."""
        for segment in self.segments:
            yield segment, self._voxels(segment)

    def _voxels(self, segment: SegSegment) -> NDArray[np.bool_]:
        out = np.zeros(tuple(int(n) for n in self.space.shape), dtype=np.bool_)
        for path, frames in segment.parts or ((segment.path, segment.frames),):
            with damage_named(path):
                self._place_frames(out, segment.number, path, frames)
        return out

    def _place_frames(
        self, out: NDArray[np.bool_], number: int, path: Path, frames: tuple[int, ...]
    ) -> None:
        ds = self._instances[path]
        pixels = self._instance_pixels(path)
        kind = str(ds.SegmentationType)
        threshold = _threshold(ds)
        for index in frames:
            frame = pixels[index]
            if kind == "LABELMAP":
                selected = frame == number
            elif kind == "FRACTIONAL":
                selected = frame >= threshold
            else:
                selected = frame != 0
            if selected.any():
                _place(out, selected, _frame_geometry(ds, index, path), self.space, path)

    def _instance_pixels(self, path: Path) -> NDArray[Any]:
        if path not in self._pixels:
            self._pixels.clear()  # one instance's frames in memory at a time
            ds = self._instances[path]
            pixels = _frame_pixels(ds, path)
            self._pixels[path] = pixels
            if str(ds.SegmentationType) == "LABELMAP":
                self._report_undeclared(path, ds, pixels)
        return self._pixels[path]

    def _report_undeclared(self, path: Path, ds: Dataset, pixels: NDArray[Any]) -> None:
        """A label-map value no segment declares holds voxels no mask gets: say so."""
        declared = {int(item.SegmentNumber) for item in ds.SegmentSequence} | {0}
        values, counts = np.unique(pixels, return_counts=True)
        lost = [(int(v), int(c)) for v, c in zip(values, counts, strict=True) if v not in declared]
        if lost:
            listed = ", ".join(f"{v} ({c} pixels)" for v, c in lost[:8])
            self.notes.append(
                f"{path.name}: LABELMAP pixel values that no segment declares were not read: "
                f"{listed}{' ...' if len(lost) > 8 else ''}"
            )


def is_dicom_seg(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a DICOM file of the Segmentation SOP class.

    A file that begins like DICOM but whose header cannot be read is not one here (a
    folder scan skips it); :func:`dicom_header_problem` says why.
    """
    try:
        with Path(path).open("rb") as handle:
            if handle.read(132)[128:] != b"DICM":
                return False
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
        return str(ds.get("SOPClassUID", "")) in SEG_CLASSES
    except Exception:  # pydicom raises many kinds on damaged headers
        return False


def dicom_header_problem(path: str | os.PathLike[str]) -> str | None:
    """Why a file that begins like DICOM (``DICM`` at byte 128) is no readable SEG, or None.

    None also for files that do not begin like DICOM at all.
    """
    try:
        with Path(path).open("rb") as handle:
            if handle.read(132)[128:] != b"DICM":
                return None
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception as err:
        return f"its DICOM header cannot be read ({type(err).__name__}: {err})"
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class not in SEG_CLASSES:
        known = pydicom.uid.UID(sop_class).name if sop_class else "missing"
        return (
            f"a DICOM file, but not a Segmentation (SOP class {known}); pack reads DICOM SEG, "
            "NIfTI and .seg.nrrd (an image series goes to --source)"
        )
    return None


def read_seg(paths: Sequence[str | os.PathLike[str]], *, space: Space | None = None) -> SegSeries:
    """Open SEG instances (headers now, pixels when :meth:`SegSeries.masks` runs).

    Parameters
    ----------
    paths : sequence of paths
        One file, or every instance of one segmentation series.
    space : spacetransformer.Space, optional
        The grid to read onto (e.g. ``read_source_series(ct).grid.space()``); by default
        the grid of the frames' own slices, from the first slice with a frame to the last.

    Raises
    ------
    FormatError
        A file is not a readable DICOM SEG, its type is unknown, or its frames lack
        the position or orientation they need.
    GeometryMismatchError
        Frames that do not lie on the grid (a plane at an angle, between two slices).
    """
    instances: dict[Path, Dataset] = {}
    for raw in paths:
        path = Path(raw)
        try:
            ds = pydicom.dcmread(path, defer_size=1024)
        except Exception as err:
            raise FormatError(
                f"{path}: not a readable DICOM file ({type(err).__name__}: {err})"
            ) from err
        # nested items are parsed when first used (parsing all now doubles the reading
        # time): damage found later is named by damage_named
        with damage_named(path):
            _check_instance(ds, path)
        instances[path] = ds
    if not instances:
        raise FormatError("no DICOM SEG files given")
    kinds = {str(ds.SegmentationType) for ds in instances.values()}
    frames_of_reference = {str(ds.get("FrameOfReferenceUID", "")) for ds in instances.values()}
    if len(frames_of_reference) > 1:
        raise FormatError(
            f"the SEG instances lie in {len(frames_of_reference)} frames of reference; "
            "give the instances of one segmentation"
        )
    with damage_named(", ".join(str(p) for p in instances)):
        grid_space = space if space is not None else _frames_space(instances)
    notes: list[str] = []
    with damage_named(", ".join(str(p) for p in instances)):
        segments = _join_segments(instances, notes)
    for path, instance in instances.items():
        if str(instance.SegmentationType) == "FRACTIONAL":
            kind_of = str(instance.get("SegmentationFractionalType", "PROBABILITY")).lower()
            maximum = int(instance.get("MaximumFractionalValue", 255))
            notes.append(
                f"{path.name}: FRACTIONAL ({kind_of}) frames thresholded at half their maximum "
                f"({_threshold(instance)} of {maximum})"
            )
    return SegSeries(grid_space, "/".join(sorted(kinds)), segments, notes, instances)


def _check_instance(ds: Dataset, path: Path) -> None:
    """Refuse what is no SEG, or no SEG medmask can read, before any frame is touched."""
    if str(ds.get("SOPClassUID", "")) not in SEG_CLASSES:
        raise FormatError(f"{path}: not a DICOM Segmentation (SOP class {ds.get('SOPClassUID')})")
    kind = str(ds.get("SegmentationType", ""))
    if not kind:
        size = path.stat().st_size
        raise FormatError(
            f"{path}: no SegmentationType and no segments can be read: the file ends "
            f"after {size:,} bytes (cut short?) or is not a complete DICOM SEG"
        )
    if kind not in KINDS:
        raise FormatError(f"{path}: unknown SegmentationType {kind!r} (expected one of {KINDS})")
    if "SegmentSequence" not in ds:
        raise FormatError(f"{path}: no Segment Sequence: the SEG declares no segments")


@contextlib.contextmanager
def damage_named(where: str | Path) -> Iterator[None]:
    """Any error reading a damaged SEG (pydicom's and numpy's many kinds) as one
    FormatError naming the file; medmask's own errors pass unchanged."""
    try:
        yield
    except MedmaskError:
        raise
    except Exception as err:
        raise FormatError(f"{where}: a damaged DICOM SEG ({type(err).__name__}: {err})") from err


def _raw_label(item: Dataset) -> str:
    """A Segment Sequence item's SegmentLabel as pydicom reads it; without one (a required
    attribute some writers leave out: pydicom-seg, for a segment its template names only in
    SegmentDescription), what :func:`_unlabelled` names it by."""
    return str(item.get("SegmentLabel", "") or "") or _unlabelled(item)[0]


def _unlabelled(item: Dataset) -> tuple[str, str]:
    """(name, where it comes from) of a segment without a SegmentLabel: its
    SegmentDescription, else what its coded type means (``Left Kidney``: the modifier's
    meaning first), else ``segment_<n>``."""
    description = str(item.get("SegmentDescription", "") or "").strip()
    if description:
        return description, "SegmentDescription"
    types = item.get("SegmentedPropertyTypeCodeSequence") or []
    meaning = str(types[0].get("CodeMeaning", "") or "").strip() if types else ""
    if meaning:
        modifiers = types[0].get("SegmentedPropertyTypeModifierCodeSequence") or []
        modifier = str(modifiers[0].get("CodeMeaning", "") or "").strip() if modifiers else ""
        return f"{modifier} {meaning}".strip(), "the coded type's meaning"
    return f"segment_{int(item.SegmentNumber)}", "the segment number (no description)"


def _label(instance: Dataset, item: Dataset) -> str:
    """A Segment Sequence item's SegmentLabel as :func:`.names.dicom_name` reads it (whole
    again from its SegmentDescription when it was cut: :func:`.names.full_name`)."""
    return _whole(instance, item, dicom_name(instance, _raw_label(item))[0])


def _whole(instance: Dataset, item: Dataset, label: str) -> str:
    """``label`` (read), or the item's SegmentDescription when that holds it whole."""
    description = dicom_name(instance, str(item.get("SegmentDescription", "") or ""))[0]
    return full_name(label, description)


def _join_segments(instances: dict[Path, Dataset], notes: list[str]) -> list[SegSegment]:
    """Segments of every instance, one per (series, segment number), in order of appearance.

    A LABELMAP's segment 0 is a segment when the SEG declares it as a structure (as
    highdicom and dcmqi read it), not when its type is DCM 125040 "Background" (what
    highdicom writes for every label map); two segments with one label get ``_2``, ``_3``
    ... and a note says so.
    """
    found: dict[tuple[str, int], SegSegment] = {}
    for path, instance in instances.items():
        series_uid = str(instance.get("SeriesInstanceUID", ""))
        per_segment = _frames_by_segment(instance, path)
        items = [
            item for item in instance.SegmentSequence  # (a label map's value 0 described
            if not (int(item.SegmentNumber) == 0 and _is_background(item))  # as background)
        ]  # fmt: skip
        labels, why = read_names(  # GBK without SpecificCharacterSet, UTF-8 labelled Latin-1
            instance, [_raw_label(item) for item in items], "segment labels", path.name
        )
        notes.extend(why)
        notes.extend(_unlabelled_note(path, items, labels))
        for item, read in zip(items, labels, strict=True):
            label = _whole(instance, item, read)
            number = int(item.SegmentNumber)
            frames = per_segment.get(number, ())
            key = (series_uid, number)
            known = found.get(key)
            if known is not None:
                if (
                    known.description is not None
                    and _label(instances[known.path], known.description) != label
                ):
                    raise FormatError(
                        f"{path}: segment {number} is {label!r} here but "
                        f"{known.description.get('SegmentLabel')!r} in {known.path.name}; "
                        "give the instances of one segmentation"
                    )
                found[key] = dataclasses.replace(known, parts=(*known.parts, (path, frames)))
                continue
            lab = item.get("RecommendedDisplayCIELabValue")
            colour = rgb_of_cielab(tuple(int(v) for v in lab)) if lab else None  # type: ignore[arg-type]
            found[key] = SegSegment(
                label, number, path, colour, frames, ((path, frames),), description=item
            )
    segments: list[SegSegment] = []
    taken: set[str] = set()
    for segment in found.values():
        name = _unique(segment.name, taken)
        if name != segment.name:
            notes.append(
                f"{segment.path.name}: two segments are labelled {segment.name!r}; segment "
                f"{segment.number} is stored as {name!r}"
            )
        segments.append(dataclasses.replace(segment, name=name))
    return segments


def _unlabelled_note(path: Path, items: list[Dataset], labels: list[str]) -> list[str]:
    """The note naming the segments of ``path`` that had no SegmentLabel, and what named
    them (:func:`_unlabelled`); none when every segment has one."""
    named = [
        (int(item.SegmentNumber), label, _unlabelled(item)[1])
        for item, label in zip(items, labels, strict=True)
        if not item.get("SegmentLabel")
    ]
    if not named:
        return []
    sources = sorted({source for _, _, source in named})
    shown = ", ".join(f"{number} {label!r}" for number, label, _ in named[:_SHOWN])
    more = f" and {len(named) - _SHOWN} more" if len(named) > _SHOWN else ""
    return [
        f"{path.name}: {len(named)} segment(s) without a SegmentLabel (required in a SEG), "
        f"named by {' or '.join(sources)}: {shown}{more}"
    ]


_SHOWN = 5  # segments named in a note
BACKGROUND = ("125040", "DCM")  # PS3.16 CID 7150: Background


def _is_background(item: Dataset) -> bool:
    """Whether a segment's property type is "Background"."""
    types = item.get("SegmentedPropertyTypeCodeSequence") or []
    return any(
        (str(code.get("CodeValue", "")), str(code.get("CodingSchemeDesignator", ""))) == BACKGROUND
        for code in types
    )


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _threshold(ds: Dataset) -> int:
    maximum = int(ds.get("MaximumFractionalValue", 255) or 255)
    return (maximum + 1) // 2


def _number_of_frames(ds: Dataset) -> int:
    return int(ds.get("NumberOfFrames", 1) or 1)


def _frames_by_segment(ds: Dataset, path: Path) -> dict[int, tuple[int, ...]]:
    count = _number_of_frames(ds)
    if str(ds.SegmentationType) == "LABELMAP":
        every = tuple(range(count))
        return {int(item.SegmentNumber): every for item in ds.SegmentSequence}
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None or len(per_frame) != count:
        raise FormatError(f"{path}: needs one per-frame functional group item per frame")
    out: dict[int, list[int]] = {}
    for index in range(count):
        # per frame, or shared by every frame (highdicom's way for a single segment)
        number = _functional(ds, index, "SegmentIdentificationSequence", "ReferencedSegmentNumber")
        if number is None:
            raise FormatError(f"{path}: frame {index + 1} names no segment")
        out.setdefault(int(number), []).append(index)
    return {k: tuple(v) for k, v in out.items()}


def _frame_pixels(ds: Dataset, path: Path) -> NDArray[Any]:
    try:
        pixels = ds.pixel_array
    except Exception as err:  # pydicom raises many kinds for undecodable pixel data
        raise FormatError(
            f"{path}: its pixel data cannot be decoded ({type(err).__name__}: {err})"
        ) from err
    return pixels.reshape(_number_of_frames(ds), int(ds.Rows), int(ds.Columns))


@dataclass(frozen=True)
class _FrameGeometry:
    position: NDArray[np.float64]
    row_direction: NDArray[np.float64]
    column_direction: NDArray[np.float64]
    spacing: tuple[float, float]  # between rows, between columns


def _functional(ds: Dataset, index: int, sequence: str, attribute: str) -> Any:
    """An attribute from the frame's per-frame group, else from the shared one."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared = ds.get("SharedFunctionalGroupsSequence")
    for group in (per_frame[index] if per_frame else None, shared[0] if shared else None):
        if group is None:
            continue
        inner = group.get(sequence)
        if inner and attribute in inner[0]:
            return inner[0].data_element(attribute).value
    return None


def _frame_geometry(ds: Dataset, index: int, path: Path) -> _FrameGeometry:
    position = _functional(ds, index, "PlanePositionSequence", "ImagePositionPatient")
    orientation = _functional(ds, index, "PlaneOrientationSequence", "ImageOrientationPatient")
    spacing = _functional(ds, index, "PixelMeasuresSequence", "PixelSpacing")
    if position is None or orientation is None or spacing is None:
        if "TotalPixelMatrixRows" in ds or _functional(
            ds, index, "PlanePositionSlideSequence", "XOffsetInSlideCoordinateSystem"
        ):
            raise FormatError(
                f"{path}: a segmentation of a slide (tiled, slide coordinates), not of a "
                "volume in patient coordinates: medmask stores volumes only"
            )
        missing = [
            name
            for name, value in (
                ("Image Position (Patient)", position),
                ("Image Orientation (Patient)", orientation),
                ("Pixel Spacing", spacing),
            )
            if value is None
        ]
        raise FormatError(
            f"{path}: frame {index + 1} has no {', no '.join(missing)} (PlanePosition, "
            "PlaneOrientation, PixelMeasures functional groups): it cannot be placed"
        )
    values = [float(v) for v in orientation]
    return _FrameGeometry(
        np.asarray([float(v) for v in position]),
        np.asarray(values[:3]),
        np.asarray(values[3:]),
        (float(spacing[0]), float(spacing[1])),
    )


def _frames_space(instances: dict[Path, Dataset]) -> Space:
    """The grid the frames span: their plane, spacing, and every slice from first to last."""
    geometries = [
        (path, _frame_geometry(ds, i, path), int(ds.Rows), int(ds.Columns))
        for path, ds in instances.items()
        for i in range(_number_of_frames(ds))
    ]
    _, first, rows, columns = geometries[0]
    for other_path, g, r, c in geometries:
        if (
            np.abs(g.row_direction - first.row_direction).max() > 1e-4
            or np.abs(g.column_direction - first.column_direction).max() > 1e-4
            or (r, c) != (rows, columns)
        ):
            raise FormatError(f"{other_path}: frames of different orientation or size; give space=")
    normal = np.cross(first.row_direction, first.column_direction)
    heights = np.asarray([float(g.position @ normal) for _, g, _, _ in geometries])
    levels = np.unique(np.round(heights, 3))
    declared = None
    for ds in instances.values():
        shared = ds.get("SharedFunctionalGroupsSequence")
        measures = shared[0].get("PixelMeasuresSequence") if shared else None
        if measures and "SpacingBetweenSlices" in measures[0]:
            declared = float(measures[0].SpacingBetweenSlices)
    step = declared if declared else (float(np.min(np.diff(levels))) if len(levels) > 1 else 1.0)
    bottom = geometries[int(np.argmin(heights))][1].position
    count = round((levels[-1] - levels[0]) / step) + 1 if len(levels) > 1 else 1
    steps = (levels - levels[0]) / step
    if np.abs(steps - np.rint(steps)).max() > POSITION_TOLERANCE * 10:
        gaps = ", ".join(f"{v:g}" for v in np.unique(np.round(np.diff(levels), 3))[:6])
        raise FormatError(
            f"{next(iter(instances))}: its frames' slices are unevenly spaced (gaps of {gaps} "
            f"mm, step {step:g} mm): no regular grid holds them; read it onto its image "
            "series (--source / space=)"
        )
    positions = bottom + np.arange(count)[:, None] * step * normal
    grid = SliceGrid(
        rows, columns, first.row_direction, first.column_direction, first.spacing, positions
    )
    return grid.space()


def _place(
    out: NDArray[np.bool_], frame: NDArray[np.bool_], g: _FrameGeometry, space: Space, path: Path
) -> None:
    """Set ``frame``'s pixels in ``out`` (on ``space``), or refuse a frame off the grid."""
    directions = np.asarray(
        [space.x_orientation, space.y_orientation, space.z_orientation], dtype=np.float64
    )
    spacing = np.asarray(space.spacing, dtype=np.float64)
    origin = np.asarray(space.origin, dtype=np.float64)

    def index_of(world: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(directions @ (world - origin) / spacing)

    start = index_of(g.position)
    column_step = directions @ g.row_direction * g.spacing[1] / spacing  # per column
    row_step = directions @ g.column_direction * g.spacing[0] / spacing  # per row
    rounded = np.rint(start)
    tolerance = POSITION_TOLERANCE
    for step, direction in ((column_step, g.row_direction), (row_step, g.column_direction)):
        cosines = directions @ direction
        if np.sort(np.abs(cosines))[::-1][0] < 1 - DIRECTION_TOLERANCE:
            raise GeometryMismatchError(
                f"{path}: its frames' rows and columns run along "
                f"{np.round(g.row_direction, 4).tolist()} and "
                f"{np.round(g.column_direction, 4).tolist()}, none of the grid's axes "
                f"({describe_space(space)}); read it onto its own grid (no space=)"
            )
        if np.abs(step - np.rint(step)).max() > tolerance:
            raise GeometryMismatchError(
                f"{path}: its frames' pixel spacing ({g.spacing[0]:g} x {g.spacing[1]:g} mm) "
                f"is not the grid's ({describe_space(space)}): the SEG was not drawn on this "
                "grid; read it onto its own grid (no space=) or give its own series"
            )
    if np.abs(start - rounded).max() > tolerance:
        raise GeometryMismatchError(
            f"{path}: a frame at {np.round(g.position, 3).tolist()} lies between the grid's "
            f"voxels ({describe_space(space)})"
        )
    column_axis, row_axis = int(np.argmax(np.abs(column_step))), int(np.argmax(np.abs(row_step)))
    slice_axis = 3 - column_axis - row_axis
    rows, columns = frame.shape
    begin = rounded.astype(int)
    extent = begin.copy()
    extent[column_axis] += int(np.rint(column_step[column_axis])) * (columns - 1)
    extent[row_axis] += int(np.rint(row_step[row_axis])) * (rows - 1)
    shape = np.asarray(out.shape)
    if (np.minimum(begin, extent) < 0).any() or (np.maximum(begin, extent) >= shape).any():
        raise GeometryMismatchError(
            f"{path}: a frame at {np.round(g.position, 3).tolist()} reaches outside the grid "
            f"({describe_space(space)})"
        )
    index: list[Any] = [0, 0, 0]
    index[slice_axis] = int(begin[slice_axis])
    for axis, step, n in ((column_axis, column_step, columns), (row_axis, row_step, rows)):
        sign = int(np.rint(step[axis]))
        stop = int(begin[axis]) + sign * n
        index[axis] = slice(int(begin[axis]), stop if stop >= 0 else None, sign)
    view = out[tuple(index)]  # axes in out's order: the two in-plane axes
    view |= frame if column_axis > row_axis else frame.T  # frame is (row, column)
