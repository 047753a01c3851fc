"""Exceptions raised by dcm_extractor; catch :class:`DcmExtractorError` for all of them."""

from __future__ import annotations

__all__ = ["DcmExtractorError", "PseudonymKeyError", "SampleDataError"]


class DcmExtractorError(Exception):
    """Base class of every error dcm_extractor raises on bad inputs or outputs."""


class SampleDataError(DcmExtractorError):
    """The sample-data generator cannot write where it was asked to."""


class PseudonymKeyError(DcmExtractorError):
    """The pseudonym key is missing where needed, unreadable, too short, or would be replaced."""
