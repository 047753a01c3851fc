"""medmask 0.1.3's ``medmask.storage.archivefile``; now :mod:`medmask.files.archive`."""

from __future__ import annotations

from ..files.archive import MaskArchive

__all__ = ["MaskArchive"]
