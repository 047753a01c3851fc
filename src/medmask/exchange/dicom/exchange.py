"""Archives to DICOM SEG and back: what ``medmask export-seg`` and ``medmask pack SEG`` call."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pydicom
from spacetransformer import Space

from ...errors import MaskNotFoundError, MedmaskError, MedmaskWarning, SourceMismatchError
from ...files.archive import MaskArchive, select_masks
from ...files.atomic import check_writable
from ...model.mapping import LabelMapping
from ...model.mask import SegmentationMask
from ...model.meaning import SegmentMeaning
from .names import dicom_name
from .rtstruct import ContourStyle, RtExport, write_rtstruct
from .seg_reader import SegSeries, damage_named, is_dicom_seg, read_seg
from .seg_writer import SegExport, SegmentInput, SegType, TransferSyntax, write_seg
from .source import SourceSeries, read_source_series

__all__ = [
    "check_seg_source",
    "export_rtstruct",
    "export_seg",
    "read_dicom_seg",
    "seg_files",
    "seg_masks",
    "seg_segments",
]


def export_seg(
    archive: str | os.PathLike[str],
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    names: Iterable[str] | None = None,
    groups: bool = False,
    algorithm: str | None = "medmask",
    algorithm_version: str = "",
    transfer_syntax: TransferSyntax = "deflated",
    series_uid: str | None = None,
    overwrite: bool = False,
    segmentation_type: SegType = "binary",
    keep_empty: bool = True,
) -> SegExport:
    """Write the masks of ``archive`` as a DICOM SEG on the CT/MR series in ``source``.

    Parameters
    ----------
    archive : path
        A ``.mska`` archive.
    source : path
        Folder of the image series the masks were made on.
    output : path
        The ``.dcm`` file to write.
    names : iterable of str, optional
        Only these masks (and groups), in this order; default every mask.
    groups : bool
        Also write the archive's groups (``ribs = rib_*``) as segments of their own.
    algorithm, algorithm_version : str
        The algorithm named in the SEG (None: masks drawn by hand), for masks whose
        archive entry does not name one; a mask packed from a SEG keeps the algorithm,
        codes and colour that SEG gave it (``MaskArchive.meaning``).
    transfer_syntax : {"deflated", "explicit"}
        Deflated (default, small) or uncompressed.
    series_uid : str, optional
        Which series of ``source``, when it holds several.
    overwrite : bool
        Replace an existing ``output``.
    segmentation_type : {"binary", "labelmap"}
        BINARY (default: overlapping masks kept) or LABELMAP (one segment per voxel,
        smaller; masks that overlap are refused).
    keep_empty : bool
        Empty masks as segments without frames (default), or left out.

    Raises
    ------
    GeometryMismatchError
        The archive's grid is not the series' (the message names both).
    MaskNotFoundError
        A name in ``names`` is not in the archive.
    MedmaskError
        Masks overlap in a LABELMAP (the message names them).
    """
    check_writable(Path(output), overwrite)
    series = _archive_series(archive, source, series_uid)
    masks, space = _export_inputs(archive, names, groups)
    return write_seg(
        masks, space, series, output, algorithm=algorithm, algorithm_version=algorithm_version,
        transfer_syntax=transfer_syntax, segmentation_type=segmentation_type,
        keep_empty=keep_empty,
    )  # fmt: skip


def export_rtstruct(
    archive: str | os.PathLike[str],
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    names: Iterable[str] | None = None,
    groups: bool = False,
    algorithm: str | None = "medmask",
    interpreted_type: str = "ORGAN",
    series_uid: str | None = None,
    overwrite: bool = False,
    contours: ContourStyle = "voxel-edges",
) -> RtExport:
    """Write the masks of ``archive`` as an RT Structure Set on the series in ``source``
    (docs/rtstruct.md): voxel-edge contours on the series' own planes, empty masks as
    ROIs without contours.

    Parameters
    ----------
    archive, source, output, names, groups, series_uid, overwrite
        As :func:`export_seg`.
    algorithm : str or None
        ROI Generation Algorithm AUTOMATIC, or None: MANUAL.
    interpreted_type : str
        RT ROI Interpreted Type of every ROI.
    contours : {"voxel-edges", "inset"}
        Where the contours run (:func:`~.rtstruct.write_rtstruct`).

    Raises
    ------
    GeometryMismatchError
        The archive's grid is not the series' (the message names both).
    MaskNotFoundError
        A name in ``names`` is not in the archive.
    """
    check_writable(Path(output), overwrite)
    series = _archive_series(archive, source, series_uid)
    masks, space = _export_inputs(archive, names, groups)
    return write_rtstruct(
        masks, space, series, output, algorithm=algorithm, interpreted_type=interpreted_type,
        contours=contours,
    )  # fmt: skip


def _archive_series(
    archive: str | os.PathLike[str], source: str | os.PathLike[str], series_uid: str | None
) -> SourceSeries:
    """The series of ``source`` to write onto: ``series_uid``, the only one, or the one the
    archive records its masks were drawn on (``image_series``), when ``source`` holds
    several (a study's folder)."""
    with MaskArchive(archive) as opened:
        recorded = (opened.image_series or {}).get("SeriesInstanceUID", "")
    return read_source_series(
        source, series_uid, named=(recorded,) if recorded else (), namer="the archive"
    )


def _export_inputs(
    archive: str | os.PathLike[str], names: Iterable[str] | None, groups: bool
) -> tuple[list[SegmentInput], Space]:
    """The chosen masks of an archive as writer inputs (each its crop only), and their grid."""
    with MaskArchive(archive) as opened:
        space = opened.space
        if space is None:
            raise MedmaskError(f"{archive}: the archive has no masks")
        masks = []
        for name in select_masks(opened, names, groups=groups):
            crop, offset = opened.load_crop(name)
            masks.append(SegmentInput(name, crop != 0, offset, opened.meaning(name)))
    return masks, space


def seg_files(source: str | os.PathLike[str]) -> list[Path]:
    """The DICOM SEG files of ``source`` (a file, or a folder of one segmentation's instances)."""
    path = Path(source)
    if path.is_file():
        return [path] if is_dicom_seg(path) else []
    return sorted(p for p in path.rglob("*") if p.is_file() and is_dicom_seg(p))


def read_dicom_seg(
    source: str | os.PathLike[str], *, space: Space | None = None
) -> dict[str, SegmentationMask]:
    """Each segment of a DICOM SEG (a file, or a folder of one segmentation's instances)
    as a 0/1 mask, by segment label (``SegmentationMask.from_dicom_seg``).

    Raises
    ------
    MaskNotFoundError
        ``source`` holds no DICOM SEG file.
    """
    files = seg_files(source)
    if not files:
        raise MaskNotFoundError(f"{source}: no DICOM SEG file found")
    return dict(seg_masks(files, space=space))


def seg_masks(
    paths: Sequence[str | os.PathLike[str]],
    *,
    space: Space | None = None,
    notes: list[str] | None = None,
) -> Iterator[tuple[str, SegmentationMask]]:
    """Each segment of the SEG instances ``paths`` as a 0/1 uint8 mask, in segment order.

    ``space`` is the grid to read onto (default: the frames' own); ``notes`` receives
    what the reading changed (FRACTIONAL thresholds).
    """
    for name, mask, _ in seg_segments(paths, space=space, notes=notes):
        yield name, mask


def seg_segments(
    paths: Sequence[str | os.PathLike[str]],
    *,
    space: Space | None = None,
    notes: list[str] | None = None,
) -> Iterator[tuple[str, SegmentationMask, SegmentMeaning]]:
    """As :func:`seg_masks`, each with what the SEG says the segment is (codes, colour,
    algorithm), which ``MaskArchive.add_mask(..., meaning=)`` keeps."""
    series: SegSeries = read_seg(paths, space=space)
    for segment, voxels in series.masks():
        mask = SegmentationMask._trusted(
            voxels.view(np.uint8), LabelMapping({segment.name: 1}), series.space
        )
        yield segment.name, mask, segment.meaning
    if notes is not None:  # after the pixels: undeclared label-map values are found there
        notes.extend(series.notes)


def seg_series(paths: Sequence[str | os.PathLike[str]]) -> tuple[str, ...]:
    """The SeriesInstanceUIDs SEG instances say they were drawn on (their Referenced Series
    Sequence; none when they name none or cannot be read: reading them says why)."""
    named: dict[str, None] = {}
    for path in paths:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        for item in ds.get("ReferencedSeriesSequence", None) or []:
            named.setdefault(str(item.get("SeriesInstanceUID", "")), None)
    return tuple(uid for uid in named if uid)


def check_seg_source(
    paths: Sequence[str | os.PathLike[str]],
    series: SourceSeries,
    notes: list[str] | None = None,
) -> None:
    """Refuse SEG instances that were not drawn on ``series`` (a matching grid is not enough).

    Checks the Referenced Series Sequence (when the SEG has one), the Frame of Reference
    UID and the Patient ID (when both have one). A SEG that names ``series`` in its
    Referenced Series Sequence but another frame of reference is read onto it, and
    ``notes`` says so (a warning when None): pydicom-seg, MONAI Label's SEG writer, gives
    every SEG a new Frame of Reference UID (its issue #48).

    Raises
    ------
    SourceMismatchError
        The SEG and the series differ; the message names both values and both places.
    """
    where = f"the series in {series.folder}"
    for raw in paths:
        path = Path(raw)
        with damage_named(path):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        referenced = [
            str(item.get("SeriesInstanceUID", ""))
            for item in ds.get("ReferencedSeriesSequence", [])
        ]
        frame = str(ds.get("FrameOfReferenceUID", ""))
        frames_differ = bool(
            frame and series.frame_of_reference_uid and frame != series.frame_of_reference_uid
        )
        if referenced and series.series_instance_uid not in referenced:
            frames = (
                f" (frame of reference {frame}; the series' {series.frame_of_reference_uid})"
                if frames_differ
                else ""
            )
            raise SourceMismatchError(
                f"{path}: the SEG was drawn on series {', '.join(referenced)}, {where} is "
                f"{series.series_instance_uid}{frames}"
            )
        if frames_differ:
            if not referenced:
                raise SourceMismatchError(
                    f"{path}: the SEG lies in frame of reference {frame}, {where} in "
                    f"{series.frame_of_reference_uid}: it was not drawn on that series"
                )
            said = (
                f"{path.name}: the SEG names {where} in its Referenced Series Sequence but "
                f"lies in another frame of reference ({frame}; the series' is "
                f"{series.frame_of_reference_uid}): read onto the series it names "
                "(pydicom-seg writes a new frame of reference into every SEG)"
            )
            if notes is None:
                warnings.warn(MedmaskWarning(said), stacklevel=2)
            else:
                notes.append(said)
        patient = dicom_name(ds, str(ds.get("PatientID", "")))[0]  # (read as the series')
        source_patient = str(series.header.get("PatientID", ""))
        if patient and source_patient and patient != source_patient:
            raise SourceMismatchError(
                f"{path}: the SEG is of patient ID {patient!r}, {where} of {source_patient!r}"
            )
