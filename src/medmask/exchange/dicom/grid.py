"""The voxel grid of a DICOM series, and how a mask's array axes map onto it.

A DICOM image's pixel (row r, column c) in slice s lies at ``P_s + c * dc * u + r * dr *
v``, with ``u, v`` the Image Orientation (Patient) row and column directions, ``dc, dr``
the pixel spacing and ``P_s`` the slice's Image Position (Patient); all in LPS, as
``spacetransformer.Space``. A mask's voxel (i, j, k) lies at ``origin + i * sx * x + j *
sy * y + k * sz * z``. The two are one grid when every mask axis runs along one series
axis (either way), with the same spacing and count, and the first voxels coincide: then
the mask is transposed and flipped onto the series, never resampled. Anything else
(another grid, a gantry tilt, uneven slices) is refused with both geometries named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from spacetransformer import Space

from ...errors import GeometryMismatchError
from ...model.geometry import space_from_dicom_frames

__all__ = ["AxisMap", "SliceGrid", "describe_space", "map_axes"]

DIRECTION_TOLERANCE = 1e-4  # |cos| of two axes that are the same direction
SPACING_TOLERANCE = 1e-3  # relative
POSITION_TOLERANCE = 0.01  # fraction of the smallest spacing


@dataclass(frozen=True)
class SliceGrid:
    """Geometry of a series of parallel slices, slices in increasing position.

    Attributes
    ----------
    rows, columns : int
        Pixels per slice.
    row_direction, column_direction : numpy.ndarray
        Unit LPS directions of increasing column index and of increasing row index
        (Image Orientation (Patient), in that order).
    pixel_spacing : tuple[float, float]
        Spacing between rows, then between columns (Pixel Spacing, in that order).
    positions : numpy.ndarray
        (n, 3) Image Position (Patient) of every slice.
    """

    rows: int
    columns: int
    row_direction: NDArray[np.float64]
    column_direction: NDArray[np.float64]
    pixel_spacing: tuple[float, float]
    positions: NDArray[np.float64]

    @property
    def normal(self) -> NDArray[np.float64]:
        """Unit normal of the slices (row direction x column direction)."""
        n = np.cross(self.row_direction, self.column_direction)
        return np.asarray(n / np.linalg.norm(n), dtype=np.float64)

    @property
    def slice_step(self) -> NDArray[np.float64]:
        """Mean step between neighbouring slice positions (zero for one slice)."""
        if len(self.positions) < 2:
            return np.zeros(3)
        return np.asarray((self.positions[-1] - self.positions[0]) / (len(self.positions) - 1))

    def slice_spacing(self) -> float:
        """Distance between neighbouring slices (0 for a single slice)."""
        return float(np.linalg.norm(self.slice_step))

    def problems(self) -> list[str]:
        """Why the series is not one regular grid of voxels (empty when it is)."""
        out = []
        if len(self.positions) > 1:
            step = self.slice_step
            spacing = float(np.linalg.norm(step))
            if spacing <= 0:
                return ["its slices all lie at one position"]
            tilt = np.degrees(np.arccos(min(1.0, abs(float(step @ self.normal)) / spacing)))
            if tilt > 0.01:
                out.append(
                    f"its slices step {tilt:.2f} degrees off the image normal (gantry tilt); "
                    "no voxel grid of orthogonal axes matches it: resample it first"
                )
            expected = self.positions[0] + np.arange(len(self.positions))[:, None] * step
            worst = float(np.abs(self.positions - expected).max())
            if worst > POSITION_TOLERANCE * min(spacing, *self.pixel_spacing):
                out.append(f"its slice positions are uneven (up to {worst:.3f} mm off)")
        return out

    def space(self) -> Space:
        """The grid as a Space: axes column, row, slice (as a NIfTI of the series)."""
        step = self.slice_step if len(self.positions) > 1 else None
        return space_from_dicom_frames(
            self.row_direction,
            self.column_direction,
            self.pixel_spacing,
            self.positions[0],
            step,
            (self.columns, self.rows, len(self.positions)),
        )

    def describe(self) -> str:
        """One line: size, spacing, first position and directions."""
        u = ", ".join(f"{v:.3f}" for v in self.row_direction)
        v = ", ".join(f"{x:.3f}" for x in self.column_direction)
        first = ", ".join(f"{x:.2f}" for x in self.positions[0])
        rows, cols = self.pixel_spacing
        return (
            f"{self.columns} x {self.rows} pixels x {len(self.positions)} slices of "
            f"({cols:g}, {rows:g}, {self.slice_spacing():g}) mm from ({first}), "
            f"rows along ({u}), columns along ({v})"
        )


@dataclass(frozen=True)
class AxisMap:
    """Which series axis (0 column, 1 row, 2 slice) each mask axis is, which are reversed,
    and where the masks' grid begins in the series when it is a part of it (``shift``:
    (column, row, slice) of the series voxel its first voxel in series order lies on)."""

    axes: tuple[int, int, int]
    flips: tuple[bool, bool, bool]
    shift: tuple[int, int, int] = (0, 0, 0)

    def to_series(self, array: NDArray[Any]) -> NDArray[Any]:
        """The mask array with axes (column, row, slice) of the series (a view)."""
        flipped = array[tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)]
        return flipped.transpose(np.argsort(self.axes))

    def from_series(self, array: NDArray[Any]) -> NDArray[Any]:
        """Inverse of :meth:`to_series`: a (column, row, slice) array in the mask's axes."""
        back = array.transpose(self.axes)
        return back[tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)]


def describe_space(space: Space) -> str:
    """One line: shape, spacing, origin and axis directions of a Space."""
    shape = " x ".join(str(int(n)) for n in space.shape)
    spacing = ", ".join(f"{float(v):g}" for v in space.spacing)
    origin = ", ".join(f"{float(v):.2f}" for v in space.origin)
    axes = "; ".join(
        "(" + ", ".join(f"{float(c):.3f}" for c in d) + ")"
        for d in (space.x_orientation, space.y_orientation, space.z_orientation)
    )
    return f"{shape} voxels of ({spacing}) mm from ({origin}), axes {axes}"


def map_axes(space: Space, grid: SliceGrid, where: str = "the series") -> AxisMap:
    """How ``space``'s axes lie on ``grid``: the same voxel grid, or a part of it (a box of
    its voxels: masks cropped by the tool that wrote them, e.g. a SEG of pydicom-seg's or
    a Slicer segmentation saved cropped to its segments).

    Raises
    ------
    GeometryMismatchError
        When they are not one voxel grid and ``space`` is no box of ``grid``'s voxels;
        the message gives both geometries and why.
    """

    def refuse(reason: str) -> GeometryMismatchError:
        return GeometryMismatchError(
            f"the masks' grid ({describe_space(space)}) is not the grid of {where} "
            f"({grid.describe()}): {reason}"
        )

    problems = grid.problems()
    if problems:
        raise refuse("; ".join(problems))
    step = grid.slice_step
    slice_spacing = float(np.linalg.norm(step))
    series_dirs = [
        grid.row_direction,
        grid.column_direction,
        grid.normal if slice_spacing == 0 else step / slice_spacing,
    ]
    series_spacing = [grid.pixel_spacing[1], grid.pixel_spacing[0], slice_spacing]
    series_shape = [grid.columns, grid.rows, len(grid.positions)]
    mask_dirs = [
        np.asarray(d, dtype=np.float64)
        for d in (space.x_orientation, space.y_orientation, space.z_orientation)
    ]
    axes, flips = [], []
    for a, direction in enumerate(mask_dirs):
        cosines = [float(direction @ d) for d in series_dirs]
        b = int(np.argmax(np.abs(cosines)))
        if abs(abs(cosines[b]) - 1) > DIRECTION_TOLERANCE:
            raise refuse(f"mask axis {a} runs along none of the series' axes")
        axes.append(b)
        flips.append(cosines[b] < 0)
    if sorted(axes) != [0, 1, 2]:
        raise refuse("two mask axes run along one series axis")
    for a, b in enumerate(axes):
        size, spacing = int(space.shape[a]), float(space.spacing[a])
        if size > series_shape[b]:
            raise refuse(f"mask axis {a} has {size} voxels, the series {series_shape[b]}")
        if b == 2 and size == 1 == series_shape[b]:
            continue  # one slice: its spacing is not in the series
        if abs(spacing - series_spacing[b]) > SPACING_TOLERANCE * series_spacing[b]:
            raise refuse(
                f"mask axis {a} has spacing {spacing:g} mm, the series {series_spacing[b]:g}"
            )
    # the mask voxel first in series order must lie on a series voxel: (0, 0, 0) when the
    # grids are one, else the corner of the box of series voxels the masks cover
    corner = [int(space.shape[a]) - 1 if flips[a] else 0 for a in range(3)]
    world = np.asarray(space.origin, dtype=np.float64) + sum(
        corner[a] * float(space.spacing[a]) * mask_dirs[a] for a in range(3)
    )
    relative = world - grid.positions[0]
    shift = [
        round(float(relative @ d) / spacing) if spacing else 0  # (a series of one slice)
        for d, spacing in zip(series_dirs, series_spacing, strict=True)
    ]
    off = float(
        np.linalg.norm(
            relative - sum(shift[b] * series_spacing[b] * series_dirs[b] for b in range(3))
        )
    )
    if off > POSITION_TOLERANCE * min(series_spacing[:2]) + 1e-6:
        raise refuse(f"the grids are {off:.3f} mm apart")
    for a, b in enumerate(axes):
        if shift[b] < 0 or shift[b] + int(space.shape[a]) > series_shape[b]:
            raise refuse(
                f"mask axis {a} has {int(space.shape[a])} voxels from the series' voxel "
                f"{shift[b]}, the series {series_shape[b]}"
            )
    return AxisMap(
        (axes[0], axes[1], axes[2]), (flips[0], flips[1], flips[2]), (shift[0], shift[1], shift[2])
    )
