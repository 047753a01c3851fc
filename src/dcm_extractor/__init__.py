"""dcm_extractor: per-case DICOM metadata tables from folders and zips, at scale.

The extractor arrives in stages (see the issues); this package already provides the
error hierarchy and realistic sample data (``python -m dcm_extractor.sample``).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import DcmExtractorError, SampleDataError

try:
    __version__ = version("medkit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["DcmExtractorError", "SampleDataError", "__version__"]
