"""medmask: every segmentation mask of a scan in one small, checksummed file.

MedMask's API (``SegmentationMask``, ``LabelMapping``, ``MaskArchive``,
``save_mask``/``load_mask``) with NIfTI in and out, overlap warnings, per-label
statistics, groups and crash-safe archives; sample data with ``python -m medmask.sample``.
Code written for MedMask and medmask 0.1.3 runs unchanged (docs/medmask-compatibility.md);
their old names warn once with the new one.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import legacy_archive  # noqa: F401 - registers the reader of medmask 0.1.3 archives
from .archive import MaskArchive, MaskStatistics, convert_legacy_archive
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
from .mapping import LabelMapping
from .mask import LabelStatistics, SegmentationMask
from .maskfile import MaskFile, load_mask, save_mask
from .nifti import read_nifti, read_nifti_folder, write_nifti
from .selection import match_allowed_values
from .space import install_space_aliases

install_space_aliases()  # Space.from_nifty, which MedMask code calls

try:
    __version__ = version("medkit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

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
