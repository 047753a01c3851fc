"""Exceptions raised by dcm_extractor; catch :class:`DcmExtractorError` for all of them.

Each class carries the command line's exit code for it (``exit_code``): 2 for usage
errors (a missing data root), 1 for everything else that stops a run.
"""

from __future__ import annotations

__all__ = [
    "DataRootError",
    "DcmExtractorError",
    "OptionsError",
    "OutputBusyError",
    "PlatformError",
    "PseudonymKeyError",
    "SampleDataError",
    "WorkersError",
]


class DcmExtractorError(Exception):
    """Base class of every error dcm_extractor raises on bad inputs or outputs."""

    exit_code = 1


class DataRootError(DcmExtractorError):
    """The data root does not exist, is not a folder, or cannot be listed."""

    exit_code = 2


class OptionsError(DcmExtractorError, ValueError):
    """Options that cannot work together or are out of range (a usage error)."""

    exit_code = 2


class OutputBusyError(DcmExtractorError):
    """Another run is writing into the same ``--out`` (it holds the output lock)."""


class PlatformError(DcmExtractorError):
    """The extraction does not run on this operating system (Windows: run it in WSL)."""


class SampleDataError(DcmExtractorError):
    """The sample-data generator cannot write where it was asked to."""


class PseudonymKeyError(DcmExtractorError):
    """The pseudonym key is missing where needed, unreadable, too short, or would be replaced."""


class WorkersError(DcmExtractorError):
    """The run's worker processes cannot start: each one ends as it starts."""
