"""Group arithmetic: a group is the union of member masks, XOR an optional residual.

Pure array functions on crops (``(crop, offset)`` pairs as ``MaskArchive.load_crop``
gives them); the archive reads the crops and stores the results
(docs/mask-format.md, index ``kind: "group"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .bbox import BBox

__all__ = ["group_values", "slices", "union_of"]

Crop = tuple[NDArray[Any], tuple[int, int, int]]


def union_of(crops: list[Crop]) -> tuple[NDArray[np.bool_], BBox | None]:
    """The union of the crops' non-zero voxels, cropped to its own box (None: empty)."""
    boxes = [(o, c.shape) for c, o in crops if c.size]
    if not boxes:
        return np.zeros((0, 0, 0), dtype=bool), None
    lo = [min(o[a] for o, _ in boxes) for a in range(3)]
    hi = [max(o[a] + s[a] for o, s in boxes) for a in range(3)]
    union = np.zeros(tuple(h - low for low, h in zip(lo, hi, strict=True)), dtype=bool)
    for crop, offset in crops:
        if crop.size:
            region = tuple(
                slice(o - low, o - low + n)
                for o, low, n in zip(offset, lo, crop.shape, strict=True)
            )
            union[region] |= crop != 0
    return union, ((lo[0], hi[0]), (lo[1], hi[1]), (lo[2], hi[2]))


def group_values(
    union: tuple[NDArray[np.bool_], BBox | None],
    residual: tuple[NDArray[Any], BBox] | None,
    extent: BBox,
    label: int,
    dtype: np.dtype[Any],
) -> NDArray[Any]:
    """The group's crop over ``extent``: ``label`` where union XOR residual, else 0."""
    parts: list[tuple[NDArray[Any], BBox, Any]] = []
    if union[1] is not None:
        parts.append((union[0], union[1], np.logical_or))
    if residual is not None:
        parts.append((residual[0], residual[1], np.logical_xor))
    hull = _hull([extent, *(box for _, box, _ in parts)])
    work = np.zeros(tuple(b - a for a, b in hull), dtype=bool)
    for part, box, op in parts:
        region = tuple(slice(p[0] - h[0], p[1] - h[0]) for p, h in zip(box, hull, strict=True))
        work[region] = op(work[region], part != 0)
    out = work[tuple(slice(e[0] - h[0], e[1] - h[0]) for e, h in zip(extent, hull, strict=True))]
    return out.astype(dtype) if label == 1 else np.where(out, label, 0).astype(dtype)


def slices(box: BBox) -> tuple[slice, slice, slice]:
    """``box`` as index slices."""
    return (slice(*box[0]), slice(*box[1]), slice(*box[2]))


def _hull(boxes: list[BBox]) -> BBox:
    lo = [min(b[a][0] for b in boxes) for a in range(3)]
    hi = [max(b[a][1] for b in boxes) for a in range(3)]
    return ((lo[0], hi[0]), (lo[1], hi[1]), (lo[2], hi[2]))
