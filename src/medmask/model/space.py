"""Geometry helpers around :class:`spacetransformer.Space` (the MedMask API's geometry type).

A Space describes the same axes, in the same order, as the mask array it belongs to:
``space.shape == array.shape``. Spaces are in LPS world coordinates (spacetransformer's
convention); NIfTI affines are RAS and are converted on the way in and out.
"""

from __future__ import annotations

import copy
import functools
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from spacetransformer import Space

from ..deprecation import warn_deprecated
from .geometry import space_from_nifti_affine

__all__ = [
    "check_space",
    "default_space",
    "geometry_difference",
    "install_space_aliases",
    "space_from_affine",
    "space_from_dict",
    "space_to_dict",
    "spaces_close",
    "spaces_equal",
    "voxel_volume_ml",
]

_FIELDS = ("origin", "spacing", "x_orientation", "y_orientation", "z_orientation")


def default_space(shape: tuple[int, ...]) -> Space:
    """The 1 mm identity Space of ``shape`` (used when a mask comes without geometry)."""
    return Space(shape=tuple(int(n) for n in shape))


def check_space(shape: tuple[int, ...], space: Space) -> None:
    """Raise ValueError unless ``space`` describes an array of ``shape``, axis by axis."""
    if not isinstance(space, Space):
        raise TypeError(f"space must be a spacetransformer.Space, got {type(space).__name__}")
    if tuple(int(n) for n in space.shape) != tuple(shape):
        raise ValueError(
            f"array shape {tuple(shape)} does not match space.shape {tuple(space.shape)}; "
            "the Space must describe the array's axes in the same order"
        )


def space_from_affine(affine: NDArray[Any], shape: tuple[int, ...]) -> Space:
    """Space of a voxel-to-RAS affine (nibabel's ``img.affine``) for an array of ``shape``.

    See :func:`medmask.model.geometry.space_from_nifti_affine`, which this calls: the affine
    nibabel reports (the sform when set) keeps geometry exact both ways, where the qform's
    quaternion is rounded to float32.
    """
    matrix = np.asarray(affine, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise ValueError(f"affine must be a 4x4 matrix, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(
            "the affine holds values that are not finite numbers (NaN or infinity: a damaged "
            "header's pixdim, qform or sform), so the voxels have no place in space"
        )
    return space_from_nifti_affine(matrix, tuple(int(n) for n in shape))


def space_to_dict(space: Space) -> dict[str, Any]:
    """JSON-ready geometry: shape, origin, spacing and the three axis directions."""
    out: dict[str, Any] = {"shape": [int(n) for n in space.shape]}
    for field in _FIELDS:
        out[field] = [float(v) for v in getattr(space, field)]
    return out


def space_from_dict(data: dict[str, Any]) -> Space:
    """Inverse of :func:`space_to_dict`; ValueError on missing or non-finite fields."""
    try:
        shape = tuple(int(n) for n in data["shape"])
        values = {field: tuple(float(v) for v in data[field]) for field in _FIELDS}
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"geometry record is incomplete or malformed: {err}") from err
    if len(shape) != 3 or min(shape) < 0 or any(len(v) != 3 for v in values.values()):
        raise ValueError(f"geometry must be 3-D, got shape {shape}")
    if not all(math.isfinite(v) for vec in values.values() for v in vec):
        raise ValueError("geometry holds non-finite numbers")
    key = (shape, *(values[field] for field in _FIELDS))
    return copy.copy(_validated_space(key))  # Space is mutable: each caller gets its own


@functools.lru_cache(maxsize=64)
def _validated_space(key: tuple[tuple[Any, ...], ...]) -> Space:
    """Space's own checks cost ~0.2 ms (half of opening an archive): once per geometry."""
    shape, *vectors = key
    return Space(shape=shape, **dict(zip(_FIELDS, vectors, strict=True)))


def spaces_equal(a: Space, b: Space) -> bool:
    """Exact equality of shape and every geometry number."""
    return space_to_dict(a) == space_to_dict(b)


GEOMETRY_TOLERANCE = 1e-3
"""mm for origin and spacing, and direction-cosine units: files of one scan written by
one tool differ by float noise (TotalSegmentator s0000: 1.5e-4), real differences are
far larger."""


def geometry_difference(a: Space, b: Space) -> float:
    """The largest difference between two Spaces' geometry numbers (inf for other shapes)."""
    first, second = space_to_dict(a), space_to_dict(b)
    if first["shape"] != second["shape"]:
        return math.inf
    return float(
        max(abs(x - y) for key in _FIELDS for x, y in zip(first[key], second[key], strict=True))
    )


def spaces_close(a: Space, b: Space, tolerance: float = GEOMETRY_TOLERANCE) -> bool:
    """Same shape, and every geometry number within ``tolerance``."""
    first, second = space_to_dict(a), space_to_dict(b)
    if first["shape"] != second["shape"]:
        return False
    return all(
        abs(x - y) <= tolerance
        for key in _FIELDS
        for x, y in zip(first[key], second[key], strict=True)
    )


def voxel_volume_ml(space: Space) -> float:
    """Volume of one voxel in millilitres (spacing in mm)."""
    sx, sy, sz = (float(v) for v in space.spacing)
    return sx * sy * sz / 1000.0


def install_space_aliases() -> None:
    """Give ``spacetransformer.Space`` MedMask's older name ``from_nifty``, converting right.

    ``Space.from_nifty`` was spacetransformer's earlier spelling of ``Space.from_nifti``
    (the MedMask notebook calls it); spacetransformer-core 0.2.7 dropped it. The alias
    medmask installs converts the image's affine (nibabel's ``img.affine``) from RAS to LPS
    with :func:`medmask.model.geometry.space_from_nifti_affine`, which is right in every
    orientation; ``Space.from_nifti`` itself negates the affine's columns instead of its
    rows and misplaces sagittal, coronal and oblique grids (docs/mask-format.md). The
    alias warns once that the name is old. Installed by ``import medmask``; an alias
    spacetransformer defines itself is replaced.
    """
    if getattr(Space, "from_nifty", None) is not None and getattr(
        Space.from_nifty, "__medmask__", False
    ):
        return

    def from_nifty(cls: type[Space], niftiimage: Any) -> Space:
        warn_deprecated(
            "Space.from_nifty",
            "use medmask.model.geometry.space_from_nifti_affine(img.affine, img.shape[:3]) "
            "(Space.from_nifti misplaces sagittal, coronal and oblique grids)",
        )
        shape = tuple(int(n) for n in niftiimage.shape[:3])
        return space_from_nifti_affine(np.asarray(niftiimage.affine), shape)

    from_nifty.__doc__ = "The Space (LPS) of a NIfTI image, right in every orientation (medmask)."
    method = classmethod(from_nifty)
    from_nifty.__medmask__ = True  # type: ignore[attr-defined]
    Space.from_nifty = method
