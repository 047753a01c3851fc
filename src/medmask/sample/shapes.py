"""Rasterize the cartoon anatomy into bounding-box crops of boolean voxels."""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.typing import NDArray

from .anatomy import Blob, Tube

__all__ = ["Crop", "rasterize"]

Shape3 = tuple[int, int, int]
BoolArray = NDArray[np.bool_]


class Crop:
    """A boolean mask stored as its bounding box: ``offset`` into the volume and the voxels."""

    def __init__(self, offset: Shape3, voxels: BoolArray) -> None:
        self.offset = offset
        self.voxels = voxels

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """Where the crop sits in the full volume."""
        o, s = self.offset, self.voxels.shape
        return (slice(o[0], o[0] + s[0]), slice(o[1], o[1] + s[1]), slice(o[2], o[2] + s[2]))

    def count(self) -> int:
        """Voxels inside the mask."""
        return int(np.count_nonzero(self.voxels))


def rasterize(organ: Blob | Tube, shape: Shape3, rng: np.random.Generator) -> Crop:
    """Voxels of one structure, clipped to the volume (empty when outside the view)."""
    if isinstance(organ, Blob):
        return _blob(organ, shape, rng)
    return _tube(organ, shape)


def _box(
    lo: NDArray[np.float64], hi: NDArray[np.float64], shape: Shape3
) -> tuple[Shape3, Shape3] | None:
    start = np.maximum(np.floor(lo).astype(int), 0)
    stop = np.minimum(np.ceil(hi).astype(int) + 1, shape)
    if np.any(stop <= start):
        return None
    return (int(start[0]), int(start[1]), int(start[2])), (int(stop[0]), int(stop[1]), int(stop[2]))


def _empty() -> Crop:
    return Crop((0, 0, 0), np.zeros((0, 0, 0), dtype=bool))


def _blob(blob: Blob, shape: Shape3, rng: np.random.Generator) -> Crop:
    size = np.array(shape, dtype=float)
    center = np.array(blob.center) * size
    radii = np.maximum(np.array(blob.radii) * size, 1.0)
    box = _box(center - 1.3 * radii, center + 1.3 * radii, shape)
    if box is None:
        return _empty()
    start, stop = box
    grid = np.ogrid[start[0] : stop[0], start[1] : stop[1], start[2] : stop[2]]
    dx, dy, dz = ((g - c) / r for g, c, r in zip(grid, center, radii, strict=True))
    distance = np.sqrt(dx * dx + dy * dy + dz * dz)
    # A smooth, seeded wobble of the surface: low-order angular terms, like real organs.
    theta = np.arctan2(dy, dx)
    height = dz / np.maximum(distance, 1e-9)
    p1, p2, p3 = rng.uniform(0.0, 2.0 * math.pi, size=3)
    surface = 1.0 + 0.12 * np.sin(2.0 * theta + p1) * np.cos(math.pi * height + p2)
    surface = surface + 0.06 * np.sin(3.0 * theta + p3)
    return _trim(Crop(start, distance <= surface))


def _tube(tube: Tube, shape: Shape3) -> Crop:
    size = np.array(shape, dtype=float)
    radius = max(tube.radius * size[0], 1.0)
    points = np.array(tube.points) * size
    # Dense samples along the polyline, half a voxel apart, each marking a ball.
    samples = [points[0]]
    for a, b in itertools.pairwise(points):
        steps = max(int(np.ceil(np.linalg.norm(b - a) * 2.0)), 1)
        samples.extend(a + (b - a) * t for t in np.linspace(0.0, 1.0, steps + 1)[1:])
    centers = np.array(samples)
    box = _box(centers.min(axis=0) - radius, centers.max(axis=0) + radius, shape)
    if box is None:
        return _empty()
    start, stop = box
    voxels = np.zeros(tuple(b - a for a, b in zip(start, stop, strict=True)), dtype=bool)
    reach = int(np.ceil(radius))
    for center in centers:
        lo = np.maximum(np.floor(center).astype(int) - reach, start)
        hi = np.minimum(np.floor(center).astype(int) + reach + 1, stop)
        if np.any(hi <= lo):
            continue
        grid = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        d2 = sum((g - c) ** 2 for g, c in zip(grid, center, strict=True))
        region = tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, start, strict=True))
        voxels[region] |= d2 <= radius * radius
    return _trim(Crop(start, voxels))


def _trim(crop: Crop) -> Crop:
    """Shrink the crop to the voxels actually set (empty stays empty)."""
    if not crop.voxels.any():
        return _empty()
    lo, hi = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(crop.voxels.any(axis=other))
        lo.append(int(hits[0]))
        hi.append(int(hits[-1]) + 1)
    voxels = crop.voxels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    offset = (crop.offset[0] + lo[0], crop.offset[1] + lo[1], crop.offset[2] + lo[2])
    return Crop(offset, np.ascontiguousarray(voxels))
