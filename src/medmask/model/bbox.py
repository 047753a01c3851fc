"""Bounding boxes of mask voxels: the unit of cropping for codecs, statistics and reads."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

__all__ = ["BBox", "LabelSummary", "bounding_box", "label_extents", "label_summaries"]

BBox = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
"""``((start, stop), ...)`` per axis; stops exclusive, like Python slices."""


def bounding_box(array: NDArray[Any]) -> BBox | None:
    """Half-open bounding box of the non-zero voxels of a 3-D array, or None when none.

    For C-contiguous arrays (the usual case) it costs one fast pass over the array as
    64-bit words to find the first axis' extent, and one OR-reduction over that slab.
    """
    if array.size and array.dtype.kind in "biu":
        if array.flags.c_contiguous:
            return _bounding_box_contiguous(array)
        if array.flags.f_contiguous:  # nibabel hands NIfTI data over in Fortran order
            box = _bounding_box_contiguous(array.T)
            return None if box is None else (box[2], box[1], box[0])
    extent = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(np.any(array, axis=others))
        if hits.size == 0:
            return None
        extent.append((int(hits[0]), int(hits[-1]) + 1))
    return (extent[0], extent[1], extent[2])


class LabelSummary(NamedTuple):
    """One label's voxel count, half-open box and sums of its voxels' indices."""

    voxels: int
    box: BBox
    sums: tuple[int, int, int]


def label_extents(array: NDArray[Any]) -> dict[int, tuple[int, BBox]]:
    """Voxel count and bounding box of every non-zero value, in one pass over the array."""
    return {label: (s.voxels, s.box) for label, s in label_summaries(array).items()}


def label_summaries(array: NDArray[Any]) -> dict[int, LabelSummary]:
    """Voxel count, bounding box and index sums (centroid = sums / count) of every
    non-zero value, in one pass over the array.

    Sorting the non-zero voxels by value once is far cheaper than one full-array
    comparison per label when a mask holds a hundred labels.
    """
    if array.flags.f_contiguous and not array.flags.c_contiguous:  # avoid a C-order copy
        return {
            label: LabelSummary(
                s.voxels, (s.box[2], s.box[1], s.box[0]), (s.sums[2], s.sums[1], s.sums[0])
            )
            for label, s in label_summaries(array.T).items()
        }
    if array.dtype == np.bool_:
        array = array.view(np.uint8)
    flat = np.flatnonzero(array)
    if flat.size == 0:
        return {}
    values = array.ravel()[flat]
    order = np.argsort(values, kind="stable")
    values, flat = values[order], flat[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(values)) + 1))
    counts = np.diff(np.concatenate((starts, [values.size])))
    coords = np.unravel_index(flat, array.shape)
    lows = [np.minimum.reduceat(axis, starts) for axis in coords]
    highs = [np.maximum.reduceat(axis, starts) for axis in coords]
    sums = [np.add.reduceat(axis, starts, dtype=np.int64) for axis in coords]
    out: dict[int, LabelSummary] = {}
    for i, start in enumerate(starts):
        box = tuple((int(lows[a][i]), int(highs[a][i]) + 1) for a in range(3))
        total = (int(sums[0][i]), int(sums[1][i]), int(sums[2][i]))
        out[int(values[start])] = LabelSummary(int(counts[i]), box, total)  # type: ignore[arg-type]
    return out


def _bounding_box_contiguous(array: NDArray[Any]) -> BBox | None:
    first = array.shape[0]
    planes = array.view(np.uint8).reshape(first, -1)
    if planes.shape[1] % 8 == 0:
        planes = planes.view(np.uint64)  # 8 voxel bytes per comparison
    hits = np.flatnonzero(planes.any(axis=1))
    if hits.size == 0:
        return None
    x0, x1 = int(hits[0]), int(hits[-1]) + 1
    slab = array[x0:x1]
    if slab.dtype.itemsize == 1:
        projection = np.bitwise_or.reduce(slab.view(np.uint8), axis=0) != 0
    else:
        projection = slab.any(axis=0)
    ys = np.flatnonzero(projection.any(axis=1))
    zs = np.flatnonzero(projection.any(axis=0))
    return ((x0, x1), (int(ys[0]), int(ys[-1]) + 1), (int(zs[0]), int(zs[-1]) + 1))
