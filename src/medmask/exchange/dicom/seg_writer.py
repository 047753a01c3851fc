"""Write masks as a DICOM Segmentation (BINARY or LABELMAP) on the series they were drawn on.

BINARY (the default) keeps overlapping masks exact (every segment has its own frames; a
label map could not hold s0000's 21 shared voxels), and only the slices a segment
touches get a frame, one bit per pixel. LABELMAP (Label Map Segmentation Storage,
1.2.840.10008.5.1.4.1.1.66.7, DICOM 2024c) holds every segment in one frame per slice,
8 bits per pixel (16 beyond 255 segments); masks that overlap are refused, naming them.
Slices without any label get no frame in either. Empty masks are segments without
frames (by default; ``keep_empty=False`` leaves them out), so "looked for and not found"
survives a round trip. By default the whole data set is deflated
(Deflated Explicit VR Little Endian, 1.2.840.10008.1.2.1.99), which pydicom, highdicom,
dcmtk and dicom3tools read, and which shrinks the sparse bit planes ~40x
(benchmarks/seg_export.py). ``transfer_syntax="explicit"`` writes them uncompressed for
readers that do not inflate.

Module by module the object follows PS3.3 A.51 (Segmentation IOD); the patient, study
and frame of reference are the source series'.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    SegmentationStorage,
    generate_uid,
)
from spacetransformer import Space

from ...errors import MedmaskError
from ...files.atomic import atomic_path
from ...model.meaning import SegmentMeaning
from ...version import __version__
from . import encoding as enc
from .concepts import Code, cielab_of_rgb, concept_for, meaning_of_concept, segment_colour
from .grid import AxisMap, map_axes
from .names import NAME_LIMIT, cut_names
from .source import PATIENT_STUDY_KEYWORDS, SourceSeries

__all__ = ["LABELMAP_STORAGE", "SegExport", "SegmentInput", "write_seg"]

TransferSyntax = Literal["deflated", "explicit"]
SegType = Literal["binary", "labelmap"]
LABELMAP_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"  # Label Map Segmentation Storage
_SYNTAXES = {"deflated": DeflatedExplicitVRLittleEndian, "explicit": ExplicitVRLittleEndian}
SOURCE_IMAGE = Code("121322", "DCM", "Source image for image processing operation")
SEGMENTATION_DERIVATION = Code("113076", "DCM", "Segmentation")
ARTIFICIAL_INTELLIGENCE = Code("123110", "DCM", "Artificial Intelligence")
LABEL_LIMIT = NAME_LIMIT  # SegmentLabel is LO


@dataclass(frozen=True)
class SegmentInput:
    """One mask to write: its name and voxels (non-zero = in) on the masks' Space.

    ``voxels`` is the whole mask, or a crop of it whose first voxel is at ``offset``
    (``MaskArchive.load_crop``): only the crop is read.
    """

    name: str
    voxels: NDArray[Any]
    offset: tuple[int, int, int] = (0, 0, 0)
    meaning: SegmentMeaning | None = None  # codes, colour, algorithm to write (else derived)


@dataclass(frozen=True)
class SegExport:
    """What was written: the file, its segments (in segment-number order) and frames, the
    empty masks (segments without frames, or left out with ``keep_empty=False``)."""

    path: Path
    segments: tuple[str, ...]
    frames: int
    empty: tuple[str, ...]
    file_bytes: int
    transfer_syntax: str
    segmentation_type: str = "BINARY"


def write_seg(
    masks: Sequence[SegmentInput],
    space: Space,
    source: SourceSeries,
    path: str | os.PathLike[str],
    *,
    algorithm: str | None = "medmask",
    algorithm_version: str = "",
    transfer_syntax: TransferSyntax = "deflated",
    series_description: str = "Segmentation",
    series_number: int = 300,
    colours: Mapping[str, tuple[int, int, int]] | None = None,
    segmentation_type: SegType = "binary",
    keep_empty: bool = True,
) -> SegExport:
    """Write ``masks`` (on ``space``) as one DICOM SEG instance referencing ``source``.

    Parameters
    ----------
    masks : sequence of SegmentInput
        Segments in this order (segment numbers 1, 2, ...).
    space : spacetransformer.Space
        The masks' grid; it must be the source series' grid, up to axis order and
        direction (see :func:`medmask.exchange.dicom.grid.map_axes`).
    source : SourceSeries
        The series the masks were drawn on (:func:`read_source_series`).
    path : str or os.PathLike
        Output file; written completely or not at all.
    algorithm : str or None
        Name of the algorithm that made the masks (SegmentAlgorithmType AUTOMATIC and an
        Algorithm Identification), or None for masks drawn by hand (MANUAL).
    algorithm_version : str
        Its version.
    transfer_syntax : {"deflated", "explicit"}
        Deflated (small) or uncompressed Explicit VR Little Endian.
    series_description : str
        The SEG series' description.
    series_number : int
        The SEG series' number.
    colours : mapping, optional
        sRGB colour per name; others get distinct colours.
    segmentation_type : {"binary", "labelmap"}
        BINARY (overlaps kept) or LABELMAP (one label per voxel; overlaps refused).
    keep_empty : bool
        Empty masks as segments without frames (default), or left out.

    Returns
    -------
    SegExport

    Raises
    ------
    GeometryMismatchError
        The masks' grid is not the source series' (the message names both).
    MedmaskError
        Two masks share a name; masks overlap in a LABELMAP; with ``keep_empty=False``,
        no mask has a voxel.
    """
    if transfer_syntax not in _SYNTAXES:
        raise ValueError(f"transfer_syntax must be one of {sorted(_SYNTAXES)}")
    if segmentation_type not in ("binary", "labelmap"):
        raise ValueError("segmentation_type must be 'binary' or 'labelmap'")
    names = [m.name for m in masks]
    if len(set(names)) != len(names):
        raise MedmaskError("two masks share a name; segment labels must be unique")
    cut_names(names, "SegmentLabel", "SegmentDescription")  # (refuses names one once cut)
    axes = map_axes(space, source.grid, f"the source series in {source.folder}")
    grid = source.grid
    shape = tuple(int(n) for n in space.shape)
    crops: list[tuple[str, NDArray[np.bool_], tuple[int, ...], NDArray[np.intp]]] = []
    empty = []
    meanings = {mask.name: mask.meaning for mask in masks}
    for mask in masks:
        crop, offset = _series_crop(np.asarray(mask.voxels) != 0, mask.offset, shape, axes)
        touched = np.flatnonzero(crop.any(axis=(0, 1))) if crop.size else np.zeros(0, np.intp)
        if touched.size == 0:
            empty.append(mask.name)
            if not keep_empty:
                continue
        crops.append((mask.name, crop, offset, touched))
    if not crops:  # keep_empty=False, and every mask is empty
        raise MedmaskError("every mask is empty: a DICOM SEG needs one segment with voxels")
    labelmap = segmentation_type == "labelmap"
    pixels: NDArray[Any]
    if labelmap:
        pixels, frame_slices = _label_frames(crops, grid.rows, grid.columns, len(grid.positions))
    else:
        pixels, frame_slices = _binary_frames(crops, grid.rows, grid.columns)
    count = len(frame_slices)
    ds = _dataset(source, series_description, series_number, transfer_syntax, labelmap)
    if labelmap:
        _labelmap_attributes(ds, pixels.dtype.itemsize * 8)
    ds.Rows, ds.Columns = grid.rows, grid.columns
    ds.NumberOfFrames = count
    ds.SegmentSequence = DicomSequence(
        _segment(
            number,
            name,
            algorithm,
            algorithm_version,
            (colours or {}).get(name),
            i,
            len(masks),
            meanings.get(name),
        )
        for i, (number, (name, *_)) in enumerate(enumerate(crops, start=1))
    )
    ds.SharedFunctionalGroupsSequence = DicomSequence([_shared_groups(source)])
    if labelmap:
        data = pixels.astype("<u1" if pixels.dtype.itemsize == 1 else "<u2").tobytes()
    else:
        data = np.packbits(pixels.reshape(-1), bitorder="little").tobytes()
    body = (
        _encode(ds)
        + enc.sequence(0x52009230, _FrameEncoder(source).items(frame_slices, labelmap=labelmap))
        + enc.element(0x7FE00010, "OW" if pixels.dtype.itemsize == 2 else "OB", _even(data))
    )
    out = Path(path)
    with atomic_path(out) as partial:
        _write_file(partial, ds.file_meta, body, deflate=transfer_syntax == "deflated")
    return SegExport(
        out,
        tuple(c[0] for c in crops),
        count,
        tuple(empty),
        out.stat().st_size,
        _SYNTAXES[transfer_syntax],
        "LABELMAP" if labelmap else "BINARY",
    )


Crop = tuple[str, NDArray[np.bool_], tuple[int, ...], NDArray[np.intp]]


def _even(data: bytes) -> bytes:
    return data + (b"\0" if len(data) % 2 else b"")


def _binary_frames(
    crops: Sequence[Crop], rows: int, columns: int
) -> tuple[NDArray[np.bool_], list[tuple[int, int]]]:
    """One bit plane per (segment, touched slice); segment numbers follow ``crops``.
    Nothing touched at all: one blank frame of segment 1 (the IOD needs a frame)."""
    count = sum(len(touched) for *_, touched in crops)
    pixels = np.zeros((max(count, 1), rows, columns), dtype=np.bool_)
    frame_slices: list[tuple[int, int]] = []  # (segment number, slice index)
    for number, (_, crop, (x, y, z), touched) in enumerate(crops, start=1):
        at = len(frame_slices)
        width, height = crop.shape[0], crop.shape[1]
        pixels[at : at + len(touched), y : y + height, x : x + width] = crop[
            :, :, touched
        ].transpose(2, 1, 0)
        frame_slices += [(number, z + int(s)) for s in touched]
    return pixels, frame_slices or [(1, 0)]


def _label_frames(
    crops: Sequence[Crop], rows: int, columns: int, slices: int
) -> tuple[NDArray[np.unsignedinteger[Any]], list[tuple[int, int]]]:
    """One label frame per slice any segment touches (segment number per pixel, 0 for
    none); overlapping masks are refused, naming each pair and how many voxels."""
    dtype = np.uint8 if len(crops) <= 255 else np.uint16
    labels = np.zeros((slices, rows, columns), dtype=dtype)
    overlaps: list[str] = []
    for number, (name, crop, (x, y, z), touched) in enumerate(crops, start=1):
        if not touched.size:
            continue
        inside = crop.transpose(2, 1, 0)
        region = labels[z : z + inside.shape[0], y : y + inside.shape[1], x : x + inside.shape[2]]
        taken = region[inside]
        if taken.any():
            for other in np.unique(taken[taken != 0]):
                shared = int(np.count_nonzero(taken == other))
                overlaps.append(f"{crops[int(other) - 1][0]} and {name} ({shared} voxels)")
        region[inside] = number
    if overlaps:
        raise MedmaskError(
            "masks overlap, and a LABELMAP holds one segment per voxel: "
            + "; ".join(overlaps[:8])
            + (f" and {len(overlaps) - 8} more" if len(overlaps) > 8 else "")
            + " (write them as a BINARY SEG, which keeps overlaps)"
        )
    used = np.flatnonzero(labels.any(axis=(1, 2)))
    if not used.size:
        used = np.zeros(1, np.intp)  # nothing labelled: one blank frame
    return labels[used], [(0, int(s)) for s in used]


def _labelmap_attributes(ds: Dataset, bits: int) -> None:
    """What a LABELMAP changes from a BINARY SEG (as highdicom writes one)."""
    ds.SegmentationType = "LABELMAP"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelPaddingValue = 0
    ds.PresentationLUTShape = "IDENTITY"
    ds.SegmentsOverlap = "NO"
    organization = ds.DimensionOrganizationSequence[0].DimensionOrganizationUID
    item = Dataset()
    item.DimensionOrganizationUID = organization
    item.DimensionIndexPointer, item.FunctionalGroupPointer = 0x00200032, 0x00209113
    item.DimensionDescriptionLabel = "Image Position Patient"
    ds.DimensionIndexSequence = DicomSequence([item])


def _series_crop(
    crop: NDArray[np.bool_],
    offset: tuple[int, int, int],
    shape: tuple[int, ...],
    axes: AxisMap,
) -> tuple[NDArray[np.bool_], tuple[int, ...]]:
    """A mask crop and its offset in the series' (column, row, slice) axes."""
    if crop.ndim != 3 or any(
        o < 0 or o + n > s for o, n, s in zip(offset, crop.shape, shape, strict=True)
    ):
        raise MedmaskError(
            f"a crop of shape {crop.shape} at {offset} does not fit the masks' {shape}"
        )
    flipped = [
        s - o - n if f else o
        for o, n, s, f in zip(offset, crop.shape, shape, axes.flips, strict=True)
    ]
    series_offset = list(axes.shift)
    for a, b in enumerate(axes.axes):
        series_offset[b] += flipped[a]
    return axes.to_series(crop), tuple(series_offset)


def _encode(ds: Dataset) -> bytes:
    """The data set (no file meta) as Explicit VR Little Endian bytes, by pydicom."""
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, ds)
    return buffer.getvalue()


def _write_file(path: Path, meta: FileMetaDataset, body: bytes, *, deflate: bool) -> None:
    """Preamble, DICM, file meta (pydicom) and the body, deflated for 1.2.840.10008.1.2.1.99."""
    head = DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    if deflate:  # PS3.5 A.5: raw deflate (no zlib header) of everything after the meta
        packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        body = packer.compress(body) + packer.flush()
        body += b"\0" if len(body) % 2 else b""
    with path.open("wb") as handle:
        handle.write(head.getvalue())
        handle.write(body)


class _FrameEncoder:
    """The per-frame functional group items, encoded directly (see ``encoding``)."""

    def __init__(self, source: SourceSeries) -> None:
        self.source = source
        code = [
            enc.element(0x00080100, "SH", enc.text(SOURCE_IMAGE.value)),
            enc.element(0x00080102, "SH", enc.text(SOURCE_IMAGE.scheme)),
            enc.element(0x00080104, "LO", enc.text(SOURCE_IMAGE.meaning)),
        ]
        self.sop_class = enc.element(0x00081150, "UI", enc.uid(source.sop_class_uid))
        self.purpose = enc.sequence(0x0040A170, [enc.item(b"".join(code))])
        # the frame's pixels lie where the source slice's do (highdicom's
        # get_pixels_by_source_instance needs it said)
        self.preserved = enc.element(0x0028135A, "CS", enc.text("YES"))
        derivation = [
            enc.element(0x00080100, "SH", enc.text(SEGMENTATION_DERIVATION.value)),
            enc.element(0x00080102, "SH", enc.text(SEGMENTATION_DERIVATION.scheme)),
            enc.element(0x00080104, "LO", enc.text(SEGMENTATION_DERIVATION.meaning)),
        ]
        self.derivation_code = enc.sequence(0x00089215, [enc.item(b"".join(derivation))])

    def items(self, frames: Sequence[tuple[int, int]], *, labelmap: bool = False) -> list[bytes]:
        """Per-frame items of (segment number, slice index) frames; a LABELMAP's frames
        name no segment, and their one dimension index is the slice."""
        out = []
        for segment, s in frames:
            instance = enc.element(0x00081155, "UI", enc.uid(self.source.sop_instance_uids[s]))
            if self.source.frame_numbers:  # a frame of a multi-frame source image
                number = str(self.source.frame_numbers[s])
                instance += enc.element(0x00081160, "IS", enc.text(number))
            image = enc.item(self.sop_class + instance + self.preserved + self.purpose)
            derivation = enc.item(enc.sequence(0x00082112, [image]) + self.derivation_code)
            index = struct.pack("<I", s + 1) if labelmap else struct.pack("<II", segment, s + 1)
            content = enc.item(enc.element(0x00209157, "UL", index))
            position = "\\".join(_ds(v) for v in self.source.grid.positions[s])
            plane = enc.item(enc.element(0x00200032, "DS", enc.text(position)))
            groups = (
                enc.sequence(0x00089124, [derivation])
                + enc.sequence(0x00209111, [content])
                + enc.sequence(0x00209113, [plane])
            )
            if not labelmap:
                segment_id = enc.item(enc.element(0x0062000B, "US", struct.pack("<H", segment)))
                groups += enc.sequence(0x0062000A, [segment_id])
            out.append(enc.item(groups))
        return out


def _ds(value: float) -> str:
    """A DS value of at most 16 characters."""
    return f"{float(value):.8g}"


def _code(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = (
        code.value,
        code.scheme,
        code.meaning,
    )
    return item


def _dataset(
    source: SourceSeries,
    description: str,
    number: int,
    syntax: TransferSyntax,
    labelmap: bool = False,
) -> Dataset:
    now = datetime.datetime.now()
    sop_class = UID(LABELMAP_STORAGE) if labelmap else SegmentationStorage
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    instance = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = instance
    ds.file_meta.TransferSyntaxUID = _SYNTAXES[syntax]
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: any patient name, any segment label
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, instance
    for keyword in PATIENT_STUDY_KEYWORDS:  # Type 2 attributes: present, maybe empty
        value = source.header.get(keyword)
        setattr(ds, keyword, value if value is not None else "")
    if not ds.StudyInstanceUID:
        raise MedmaskError(f"{source.folder}: the source series has no StudyInstanceUID")
    ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.Modality = "SEG"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = number, 1
    ds.SeriesDescription = description
    ds.FrameOfReferenceUID = source.frame_of_reference_uid or generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer, ds.ManufacturerModelName = "medkit", "medmask"
    ds.DeviceSerialNumber, ds.SoftwareVersions = "1", _version()
    ds.ContentLabel, ds.ContentDescription = "SEGMENTATION", description[:64]
    ds.ContentCreatorName = ""
    ds.SegmentationType = "BINARY"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    ds.LossyImageCompression = "00"
    organization = generate_uid()
    ds.DimensionOrganizationSequence = DicomSequence([Dataset()])
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = organization
    ds.DimensionOrganizationType = "3D"
    index = []
    for pointer, group, label in (
        (0x0062000B, 0x0062000A, "Segment Number"),
        (0x00200032, 0x00209113, "Image Position Patient"),
    ):
        item = Dataset()
        item.DimensionOrganizationUID = organization
        item.DimensionIndexPointer, item.FunctionalGroupPointer = pointer, group
        item.DimensionDescriptionLabel = label
        index.append(item)
    ds.DimensionIndexSequence = DicomSequence(index)
    referenced = Dataset()
    referenced.SeriesInstanceUID = source.series_instance_uid
    referenced.ReferencedInstanceSequence = DicomSequence(
        _reference(source.sop_class_uid, uid) for uid in source.instances
    )
    ds.ReferencedSeriesSequence = DicomSequence([referenced])
    return ds


def _reference(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
    return item


def _segment(
    number: int,
    name: str,
    algorithm: str | None,
    version: str,
    colour: tuple[int, int, int] | None,
    index: int,
    count: int,
    meaning: SegmentMeaning | None = None,
) -> Dataset:
    """One Segment Sequence item: the mask's own meaning where it has one (what the SEG or
    Slicer file it was packed from said), else the name table's concept and ``algorithm``."""
    if meaning is None or not meaning.coded:
        derived = meaning_of_concept(concept_for(name))
        meaning = dataclasses.replace(meaning, category=derived.category, type=derived.type,
            type_modifier=derived.type_modifier, region=derived.region,
            region_modifier=derived.region_modifier,
        ) if meaning is not None else derived  # fmt: skip
    assert meaning.category is not None and meaning.type is not None  # coded above
    item = Dataset()
    item.SegmentNumber = number
    item.SegmentLabel = name[:LABEL_LIMIT]
    if len(name) > LABEL_LIMIT:
        item.SegmentDescription = name
    item.SegmentedPropertyCategoryCodeSequence = DicomSequence([_code(meaning.category)])
    segment_type = _code(meaning.type)
    if meaning.type_modifier is not None:
        segment_type.SegmentedPropertyTypeModifierCodeSequence = DicomSequence(
            [_code(meaning.type_modifier)]
        )
    item.SegmentedPropertyTypeCodeSequence = DicomSequence([segment_type])
    if meaning.region is not None:
        region = _code(meaning.region)
        if meaning.region_modifier is not None:
            region.AnatomicRegionModifierSequence = DicomSequence([_code(meaning.region_modifier)])
        item.AnatomicRegionSequence = DicomSequence([region])
    if meaning.algorithm_type is not None:  # kept from the file the mask came from
        algorithm_type, algorithm_name = meaning.algorithm_type, meaning.algorithm_name
        version = meaning.algorithm_version or ""
        family = meaning.algorithm_family or ARTIFICIAL_INTELLIGENCE
    else:
        algorithm_type = "AUTOMATIC" if algorithm else "MANUAL"
        algorithm_name, family = algorithm, ARTIFICIAL_INTELLIGENCE
    item.SegmentAlgorithmType = algorithm_type
    if algorithm_type != "MANUAL" and algorithm_name:
        item.SegmentAlgorithmName = algorithm_name[:64]
        identification = Dataset()
        identification.AlgorithmFamilyCodeSequence = DicomSequence([_code(family)])
        identification.AlgorithmName = algorithm_name[:64]
        identification.AlgorithmVersion = version[:64] or "unknown"
        item.SegmentationAlgorithmIdentificationSequence = DicomSequence([identification])
    chosen = meaning.colour or colour
    item.RecommendedDisplayCIELabValue = list(
        cielab_of_rgb(chosen if chosen is not None else segment_colour(index, count))
    )
    return item


def _shared_groups(source: SourceSeries) -> Dataset:
    grid = source.grid
    shared = Dataset()
    orientation = Dataset()
    orientation.ImageOrientationPatient = [
        f"{v:.8g}" for v in (*grid.row_direction, *grid.column_direction)
    ]
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    measures = Dataset()
    measures.PixelSpacing = [f"{v:.8g}" for v in grid.pixel_spacing]
    spacing = grid.slice_spacing()
    thickness = source.slice_thickness or spacing or 1.0
    measures.SliceThickness = f"{thickness:.8g}"
    if spacing:
        measures.SpacingBetweenSlices = f"{spacing:.8g}"
    shared.PixelMeasuresSequence = DicomSequence([measures])
    return shared


def _frame_groups(source: SourceSeries, segment: int, slice_index: int) -> Dataset:
    frame = Dataset()
    derivation = Dataset()
    image = _reference(source.sop_class_uid, source.sop_instance_uids[slice_index])
    if source.frame_numbers:
        image.ReferencedFrameNumber = source.frame_numbers[slice_index]
    image.SpatialLocationsPreserved = "YES"
    image.PurposeOfReferenceCodeSequence = DicomSequence([_code(SOURCE_IMAGE)])
    derivation.SourceImageSequence = DicomSequence([image])
    derivation.DerivationCodeSequence = DicomSequence([_code(SEGMENTATION_DERIVATION)])
    frame.DerivationImageSequence = DicomSequence([derivation])
    content = Dataset()
    content.DimensionIndexValues = [segment, slice_index + 1]
    frame.FrameContentSequence = DicomSequence([content])
    position = Dataset()
    position.ImagePositionPatient = [_ds(v) for v in source.grid.positions[slice_index]]
    frame.PlanePositionSequence = DicomSequence([position])
    identification = Dataset()
    identification.ReferencedSegmentNumber = segment
    frame.SegmentIdentificationSequence = DicomSequence([identification])
    return frame


def _version() -> str:
    return str(__version__)
