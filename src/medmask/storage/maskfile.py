"""medmask 0.1.3's ``medmask.storage.maskfile``; now :mod:`medmask.maskfile`."""

from __future__ import annotations

from ..maskfile import MaskFile, load_mask, save_mask

__all__ = ["MaskFile", "load_mask", "save_mask"]
