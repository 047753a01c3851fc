"""Write masks as a DICOM Segmentation (BINARY) on the series they were drawn on.

BINARY keeps overlapping masks exact (every segment has its own frames; a label map
could not hold s0000's 21 shared voxels), and only the slices a segment touches get a
frame. The frames are one bit per pixel; by default the whole data set is deflated
(Deflated Explicit VR Little Endian, 1.2.840.10008.1.2.1.99), which pydicom, highdicom,
dcmtk and dicom3tools read, and which shrinks the sparse bit planes ~40x
(benchmarks/seg_export.py). ``transfer_syntax="explicit"`` writes them uncompressed for
readers that do not inflate.

Module by module the object follows PS3.3 A.51 (Segmentation IOD); the patient, study
and frame of reference are the source series'.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    SegmentationStorage,
    generate_uid,
)
from spacetransformer import Space

from ..atomic import atomic_path
from ..errors import MedmaskError
from .concepts import Code, cielab_of_rgb, concept_for, segment_colour
from .grid import map_axes
from .source import PATIENT_STUDY_KEYWORDS, SourceSeries

__all__ = ["SegExport", "SegmentInput", "write_seg"]

TransferSyntax = Literal["deflated", "explicit"]
_SYNTAXES = {"deflated": DeflatedExplicitVRLittleEndian, "explicit": ExplicitVRLittleEndian}
SOURCE_IMAGE = Code("121322", "DCM", "Source image for image processing operation")
SEGMENTATION_DERIVATION = Code("113076", "DCM", "Segmentation")
ARTIFICIAL_INTELLIGENCE = Code("123110", "DCM", "Artificial Intelligence")
LABEL_LIMIT = 64  # SegmentLabel is LO


@dataclass(frozen=True)
class SegmentInput:
    """One mask to write: its name and its voxels on the masks' Space (non-zero = in)."""

    name: str
    voxels: NDArray[Any]


@dataclass(frozen=True)
class SegExport:
    """What was written: the file, segments and frames, and the masks left out (empty)."""

    path: Path
    segments: tuple[str, ...]
    frames: int
    empty: tuple[str, ...]
    file_bytes: int
    transfer_syntax: str


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
) -> SegExport:
    """Write ``masks`` (on ``space``) as one DICOM SEG instance referencing ``source``.

    Parameters
    ----------
    masks : sequence of SegmentInput
        Segments in this order (segment numbers 1, 2, ...).
    space : spacetransformer.Space
        The masks' grid; it must be the source series' grid, up to axis order and
        direction (see :func:`medmask.dicom.grid.map_axes`).
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

    Returns
    -------
    SegExport

    Raises
    ------
    GeometryMismatchError
        The masks' grid is not the source series' (the message names both).
    MedmaskError
        No mask has a voxel, or two masks share a name.
    """
    if transfer_syntax not in _SYNTAXES:
        raise ValueError(f"transfer_syntax must be one of {sorted(_SYNTAXES)}")
    names = [m.name for m in masks]
    if len(set(names)) != len(names):
        raise MedmaskError("two masks share a name; segment labels must be unique")
    axes = map_axes(space, source.grid, f"the source series in {source.folder}")
    grid = source.grid
    frames: list[NDArray[np.bool_]] = []
    frame_slices: list[tuple[int, int]] = []  # (segment number, slice index)
    written: list[tuple[int, str]] = []
    empty = []
    for mask in masks:
        volume = axes.to_series(np.asarray(mask.voxels) != 0)  # (column, row, slice)
        touched = np.flatnonzero(volume.any(axis=(0, 1)))
        if touched.size == 0:
            empty.append(mask.name)
            continue
        number = len(written) + 1
        written.append((number, mask.name))
        frames.append(volume[:, :, touched].transpose(2, 1, 0))  # (frame, row, column)
        frame_slices += [(number, int(s)) for s in touched]
    if not written:
        raise MedmaskError("every mask is empty: a DICOM SEG needs one segment with voxels")
    pixels = np.concatenate(frames)
    ds = _dataset(source, series_description, series_number, transfer_syntax)
    ds.Rows, ds.Columns = grid.rows, grid.columns
    ds.NumberOfFrames = len(frame_slices)
    ds.SegmentSequence = DicomSequence(
        _segment(
            number, name, algorithm, algorithm_version, (colours or {}).get(name), i, len(masks)
        )
        for i, (number, name) in enumerate(written)
    )
    ds.SharedFunctionalGroupsSequence = DicomSequence([_shared_groups(source)])
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(
        _frame_groups(source, number, s) for number, s in frame_slices
    )
    bits = np.packbits(pixels.reshape(-1), bitorder="little").tobytes()
    ds.PixelData = bits + (b"\0" if len(bits) % 2 else b"")
    out = Path(path)
    with atomic_path(out) as partial:
        ds.save_as(partial, enforce_file_format=True)
    return SegExport(
        out,
        tuple(name for _, name in written),
        len(frame_slices),
        tuple(empty),
        out.stat().st_size,
        _SYNTAXES[transfer_syntax],
    )


def _code(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = (
        code.value,
        code.scheme,
        code.meaning,
    )
    return item


def _dataset(
    source: SourceSeries, description: str, number: int, syntax: TransferSyntax
) -> Dataset:
    now = datetime.datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SegmentationStorage
    instance = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = instance
    ds.file_meta.TransferSyntaxUID = _SYNTAXES[syntax]
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: any patient name, any segment label
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SOPClassUID, ds.SOPInstanceUID = SegmentationStorage, instance
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
        _reference(source.sop_class_uid, uid) for uid in source.sop_instance_uids
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
) -> Dataset:
    concept = concept_for(name)
    item = Dataset()
    item.SegmentNumber = number
    item.SegmentLabel = name[:LABEL_LIMIT]
    if len(name) > LABEL_LIMIT:
        item.SegmentDescription = name
    item.SegmentedPropertyCategoryCodeSequence = DicomSequence([_code(concept.category)])
    segment_type = _code(concept.type)
    if concept.modifier is not None:
        segment_type.SegmentedPropertyTypeModifierCodeSequence = DicomSequence(
            [_code(concept.modifier)]
        )
    item.SegmentedPropertyTypeCodeSequence = DicomSequence([segment_type])
    if concept.region is not None:
        region = _code(concept.region)
        if concept.region_modifier is not None:
            region.AnatomicRegionModifierSequence = DicomSequence([_code(concept.region_modifier)])
        item.AnatomicRegionSequence = DicomSequence([region])
    if algorithm:
        item.SegmentAlgorithmType = "AUTOMATIC"
        item.SegmentAlgorithmName = algorithm[:64]
        identification = Dataset()
        identification.AlgorithmFamilyCodeSequence = DicomSequence([_code(ARTIFICIAL_INTELLIGENCE)])
        identification.AlgorithmName = algorithm[:64]
        identification.AlgorithmVersion = version[:64] or "unknown"
        item.SegmentationAlgorithmIdentificationSequence = DicomSequence([identification])
    else:
        item.SegmentAlgorithmType = "MANUAL"
    item.RecommendedDisplayCIELabValue = list(
        cielab_of_rgb(colour if colour is not None else segment_colour(index, count))
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
    image.PurposeOfReferenceCodeSequence = DicomSequence([_code(SOURCE_IMAGE)])
    derivation.SourceImageSequence = DicomSequence([image])
    derivation.DerivationCodeSequence = DicomSequence([_code(SEGMENTATION_DERIVATION)])
    frame.DerivationImageSequence = DicomSequence([derivation])
    content = Dataset()
    content.DimensionIndexValues = [segment, slice_index + 1]
    frame.FrameContentSequence = DicomSequence([content])
    position = Dataset()
    position.ImagePositionPatient = [f"{v:.8g}" for v in source.grid.positions[slice_index]]
    frame.PlanePositionSequence = DicomSequence([position])
    identification = Dataset()
    identification.ReferencedSegmentNumber = segment
    frame.SegmentIdentificationSequence = DicomSequence([identification])
    return frame


def _version() -> str:
    from .. import __version__  # noqa: PLC0415 - the package imports this module lazily

    return str(__version__)
