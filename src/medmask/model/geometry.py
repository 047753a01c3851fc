"""Every conversion between the coordinate systems medmask meets, written from the matrices.

A voxel grid is one 4x4 matrix ``A`` that takes a voxel index ``(i, j, k, 1)`` to a world
position ``(x, y, z, 1)`` in millimetres. Each format writes ``A`` its own way:

=============  =======  ============================================================
format         world    how ``A`` is stored
=============  =======  ============================================================
medmask Space  LPS      columns of ``A[:3, :3]`` = ``x/y/z_orientation * spacing``,
                        ``A[:3, 3]`` = ``origin`` (spacetransformer's ``Space``)
NIfTI          RAS      the affine itself (nibabel's ``img.affine``)
NRRD           LPS/RAS  ``space directions`` rows = the columns of ``A[:3, :3]``,
                        ``space origin`` = ``A[:3, 3]``, ``space`` names the world
DICOM          LPS      per frame: Image Position (Patient) = world of pixel (0, 0),
                        Image Orientation (Patient) = row then column direction,
                        Pixel Spacing = between rows, then between columns
=============  =======  ============================================================

LPS and RAS differ by the sign of the first two *world* coordinates:
``A_lps = F @ A_ras`` with ``F = diag(-1, -1, 1, 1)``: the rows of the affine change sign,
not its columns. (spacetransformer-core 0.2.7's ``Space.from_nifti`` and
``Space.to_nifti_affine`` negate the x and y *columns* instead, which is right only where
``F`` commutes with the directions: axial grids and rotations about z. medmask converts
here instead and never calls them; docs/mask-format.md, "Geometry".)
"""

from __future__ import annotations

import itertools
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from spacetransformer import Space
from spacetransformer.core.exceptions import SpaceTransformerError

__all__ = [
    "LPS_FROM_RAS",
    "ORTHOGONALITY_TOLERANCE",
    "grid_turn",
    "nifti_affine",
    "nrrd_geometry",
    "space_from_dicom_frames",
    "space_from_matrix",
    "space_from_nifti_affine",
    "space_from_nrrd",
    "space_matrix",
    "voxel_positions",
]

LPS_FROM_RAS: Final = np.diag([-1.0, -1.0, 1.0, 1.0])
"""``F``: RAS world coordinates to LPS (and back: ``F`` is its own inverse)."""

ORTHOGONALITY_TOLERANCE: Final = 1e-2
"""Largest |cos| between two axes still taken as perpendicular (spacetransformer's own
bound): TotalSegmentator's s0000 affines reach 2.2e-4; a sheared grid is far beyond. The
columns are kept as given, so a nearly perpendicular grid still goes back unchanged."""

# the NRRD worlds with anatomical directions (NRRD format definition 5, "space"), as the
# signs taking their coordinates to LPS
_NRRD_WORLDS: Final = {
    "left-posterior-superior": (1.0, 1.0, 1.0),
    "lps": (1.0, 1.0, 1.0),
    "right-anterior-superior": (-1.0, -1.0, 1.0),
    "ras": (-1.0, -1.0, 1.0),
    "left-anterior-superior": (1.0, -1.0, 1.0),
    "las": (1.0, -1.0, 1.0),
}


def space_matrix(space: Space) -> NDArray[np.float64]:
    """The 4x4 voxel-to-LPS matrix of ``space``."""
    directions = np.column_stack(
        [
            np.asarray(space.x_orientation, dtype=np.float64),
            np.asarray(space.y_orientation, dtype=np.float64),
            np.asarray(space.z_orientation, dtype=np.float64),
        ]
    )
    matrix = np.eye(4)
    matrix[:3, :3] = directions * np.asarray(space.spacing, dtype=np.float64)
    matrix[:3, 3] = np.asarray(space.origin, dtype=np.float64)
    return matrix


def space_from_matrix(matrix: NDArray[Any], shape: tuple[int, ...]) -> Space:
    """The Space of a 4x4 voxel-to-LPS matrix for an array of ``shape``.

    Parameters
    ----------
    matrix : numpy.ndarray
        4x4, last row ``(0, 0, 0, 1)``; its first three columns are the axis steps.
    shape : tuple of int
        The array's shape, axis by axis as the matrix's columns.

    Returns
    -------
    spacetransformer.Space
        Spacing = the columns' lengths, directions = the columns divided by them.

    Raises
    ------
    ValueError
        Not a finite 4x4 matrix, an axis of length zero, or axes that are not
        perpendicular (a sheared grid: no Space describes it).
    """
    a = np.asarray(matrix, dtype=np.float64) + 0.0  # + 0.0: no -0.0 from sign flips
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise ValueError(f"a grid matrix must be a finite 4x4 matrix, got shape {a.shape}")
    steps = a[:3, :3]
    spacing = np.linalg.norm(steps, axis=0)
    if not np.all(spacing > 0):
        raise ValueError(f"an axis has zero length (spacing {spacing.tolist()})")
    directions = steps / spacing
    cosines = np.abs(directions.T @ directions - np.eye(3)).max()
    if cosines > ORTHOGONALITY_TOLERANCE:
        raise ValueError(
            f"its axes are not perpendicular (cosine {cosines:.2g} between two of them): a "
            "sheared or skewed grid, which no Space describes; resample it first"
        )
    try:
        return Space(
            shape=tuple(int(n) for n in shape),
            origin=tuple(float(v) for v in a[:3, 3]),
            spacing=tuple(float(v) for v in spacing),
            x_orientation=tuple(float(v) for v in directions[:, 0]),
            y_orientation=tuple(float(v) for v in directions[:, 1]),
            z_orientation=tuple(float(v) for v in directions[:, 2]),
        )
    except SpaceTransformerError as err:  # e.g. a left-handed basis
        raise ValueError(f"its axes do not make a Space: {err}") from err


def space_from_nifti_affine(affine: NDArray[Any], shape: tuple[int, ...]) -> Space:
    """The Space (LPS) of a NIfTI voxel-to-RAS affine (nibabel's ``img.affine``).

    The right replacement for spacetransformer's ``Space.from_nifti(img)``:
    ``space_from_nifti_affine(img.affine, img.shape[:3])``.

    Raises
    ------
    ValueError
        See :func:`space_from_matrix`.
    """
    ras = np.asarray(affine, dtype=np.float64)
    if ras.shape != (4, 4):
        raise ValueError(f"a NIfTI affine must be 4x4, got shape {ras.shape}")
    return space_from_matrix(LPS_FROM_RAS @ ras, shape)


def nifti_affine(space: Space) -> NDArray[np.float64]:
    """The NIfTI voxel-to-RAS affine of ``space`` (replaces ``Space.to_nifti_affine()``)."""
    return np.asarray(LPS_FROM_RAS @ space_matrix(space), dtype=np.float64)


def space_from_nrrd(
    directions: NDArray[Any],
    origin: NDArray[Any],
    world: str,
    shape: tuple[int, ...],
) -> Space:
    """The Space of NRRD geometry: ``space directions`` (one row per axis), ``space origin``.

    Parameters
    ----------
    world : str
        The NRRD ``space`` field: ``left-posterior-superior``, ``right-anterior-superior``
        or ``left-anterior-superior`` (or their abbreviations, any case).

    Raises
    ------
    ValueError
        Another world, or directions that are not 3 by 3, or see :func:`space_from_matrix`.
    """
    key = world.strip().lower()
    if key not in _NRRD_WORLDS:
        raise ValueError(
            f"space {world!r}: not a patient's directions (expected left-posterior-superior, "
            "right-anterior-superior or left-anterior-superior, or LPS, RAS, LAS)"
        )
    steps = np.asarray(directions, dtype=np.float64)
    if steps.shape != (3, 3):
        raise ValueError(f"needs 3 space directions of 3 numbers, got shape {steps.shape}")
    matrix = np.eye(4)
    matrix[:3, :3] = steps.T
    matrix[:3, 3] = np.asarray(origin, dtype=np.float64).reshape(3)
    signs = _NRRD_WORLDS[key]
    if signs != (1.0, 1.0, 1.0):
        matrix = np.diag([*signs, 1.0]) @ matrix
    return space_from_matrix(matrix, shape)


def nrrd_geometry(space: Space) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``space directions`` (one row per axis) and ``space origin`` of ``space``, in LPS."""
    matrix = space_matrix(space)
    return matrix[:3, :3].T.copy(), matrix[:3, 3].copy()


def space_from_dicom_frames(
    row_direction: NDArray[Any],
    column_direction: NDArray[Any],
    pixel_spacing: tuple[float, float],
    first_position: NDArray[Any],
    slice_step: NDArray[Any] | None,
    shape: tuple[int, int, int],
) -> Space:
    """The Space of parallel DICOM frames: axes column, row, slice (a NIfTI of the series).

    Parameters
    ----------
    row_direction, column_direction : numpy.ndarray
        Image Orientation (Patient): the directions of increasing column, then row index.
    pixel_spacing : tuple of float
        Pixel Spacing as DICOM orders it: between rows, then between columns.
    first_position : numpy.ndarray
        Image Position (Patient) of the first slice.
    slice_step : numpy.ndarray or None
        From one slice's position to the next; None (one slice): a 1 mm step along the
        normal.
    shape : tuple of int
        Columns, rows, slices.
    """
    u = np.asarray(row_direction, dtype=np.float64)
    v = np.asarray(column_direction, dtype=np.float64)
    if slice_step is None or not np.linalg.norm(slice_step) > 0:
        normal = np.cross(u, v)
        step = normal / np.linalg.norm(normal)
    else:
        step = np.asarray(slice_step, dtype=np.float64)
    matrix = np.eye(4)
    matrix[:3, 0] = u * float(pixel_spacing[1])
    matrix[:3, 1] = v * float(pixel_spacing[0])
    matrix[:3, 2] = step
    matrix[:3, 3] = np.asarray(first_position, dtype=np.float64)
    return space_from_matrix(matrix, shape)


def voxel_positions(space: Space, indices: NDArray[Any]) -> NDArray[np.float64]:
    """LPS world positions (n, 3) of voxel indices (n, 3) on ``space``."""
    index = np.asarray(indices, dtype=np.float64).reshape(-1, 3)
    matrix = space_matrix(space)
    return np.asarray(index @ matrix[:3, :3].T + matrix[:3, 3], dtype=np.float64)


def grid_turn(
    source: Space, target: Space, tolerance: float
) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]] | None:
    """How ``source``'s voxels lie on ``target``'s grid when the two are one grid in
    another axis order: the same voxel centres, the axes permuted or reversed (one tool's
    RAS array beside another's LPS array of the same scan). None when they are not.

    Returns ``(order, flips)``: ``np.flip(np.transpose(data, order), [axes where flips])``
    puts an array on ``source`` onto ``target`` voxel for voxel. Every voxel centre of the
    one is within ``tolerance`` mm of the other's.

    Examples
    --------
    >>> from spacetransformer import Space
    >>> a = Space(shape=(4, 3, 2), spacing=(1.0, 2.0, 3.0))
    >>> b = Space(shape=(3, 4, 2), origin=(0.0, 4.0, 0.0), spacing=(2.0, 1.0, 3.0),
    ...           x_orientation=(0, -1, 0), y_orientation=(1, 0, 0))
    >>> grid_turn(b, a, 1e-3)
    ((1, 0, 2), (False, True, False))
    """
    if len(source.shape) != 3 or len(target.shape) != 3:
        return None
    into = np.linalg.solve(space_matrix(target), space_matrix(source))  # source -> target index
    turn = np.rint(into[:3, :3])
    size = np.abs(turn)
    if not ((size.sum(axis=0) == 1).all() and (size.sum(axis=1) == 1).all()):
        return None  # not a signed permutation of the axes
    order = tuple(int(np.flatnonzero(turn[j])[0]) for j in range(3))
    flips = tuple(bool(turn[j, order[j]] < 0) for j in range(3))
    source_shape = tuple(int(n) for n in source.shape)
    if tuple(source_shape[i] for i in order) != tuple(int(n) for n in target.shape):
        return None
    shift = np.array([source_shape[order[j]] - 1 if flips[j] else 0 for j in range(3)], float)
    exact = np.eye(4)
    exact[:3, :3], exact[:3, 3] = turn, shift
    # every corner of the source grid (and so every voxel centre between: the maps are
    # affine) lands within tolerance of where the turn puts it
    ends = [(0, n - 1) for n in source_shape]
    corners = np.array([[*corner, 1.0] for corner in itertools.product(*ends)])
    where = corners @ (space_matrix(target) @ exact).T
    truth = corners @ space_matrix(source).T
    if np.abs(where - truth)[:, :3].max() > tolerance:
        return None
    return order, flips  # type: ignore[return-value]
