"""Exceptions and warnings raised by medmask; catch :class:`MedmaskError` for all of them."""

from __future__ import annotations

__all__ = [
    "ArchiveLockedError",
    "ChecksumError",
    "CohortBusyError",
    "FormatError",
    "GeometryMismatchError",
    "MaskNotFoundError",
    "MedmaskDeprecationWarning",
    "MedmaskError",
    "MedmaskWarning",
    "OutputExistsError",
    "OverlapError",
    "OverlapWarning",
    "ReadOnlyArrayError",
    "SourceMismatchError",
    "StaleCommitWarning",
]


class MedmaskError(Exception):
    """Base class of every error medmask raises on bad files or masks."""


class FormatError(MedmaskError, ValueError):
    """A file is not a valid medmask/NIfTI mask file (wrong magic, version, size ...)."""


class ChecksumError(FormatError):
    """Stored bytes do not match their checksum: the file is damaged."""


class GeometryMismatchError(MedmaskError, ValueError):
    """Masks and a DICOM series do not share one voxel grid (export would shift or mirror)."""


class SourceMismatchError(MedmaskError, ValueError):
    """A segmentation and the image series given as its source belong to different scans."""


class MaskNotFoundError(MedmaskError, KeyError):
    """A mask or label name that is not present was asked for."""


class OutputExistsError(MedmaskError, FileExistsError):
    """A file to be written exists already; pass ``overwrite=True`` to replace it."""

    def __init__(self, path: object, more: int = 0) -> None:
        self.path = str(path)
        extra = f" ({more + 1} files would be replaced)" if more else ""
        super().__init__(f"{self.path} exists{extra}; pass overwrite=True to replace it")


class OverlapError(MedmaskError):
    """Masks overlap, and a multi-label file can keep only one of them per voxel.

    ``overlaps`` maps each ``(name, other name)`` pair to the voxels they share.
    """

    def __init__(self, message: str, overlaps: dict[tuple[str, str], int]) -> None:
        super().__init__(message)
        self.overlaps = overlaps


class ReadOnlyArrayError(MedmaskError, ValueError):
    """A write into a read-only view of a mask's array (``mask.data``); use ``.copy()``."""


class ArchiveLockedError(MedmaskError):
    """Another writer has the archive open; one writer at a time keeps the file consistent."""


class CohortBusyError(MedmaskError):
    """Another run is packing a cohort into the same folder of archives."""


class MedmaskWarning(UserWarning):
    """Something was changed or dropped that the user should know about (e.g. overlaps)."""


class OverlapWarning(MedmaskWarning):
    """``add_label`` overwrote voxels that carried another label.

    Attributes ``new_label``, ``old_label`` and ``voxels`` say which and how many.
    """

    def __init__(self, message: str, new_label: int, old_label: int, voxels: int) -> None:
        super().__init__(message)
        self.new_label = new_label
        self.old_label = old_label
        self.voxels = voxels


class MedmaskDeprecationWarning(MedmaskWarning, DeprecationWarning):
    """An old MedMask / medmask 0.1.3 name or convention was used; the message says the new one.

    Shown by default in scripts and notebooks (Python shows DeprecationWarning raised from
    ``__main__``); silence it with ``warnings.simplefilter("ignore", MedmaskDeprecationWarning)``.
    """


class StaleCommitWarning(MedmaskWarning):
    """An archive's newest commit is damaged or incomplete; an older, intact one is served.

    Attributes ``path``, ``lost`` (the newest generation) and ``served`` (the one read).
    """

    def __init__(self, message: str, path: str, lost: int, served: int) -> None:
        super().__init__(message)
        self.path, self.lost, self.served = path, lost, served
