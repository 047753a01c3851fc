"""medmask 0.1.3's ``medmask.core.segmask``; now :mod:`medmask.mask`."""

from __future__ import annotations

from ..mask import SegmentationMask

__all__ = ["SegmentationMask"]
