"""Exceptions and warnings raised by medmask; catch :class:`MedmaskError` for all of them."""

from __future__ import annotations

__all__ = [
    "ArchiveLockedError",
    "ChecksumError",
    "FormatError",
    "MaskNotFoundError",
    "MedmaskError",
    "MedmaskWarning",
    "ReadOnlyArrayError",
]


class MedmaskError(Exception):
    """Base class of every error medmask raises on bad files or masks."""


class FormatError(MedmaskError, ValueError):
    """A file is not a valid medmask/NIfTI mask file (wrong magic, version, size ...)."""


class ChecksumError(FormatError):
    """Stored bytes do not match their checksum: the file is damaged."""


class MaskNotFoundError(MedmaskError, KeyError):
    """A mask or label name that is not present was asked for."""


class ReadOnlyArrayError(MedmaskError, ValueError):
    """A write into a read-only view of a mask's array (``mask.data``); use ``.copy()``."""


class ArchiveLockedError(MedmaskError):
    """Another writer has the archive open; one writer at a time keeps the file consistent."""


class MedmaskWarning(UserWarning):
    """Something was changed or dropped that the user should know about (e.g. overlaps)."""
