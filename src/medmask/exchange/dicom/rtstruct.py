"""Masks as a DICOM RT Structure Set on their source series, and RT Structure Sets as
masks on a grid. What is written and read, and why: docs/rtstruct.md."""

from __future__ import annotations

import datetime
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ImplicitVRLittleEndian,
    RTStructureSetStorage,
    generate_uid,
)
from spacetransformer import Space

from ...errors import FormatError, MedmaskError
from ...files.atomic import atomic_path
from ...version import __version__
from .concepts import segment_colour
from .contours import fill_stack, inset_polygons, stack_polygons
from .encoding import decimal_strings
from .grid import map_axes
from .names import NAME_LIMIT, cut_names, dicom_name, full_name, read_names
from .seg_writer import SegmentInput, _series_crop
from .source import PATIENT_STUDY_KEYWORDS, SourceSeries

__all__ = [
    "CONTOUR_STYLES",
    "RtExport",
    "RtRoi",
    "is_rtstruct",
    "read_rtstruct",
    "write_rtstruct",
]

_ROI_CONTOUR_SEQUENCE: Final = 0x30060039
PLANE_TOLERANCE: Final = 0.01  # of a voxel: how far off a grid plane a contour may lie
ContourStyle = Literal["voxel-edges", "inset"]
CONTOUR_STYLES: Final = ("voxel-edges", "inset")
INSET: Final = 0.25  # pixels: "inset" contours pass 0.25 pixel outside the boundary's centres


@dataclass(frozen=True)
class RtExport:
    """What was written: the file, its ROIs in ROI-number order, how many contours and
    points, the masks without voxels (ROIs without contours)."""

    path: Path
    rois: tuple[str, ...]
    contours: int
    points: int
    empty: tuple[str, ...]
    file_bytes: int


def write_rtstruct(
    masks: Sequence[SegmentInput],
    space: Space,
    source: SourceSeries,
    path: str | os.PathLike[str],
    *,
    algorithm: str | None = "medmask",
    interpreted_type: str = "ORGAN",
    colours: Mapping[str, tuple[int, int, int]] | None = None,
    label: str = "medmask",
    contours: ContourStyle = "voxel-edges",
) -> RtExport:
    """Write ``masks`` (on ``space``) as an RT Structure Set on ``source``'s images.

    Parameters
    ----------
    masks : sequence of SegmentInput
        ROIs in this order (ROI numbers 1, 2, ...); empty ones become ROIs without
        contours.
    space : spacetransformer.Space
        The masks' grid: the source series' grid up to axis order and direction.
    source : SourceSeries
        The series the masks were drawn on (:func:`~.source.read_source_series`).
    path : str or os.PathLike
        Output file; written completely or not at all.
    algorithm : str or None
        ROI Generation Algorithm AUTOMATIC (the default) or, None, MANUAL.
    interpreted_type : str
        RT ROI Interpreted Type of every ROI (ORGAN, ...).
    colours : mapping, optional
        sRGB colour per name (else the mask's meaning's, else distinct colours).
    label : str
        The Structure Set Label.
    contours : {"voxel-edges", "inset"}
        Along the pixels' edges (default: exact for readers that take the pixel centres
        inside the polygons, and the polygons' area is the mask's), or moved 0.25 pixel
        inwards (exact also for readers that round points to whole pixels and fill the
        boundary in, as rt-utils does; the area is smaller by a quarter pixel along the
        boundary). docs/rtstruct.md.

    Raises
    ------
    GeometryMismatchError
        The masks' grid is not the source series' (the message names both).
    MedmaskError
        Two masks share a name.
    """
    names = [m.name for m in masks]
    if len(set(names)) != len(names):
        raise MedmaskError("two masks share a name; ROI names must be unique")
    cut_names(names, "ROIName", "ROIDescription")  # (refuses names one once cut)
    if contours not in CONTOUR_STYLES:
        raise ValueError(f"contours must be one of {', '.join(CONTOUR_STYLES)}")
    axes = map_axes(space, source.grid, f"the source series in {source.folder}")
    shape = tuple(int(n) for n in space.shape)
    frame_of_reference = source.frame_of_reference_uid or generate_uid()
    planes = _Planes.of(source, contours)
    roi_items: list[bytes] = []
    empty: list[str] = []
    written = points = 0
    for number, mask in enumerate(masks, start=1):
        crop, offset = _series_crop(np.asarray(mask.voxels) != 0, mask.offset, shape, axes)
        polygons = stack_polygons(crop.transpose(2, 1, 0)) if crop.size else []
        if not polygons:
            empty.append(mask.name)
        items = planes.contour_items(polygons, offset)
        points += sum(len(edges) for _, edges in polygons)
        written += len(items)
        colour = (colours or {}).get(mask.name) or (mask.meaning.colour if mask.meaning else None)
        rgb = colour if colour is not None else segment_colour(number - 1, len(masks))
        roi = _implicit(0x3006002A, _text("\\".join(str(int(v)) for v in rgb)))
        if items:
            roi += _implicit(0x30060040, b"".join(items))
        roi += _implicit(0x30060084, _text(str(number)))
        roi_items.append(_item(roi))
    ds = _dataset(source, label, frame_of_reference)
    referenced, structure_rois, observations = _structure_sequences(
        source, str(ds.StudyInstanceUID), frame_of_reference, names, algorithm, interpreted_type
    )
    body = (
        _encode(ds)  # every attribute before (3006,0010)
        + referenced
        + structure_rois
        + _implicit(_ROI_CONTOUR_SEQUENCE, b"".join(roi_items))
        + observations
    )
    out = Path(path)
    with atomic_path(out) as partial:
        meta = DicomBytesIO()
        meta.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
        partial.write_bytes(meta.getvalue() + body)
    return RtExport(out, tuple(names), written, points, tuple(empty), out.stat().st_size)


@dataclass
class _Planes:
    """The source series' image planes: where their pixel corners lie (patient
    coordinates) and how a contour refers to its image."""

    corner: NDArray[np.float64]  # pixel corner (0, 0) of each slice
    across: NDArray[np.float64]  # one pixel along a row
    down: NDArray[np.float64]  # one pixel down a column
    images: list[bytes]  # each slice's Contour Image Sequence item
    inset: bool

    @classmethod
    def of(cls, source: SourceSeries, contours: ContourStyle) -> _Planes:
        grid = source.grid
        rows, columns = grid.pixel_spacing
        across, down = grid.row_direction * columns, grid.column_direction * rows
        return cls(
            grid.positions - 0.5 * across - 0.5 * down,
            across,
            down,
            _image_references(source),
            contours == "inset",
        )

    def contour_items(
        self, polygons: list[tuple[int, NDArray[np.int64]]], offset: tuple[int, ...]
    ) -> list[bytes]:
        """The Contour Sequence items of one ROI's polygons (on a crop at ``offset``),
        all points in one array step."""
        if not polygons:
            return []
        x0, y0, z0 = offset
        lengths = np.array([len(edges) for _, edges in polygons])
        flat: NDArray[np.float64] = np.concatenate([edges for _, edges in polygons])
        if self.inset:
            flat = inset_polygons(flat, lengths, INSET)
        on = z0 + np.repeat(np.array([s for s, _ in polygons]), lengths)
        world = self.corner[on] + (flat[:, :1] + x0) * self.across + (flat[:, 1:] + y0) * self.down
        text, ends = decimal_strings(world)  # x\\y\\z\\ of every point, in order
        stops = ends[np.cumsum(lengths * 3) - 1].tolist()  # each contour's last backslash
        starts = [0, *(stop + 1 for stop in stops[:-1])]
        return [
            _contour_item(self.images[z0 + s], text[start:stop], count, number)
            for number, ((s, _), start, stop, count) in enumerate(
                zip(polygons, starts, stops, lengths.tolist(), strict=True), start=1
            )
        ]


def _contour_item(image: bytes, data: bytes, points: int, number: int) -> bytes:
    return _item(
        _implicit(0x30060016, _item(image))
        + _implicit(0x30060042, b"CLOSED_PLANAR ")
        + _implicit(0x30060046, _text(str(points)))
        + _implicit(0x30060048, _text(str(number)))
        + _implicit(0x30060050, data + b" " if len(data) % 2 else data)
    )


def _image_reference(sop_class: str, sop_instance: str, frame: int = 0) -> bytes:
    """A Contour Image Sequence item's elements: the image, and its frame (from 1) when
    it is a frame of a multi-frame image (ReferencedFrameNumber, type 1C)."""
    reference = _implicit(0x00081150, _uid(sop_class)) + _implicit(0x00081155, _uid(sop_instance))
    if frame:
        number = str(frame).encode("ascii")
        reference += _implicit(0x00081160, number + b" " * (len(number) % 2))
    return reference


def _image_references(source: SourceSeries) -> list[bytes]:
    """Each grid slice's image reference (:func:`_image_reference`), in grid order."""
    frames = source.frame_numbers or (0,) * len(source.sop_instance_uids)
    return [
        _image_reference(source.sop_class_uid, uid, frame)
        for uid, frame in zip(source.sop_instance_uids, frames, strict=True)
    ]


def _implicit(tag: int, value: bytes) -> bytes:
    """An Implicit VR Little Endian element (tag, 32-bit length, value)."""
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def _item(content: bytes) -> bytes:
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(content)) + content


def _text(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b" " if len(raw) % 2 else raw


def _uid(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def _encode(ds: Dataset) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, ds)
    return buffer.getvalue()


def _dataset(source: SourceSeries, label: str, frame_of_reference: str) -> Dataset:
    """The attributes before the structure set's sequences (all below (3006,0010))."""
    now = datetime.datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    instance = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = RTStructureSetStorage
    ds.file_meta.MediaStorageSOPInstanceUID = instance
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = RTStructureSetStorage, instance
    for keyword in PATIENT_STUDY_KEYWORDS:
        value = source.header.get(keyword)
        setattr(ds, keyword, value if value is not None else "")
    if not ds.StudyInstanceUID:
        raise MedmaskError(f"{source.folder}: the source series has no StudyInstanceUID")
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 301, 1
    ds.SeriesDate = ds.StructureSetDate = now.strftime("%Y%m%d")
    ds.SeriesTime = ds.StructureSetTime = now.strftime("%H%M%S")
    ds.OperatorsName = ""
    ds.Manufacturer, ds.ManufacturerModelName = "medkit", "medmask"
    ds.SoftwareVersions = str(__version__)
    ds.FrameOfReferenceUID = frame_of_reference  # Frame of Reference module (dciodvfy)
    ds.PositionReferenceIndicator = ""
    ds.StructureSetLabel = label[:16]
    return ds


def _structure_sequences(
    source: SourceSeries,
    study_uid: str,
    frame: str,
    names: list[str],
    algorithm: str | None,
    interpreted_type: str,
) -> tuple[bytes, bytes, bytes]:
    """Referenced Frame of Reference, Structure Set ROI and RT ROI Observations
    sequences, encoded directly (pydicom's Datasets for 179 image references and 117 ROIs
    cost 0.1 s of a 0.3 s export)."""
    images = b"".join(_item(image) for image in _image_references(source))
    series = _item(
        _implicit(0x0020000E, _uid(source.series_instance_uid)) + _implicit(0x30060016, images)
    )
    study = _item(
        _implicit(0x00081150, _uid("1.2.840.10008.3.1.2.3.1"))  # Study Component Management
        + _implicit(0x00081155, _uid(study_uid))
        + _implicit(0x30060014, series)
    )
    referenced = _implicit(
        0x30060010, _item(_implicit(0x00200052, _uid(frame)) + _implicit(0x30060012, study))
    )
    generation = _text("AUTOMATIC" if algorithm else "MANUAL")
    rois, observations = [], []
    for number, name in enumerate(names, start=1):
        rois.append(
            _item(
                _implicit(0x30060022, _text(str(number)))
                + _implicit(0x30060024, _uid(frame))
                + _implicit(0x30060026, _utf8(name[:NAME_LIMIT]))
                + (_implicit(0x30060028, _utf8(name)) if len(name) > NAME_LIMIT else b"")
                + _implicit(0x30060036, generation)
            )
        )
        observations.append(
            _item(
                _implicit(0x30060082, _text(str(number)))
                + _implicit(0x30060084, _text(str(number)))
                + _implicit(0x300600A4, _text(interpreted_type))
                + _implicit(0x300600A6, b"")
            )
        )
    return (
        referenced,
        _implicit(0x30060020, b"".join(rois)),
        _implicit(0x30060080, b"".join(observations)),
    )


def _utf8(value: str) -> bytes:
    raw = value.encode("utf-8")
    return raw + b" " if len(raw) % 2 else raw


def _reference(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
    return item


def is_rtstruct(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a DICOM file of the RT Structure Set SOP class (header only)."""
    import pydicom  # noqa: PLC0415

    try:
        ds = pydicom.dcmread(
            path, stop_before_pixels=True, specific_tags=["SOPClassUID"], force=True
        )
    except Exception:  # not DICOM, or damaged: other kinds (or the error) say
        return False
    return str(ds.get("SOPClassUID", "")) == RTStructureSetStorage


@dataclass(frozen=True)
class RtRoi:
    """One ROI read onto a grid: its name, number, colour and voxels (on the grid's axes)."""

    name: str
    number: int
    colour: tuple[int, int, int] | None
    voxels: NDArray[np.bool_]


def read_rtstruct(
    path: str | os.PathLike[str],
    space: Space,
    *,
    frame_of_reference: str | None = None,
    series_uid: str | None = None,
    notes: list[str] | None = None,
) -> list[RtRoi]:
    """The ROIs of an RT Structure Set as masks on ``space`` (docs/rtstruct.md).

    Parameters
    ----------
    path : str or os.PathLike
        The RTSTRUCT file.
    space : spacetransformer.Space
        The grid (a source series' :meth:`~.grid.SliceGrid.space`, or an archive's).
    frame_of_reference : str, optional
        The grid's Frame of Reference UID; an ROI in another one is refused, unless the
        structure set names ``series_uid`` among the series its contours were drawn on
        (then read, with a note: older rt-utils wrote a new frame of reference into every
        structure set, its issue #29).
    series_uid : str, optional
        The SeriesInstanceUID of the grid's images.
    notes : list of str, optional
        Receives what was not read as given: contours off the grid's planes, points
        outside it, contours that are not CLOSED_PLANAR.

    Raises
    ------
    FormatError
        Not an RT Structure Set, or one whose ROIs lie in another frame of reference.
    """
    import pydicom  # noqa: PLC0415 - with the rest of the DICOM readers

    file = Path(path)
    try:
        ds = pydicom.dcmread(file, force=True)  # old files lack the preamble (pydicom's own)
    except Exception as err:
        raise FormatError(f"{file}: not a readable DICOM file ({type(err).__name__})") from err
    if str(ds.get("SOPClassUID", "")) != RTStructureSetStorage:
        raise FormatError(f"{file}: a DICOM file, but not an RT Structure Set")
    said = notes if notes is not None else []
    to_index = np.asarray(np.linalg.inv(_index_to_world(space)), dtype=np.float64)
    shape = tuple(int(n) for n in space.shape)
    rois = list(ds.get("StructureSetROISequence", []))
    read, why = read_names(  # (a Chinese planning system's GBK without the term ...)
        ds, [str(r.get("ROIName", "") or "") or _unnamed(r) for r in rois], "ROI names",
        file.name,
    )  # fmt: skip
    said.extend(why)
    unnamed = [f"{r.ROINumber} {name!r}" for r, name in zip(rois, read, strict=True)
               if not r.get("ROIName")]  # fmt: skip
    if unnamed:
        said.append(
            f"{file.name}: {len(unnamed)} ROI(s) with an empty ROIName, named by their "
            f"ROIDescription or number: {', '.join(unnamed[:5])}"
            + (f" and {len(unnamed) - 5} more" if len(unnamed) > 5 else "")
        )
    read = [  # (a name cut to the 64 characters ROIName holds: whole in ROIDescription)
        full_name(name, dicom_name(ds, str(r.get("ROIDescription", "") or ""))[0])
        for r, name in zip(rois, read, strict=True)
    ]
    names = {int(r.ROINumber): name for r, name in zip(rois, read, strict=True)}
    references = {int(r.ROINumber): str(r.get("ReferencedFrameOfReferenceUID", "") or "")
                  for r in ds.get("StructureSetROISequence", [])}  # fmt: skip
    out = []
    named_series = series_uid is not None and series_uid in _referenced_series(ds)
    for roi in ds.get("ROIContourSequence", []):
        number = int(roi.ReferencedROINumber)
        name = names.get(number, f"roi_{number}")
        own = references.get(number, "")
        if frame_of_reference and own and own != frame_of_reference:
            if not named_series:
                raise FormatError(
                    f"{file}: ROI {name!r} lies in frame of reference {own}, the grid in "
                    f"{frame_of_reference}: the contours cannot be placed on it"
                )
            other = (
                f"{file.name}: the structure set names the series {series_uid} but another "
                f"frame of reference ({own}; the series' is {frame_of_reference}): read onto "
                "the series it names (older rt-utils wrote a new frame of reference into "
                "every structure set)"
            )
            if other not in said:
                said.append(other)
        colour = roi.get("ROIDisplayColor")
        rgb = tuple(int(v) for v in colour) if colour is not None and len(colour) == 3 else None
        where = f"{file.name}: ROI {name!r}"
        voxels = _roi_voxels(roi.get("ContourSequence", []), to_index, shape, where, said)
        out.append(RtRoi(name, number, rgb, voxels))  # type: ignore[arg-type]
    return out


def rtstruct_series(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The SeriesInstanceUIDs an RT Structure Set says its contours were drawn on (none
    when it names none or cannot be read: reading it says why)."""
    import pydicom  # noqa: PLC0415

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        return tuple(sorted(_referenced_series(ds)))
    except Exception:
        return ()


def _referenced_series(ds: Dataset) -> set[str]:
    """The SeriesInstanceUIDs a structure set says its contours were drawn on (Referenced
    Frame of Reference Sequence > RT Referenced Study > RT Referenced Series)."""
    return {
        str(series.get("SeriesInstanceUID", ""))
        for frame in ds.get("ReferencedFrameOfReferenceSequence", None) or []
        for study in frame.get("RTReferencedStudySequence", None) or []
        for series in study.get("RTReferencedSeriesSequence", None) or []
    } - {""}


def _unnamed(roi: Dataset) -> str:
    """The name of an ROI whose ROIName is empty (allowed: type 2): its ROIDescription,
    else ``roi_<number>``."""
    return str(roi.get("ROIDescription", "") or "").strip() or f"roi_{roi.ROINumber}"


def _roi_voxels(
    contours: Sequence[Dataset],
    to_index: NDArray[np.float64],
    shape: tuple[int, ...],
    where: str,
    said: list[str],
) -> NDArray[np.bool_]:
    """An ROI's contours filled onto the grid, plane by plane (even-odd over all its
    contours on one plane); what cannot be placed goes into ``said``."""
    voxels = np.zeros(shape, dtype=bool)
    planes: dict[tuple[int, int], list[NDArray[np.float64]]] = {}
    raws, sizes = _contour_data(contours, where, said)
    if not raws:
        return voxels
    index = _to_index(raws, sizes, to_index, where, said)
    for points in np.split(index, np.cumsum(sizes)[:-1]):
        if not len(points):
            continue
        if not np.isfinite(points).all():
            said.append(f"{where}: a contour with a coordinate that is not finite; not read")
            continue
        placed = _plane_of(points)
        if placed is None:
            said.append(f"{where}: a contour off every plane of the grid; not read")
            continue
        axis, level = placed
        if not 0 <= level < shape[axis]:
            said.append(f"{where}: a contour outside the grid; not read")
            continue
        planes.setdefault((axis, level), []).append(np.delete(points, axis, axis=1) + 0.5)
    by_axis: dict[int, list[tuple[int, NDArray[np.float64]]]] = {}
    for (axis, level), polygons in planes.items():
        by_axis.setdefault(axis, []).extend((level, p) for p in polygons)
    for axis, on_axis in by_axis.items():
        first, second = (a for a in range(3) if a != axis)  # corner grid x, y
        points = np.concatenate([p for _, p in on_axis])
        if (
            (points < 0).any()
            or (points[:, 0] > shape[first]).any()
            or (points[:, 1] > shape[second]).any()
        ):
            said.append(f"{where}: points outside the grid (clipped)")
        counts = np.array([len(p) for _, p in on_axis])
        levels = np.array([level for level, _ in on_axis])
        levels_used, r0, c0, window = fill_stack(
            points, counts, levels, (shape[second], shape[first])
        )
        view = np.moveaxis(voxels, (first, second, axis), (0, 1, 2))
        height, width = window.shape[1:]
        view[c0 : c0 + width, r0 : r0 + height, levels_used] = window.transpose(2, 1, 0)
    return voxels


def _contour_data(
    contours: Sequence[Dataset], where: str, said: list[str]
) -> tuple[list[bytes], list[int]]:
    """The Contour Data bytes of an ROI's CLOSED_PLANAR contours and their point counts;
    what is not read goes into ``said``."""
    raws: list[bytes] = []
    sizes: list[int] = []  # points per contour
    short = 0  # contours of 1 or 2 points
    for contour in contours:
        kind = _text_of(contour, 0x30060042)  # ContourGeometricType (by tag: per contour)
        if kind != "CLOSED_PLANAR":
            said.append(f"{where}: a {kind or 'untyped'} contour has no area; not read")
            continue
        raw = _raw_points(contour).replace(b"\0", b"")
        count = raw.count(b"\\") + 1 if raw.strip(b" ") else 0
        if count % 3 or not count:
            said.append(f"{where}: a contour whose numbers are not x\\y\\z triplets; not read")
            continue
        short += count < 9
        raws.append(raw)
        sizes.append(count // 3)
    if short:
        said.append(
            f"{where}: {short} contour(s) of 1 or 2 points (no area; rt-utils writes them "
            "for structures one pixel wide) read as the pixels whose centres they pass through"
        )
    return raws, sizes


def _to_index(
    raws: list[bytes],
    sizes: list[int],
    to_index: NDArray[np.float64],
    where: str,
    said: list[str],
) -> NDArray[np.float64]:
    """Every contour's points at once, mapped to voxel index; a contour whose numbers
    are not numbers is reported and left out (its size set to 0)."""
    try:
        numbers = np.array(b"\\".join(raws).split(b"\\"), dtype=np.float64)
    except ValueError:  # find the contours at fault, keep the others
        parsed = []
        for i, raw in enumerate(raws):
            try:
                parsed.append(np.array(raw.split(b"\\"), dtype=np.float64))
            except ValueError:
                said.append(f"{where}: a contour whose Contour Data is not numbers; not read")
                sizes[i] = 0
        numbers = np.concatenate(parsed) if parsed else np.zeros(0)
    return numbers.reshape(-1, 3) @ to_index[:3, :3].T + to_index[:3, 3]


def _text_of(item: Dataset, tag: int) -> str:
    """A text element's value by tag, "" when absent."""
    if tag not in item:
        return ""
    value = item[tag].value
    return str(value or "").strip()


def _index_to_world(space: Space) -> NDArray[np.float64]:
    """The 4 x 4 matrix from voxel index to LPS millimetres."""
    matrix = np.eye(4)
    axes = np.column_stack([space.x_orientation, space.y_orientation, space.z_orientation])
    matrix[:3, :3] = axes * np.asarray(space.spacing, dtype=np.float64)
    matrix[:3, 3] = space.origin
    return matrix


def _raw_points(contour: Dataset) -> bytes:
    """Contour Data's bytes (``x\\y\\z\\...``), as the file holds them when pydicom has
    not converted them yet (it converts 300,000 numbers slowly), else re-joined."""
    if 0x30060050 not in contour:
        return b""
    value = getattr(contour.get_item(0x30060050), "value", None)
    if isinstance(value, bytes):
        return value.strip(b" \0")
    numbers = contour[0x30060050].value
    listed = numbers if isinstance(numbers, MultiValue | list | tuple) else [numbers]
    return "\\".join(repr(float(v)) for v in listed).encode("ascii")


def _plane_of(index: NDArray[np.float64]) -> tuple[int, int] | None:
    """The grid plane a contour lies on: (axis, index) where every point's coordinate
    along ``axis`` is within :data:`PLANE_TOLERANCE` of one integer; None if none is."""
    for axis in (2, 0, 1):
        values = index[:, axis]
        level = round(float(values.mean()))
        if np.abs(values - level).max() <= PLANE_TOLERANCE:
            return axis, level
    return None
