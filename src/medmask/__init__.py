"""medmask: every segmentation mask of a scan in one small, checksummed file.

MedMask's API (``SegmentationMask``, ``LabelMapping``, ``MaskArchive``,
``save_mask``/``load_mask``) with NIfTI in and out, overlap warnings, per-label
statistics, groups and crash-safe archives; sample data with ``python -m medmask.sample``.
Code written for MedMask and medmask 0.1.3 runs unchanged (docs/medmask-compatibility.md);
their old names warn once with the new one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    ArchiveLockedError,
    ChecksumError,
    CohortBusyError,
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
from .files.archive import MaskArchive, MaskStatistics, convert_legacy_archive
from .files.maskfile import MaskFile, load_mask, save_mask
from .model.mapping import LabelMapping
from .model.mask import LabelStatistics, SegmentationMask
from .model.selection import match_allowed_values
from .model.space import install_space_aliases
from .model.wiring import MaskIO, wire
from .version import __version__

if TYPE_CHECKING:
    from .exchange.nifti import read_nifti, read_nifti_folder, write_nifti

install_space_aliases()  # Space.from_nifty, which MedMask code calls

# nibabel stays out of ``import medmask`` until NIfTI is read or written: commands that
# read archives only (ls, info, catalog, query) start in a third of the time
_NIFTI = ("read_nifti", "read_nifti_folder", "write_nifti")


def __getattr__(name: str) -> Any:
    if name in _NIFTI:
        from .exchange import nifti  # noqa: PLC0415

        return getattr(nifti, name)
    raise AttributeError(f"module 'medmask' has no attribute {name!r}")


def _nifti(name: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        from .exchange import nifti  # noqa: PLC0415

        return getattr(nifti, name)(*args, **kwargs)

    call.__name__ = name
    return call


def _read_dicom_seg(source: Any, *, space: Any = None) -> Any:
    """:func:`medmask.exchange.dicom.exchange.read_dicom_seg`, imported when first called
    (pydicom and highdicom stay out of ``import medmask``)."""
    from .exchange.dicom.exchange import read_dicom_seg  # noqa: PLC0415

    return read_dicom_seg(source, space=space)


# SegmentationMask's file methods (MedMask's save/load/from_nifti ...) call these: the model
# imports no layer above it (model/wiring.py)
wire(
    MaskIO(
        read_nifti=_nifti("read_nifti"),
        read_nifti_folder=_nifti("read_nifti_folder"),
        write_nifti=_nifti("write_nifti"),
        read_dicom_seg=_read_dicom_seg,
        save_mask=save_mask,
        load_mask=load_mask,
    )
)


__all__ = [
    "ArchiveLockedError",
    "ChecksumError",
    "CohortBusyError",
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
