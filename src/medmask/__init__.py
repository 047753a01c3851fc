"""medmask: every segmentation mask of a scan in one small, checksummed file.

MedMask's API (``SegmentationMask``, ``LabelMapping``, ``MaskArchive``,
``save_mask``/``load_mask``) with NIfTI in and out, overlap warnings, per-label
statistics, groups and crash-safe archives; sample data with ``python -m medmask.sample``.
Code written for MedMask and medmask 0.1.3 runs unchanged (docs/medmask-compatibility.md);
their old names warn once with the new one.
"""

from __future__ import annotations

from typing import Any

from .errors import (
    ArchiveLockedError,
    ChecksumError,
    FormatError,
    GeometryMismatchError,
    MaskNotFoundError,
    MedmaskDeprecationWarning,
    MedmaskError,
    MedmaskWarning,
    OutputExistsError,
    OverlapError,
    OverlapWarning,
    ReadOnlyArrayError,
    StaleCommitWarning,
)
from .exchange.nifti import read_nifti, read_nifti_folder, write_nifti
from .files.archive import MaskArchive, MaskStatistics, convert_legacy_archive
from .files.maskfile import MaskFile, load_mask, save_mask
from .model.mapping import LabelMapping
from .model.mask import LabelStatistics, SegmentationMask
from .model.selection import match_allowed_values
from .model.space import install_space_aliases
from .model.wiring import MaskIO, wire
from .version import __version__

install_space_aliases()  # Space.from_nifty, which MedMask code calls


def _read_dicom_seg(source: Any, *, space: Any = None) -> Any:
    """:func:`medmask.exchange.dicom.exchange.read_dicom_seg`, imported when first called
    (pydicom and highdicom stay out of ``import medmask``)."""
    from .exchange.dicom.exchange import read_dicom_seg  # noqa: PLC0415

    return read_dicom_seg(source, space=space)


# SegmentationMask's file methods (MedMask's save/load/from_nifti ...) call these: the model
# imports no layer above it (model/wiring.py)
wire(
    MaskIO(
        read_nifti=read_nifti,
        read_nifti_folder=read_nifti_folder,
        write_nifti=write_nifti,
        read_dicom_seg=_read_dicom_seg,
        save_mask=save_mask,
        load_mask=load_mask,
    )
)


__all__ = [
    "ArchiveLockedError",
    "ChecksumError",
    "FormatError",
    "GeometryMismatchError",
    "LabelMapping",
    "LabelStatistics",
    "MaskArchive",
    "MaskFile",
    "MaskNotFoundError",
    "MaskStatistics",
    "MedmaskDeprecationWarning",
    "MedmaskError",
    "MedmaskWarning",
    "OutputExistsError",
    "OverlapError",
    "OverlapWarning",
    "ReadOnlyArrayError",
    "SegmentationMask",
    "StaleCommitWarning",
    "__version__",
    "convert_legacy_archive",
    "load_mask",
    "match_allowed_values",
    "read_nifti",
    "read_nifti_folder",
    "save_mask",
    "write_nifti",
]
