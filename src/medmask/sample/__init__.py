"""Generated organ masks like TotalSegmentator output, with ground truth.

Run ``python -m medmask.sample OUT_DIR`` or call :func:`generate_masks`.
"""

from __future__ import annotations

from .anatomy import DECLARED_OVERLAPS, ORGANS
from .generate import SCALES, MaskSample, generate_masks, sample_affine

__all__ = ["DECLARED_OVERLAPS", "ORGANS", "SCALES", "MaskSample", "generate_masks", "sample_affine"]
