"""medmask 0.1.3's ``medmask.storage.maskfile``; now :mod:`medmask.files.maskfile`."""

from __future__ import annotations

from ..files.maskfile import MaskFile, load_mask, save_mask

__all__ = ["MaskFile", "load_mask", "save_mask"]
