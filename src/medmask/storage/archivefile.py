"""medmask 0.1.3's ``medmask.storage.archivefile``; now :mod:`medmask.archive`."""

from __future__ import annotations

from ..archive import MaskArchive

__all__ = ["MaskArchive"]
