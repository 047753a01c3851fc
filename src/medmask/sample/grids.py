"""Grids in every orientation a user can have, and masks whose contours are hard: the
test matrix of the fidelity and RT Structure Set work, shared by tests and benchmarks.

The orientations are written out as numbers (the LPS directions of voxel axes 0, 1, 2),
never computed by medmask's geometry code, so that a test judging that code does not
share its mistakes.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["ORIENTATIONS", "contour_shapes", "rotation"]


def rotation(axis: int, degrees: float) -> NDArray[np.float64]:
    """The rotation by ``degrees`` about LPS axis ``axis`` (right-handed)."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    out = np.eye(3)
    out[i, i], out[i, j], out[j, i], out[j, j] = c, -s, s, c
    return out


_RAS = np.diag([-1.0, -1.0, 1.0])  # LPS <-> RAS: the first two world coordinates change sign

# columns: the LPS directions of voxel axes 0, 1, 2
ORIENTATIONS: dict[str, NDArray[np.float64]] = {
    "axial_lps": np.eye(3),
    "axial_ras": np.diag([-1.0, -1.0, 1.0]),  # nibabel's canonical RAS+
    "sagittal": np.column_stack([(0, 1, 0), (0, 0, -1), (-1, 0, 0)]).astype(np.float64),
    "coronal": np.column_stack([(1, 0, 0), (0, 0, -1), (0, 1, 0)]).astype(np.float64),
    "oblique_two_axes": rotation(0, 25) @ rotation(1, -40),
    "flipped": np.diag([1.0, -1.0, 1.0]),  # left-handed
    "permuted_yzx": _RAS @ np.array([[0, 0, 1.0], [1, 0, 0], [0, 1, 0]]),  # issue 26's
    "oblique_permuted_flipped": rotation(2, 30)
    @ rotation(0, 60)
    @ np.array([[0, 1.0, 0], [0, 0, 1], [1, 0, 0]])
    @ np.diag([1.0, 1.0, -1.0]),
}


def contour_shapes(shape: tuple[int, int, int] = (40, 40, 6)) -> dict[str, NDArray[np.bool_]]:
    """Masks whose contours are hard, on a ``shape`` grid (axes 0 and 1 in-plane, at
    least 40 x 40 x 6): a ring, a ring with an island in its hole, a vertebra with its
    canal, three pixels touching only at corners, a line one pixel wide, a single pixel,
    and an empty mask."""
    nx, ny, nz = shape
    if nx < 40 or ny < 40 or nz < 6:
        raise ValueError(f"the shapes need a grid of at least 40 x 40 x 6, not {shape}")
    x, y = np.mgrid[:nx, :ny] - np.array([19.5, 19.5])[:, None, None]
    radius = np.hypot(x, y)
    ring = (radius < 15) & (radius >= 9)
    island = radius < 4
    out = {
        "ring": np.repeat(ring[:, :, None], nz, axis=2),
        "ring_with_island": np.repeat((ring | island)[:, :, None], nz, axis=2),
        "vertebra": np.zeros(shape, bool),
        "corners": np.zeros(shape, bool),
        "line": np.zeros(shape, bool),
        "pixel": np.zeros(shape, bool),
        "nothing": np.zeros(shape, bool),
    }
    canal = np.hypot(x - 2, y) < 3
    body = (np.hypot(x + 6, y) < 8) | ((np.abs(y) < 2) & (x > 1) & (x < 12))
    out["vertebra"][:, :, 1:5] = (body & ~canal)[:, :, None]
    out["corners"][5, 5, 2] = out["corners"][6, 6, 2] = out["corners"][7, 5, 2] = True
    out["line"][25:36, 34, 2:4] = True
    out["pixel"][33, 6, 3] = True
    return out
