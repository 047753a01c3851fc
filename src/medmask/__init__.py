"""medmask: every segmentation mask of a scan in one small, checksummed archive.

The model, archive and command line arrive in stages (see the issues); this package
already provides the error hierarchy, the NIfTI label-table codec and sample data
(``python -m medmask.sample``).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import ChecksumError, FormatError, MaskNotFoundError, MedmaskError, MedmaskWarning

try:
    __version__ = version("medkit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "ChecksumError",
    "FormatError",
    "MaskNotFoundError",
    "MedmaskError",
    "MedmaskWarning",
    "__version__",
]
