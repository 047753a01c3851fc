"""medmask 0.1.3's ``medmask.core.segmask``; now :mod:`medmask.model.mask`."""

from __future__ import annotations

from ..model.mask import SegmentationMask

__all__ = ["SegmentationMask"]
