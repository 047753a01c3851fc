"""dcm_extractor: per-case DICOM metadata tables from folders and zips, at scale.

The Python API (the command line calls the same)::

    from pathlib import Path
    from dcm_extractor import RunOptions, run

    summary = run(RunOptions(Path("data/dicom_cases"), Path("out"), merge_all=True))
    print(summary.line())

:class:`RunOptions` checks its values when made (:class:`OptionsError`); :func:`run`
writes the tables into ``out`` and returns a :class:`RunSummary`; :func:`scan_case` reads
one case folder into a :class:`CaseResult` without writing anything. Every error is a
:class:`DcmExtractorError` (``exit_code`` says what the command line exits with).
Importing the package stays light: the names below load their modules when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .errors import (
    DataRootError,
    DcmExtractorError,
    OptionsError,
    OutputBusyError,
    PlatformError,
    PseudonymKeyError,
    SampleDataError,
    WorkersError,
)
from .version import __version__

_LAZY = {
    "RunOptions": ".runner.pipeline",
    "RunSummary": ".runner.pipeline",
    "run": ".runner.pipeline",
    "CaseResult": ".sources.cases",
    "ReportEntry": ".sources.cases",
    "scan_case": ".sources.cases",
    "Pseudonymizer": ".privacy.pseudonyms",
}

__all__ = [
    "CaseResult",
    "DataRootError",
    "DcmExtractorError",
    "OptionsError",
    "OutputBusyError",
    "PlatformError",
    "PseudonymKeyError",
    "Pseudonymizer",
    "ReportEntry",
    "RunOptions",
    "RunSummary",
    "SampleDataError",
    "WorkersError",
    "__version__",
    "run",
    "scan_case",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
