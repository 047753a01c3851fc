"""The in-memory segmentation mask: a 3-D label array, its names and its geometry.

This is MedMask's ``SegmentationMask`` API (its code runs unchanged) with overlaps that
are never lost silently, validation with clear errors, and per-label statistics. File
I/O lives in :mod:`medmask.exchange.nifti` and :mod:`medmask.files.maskfile`; the methods here that
read or write files only delegate to them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from spacetransformer import Space

from ..deprecation import check_legacy_codec, warn_deprecated, warn_once
from ..errors import MaskNotFoundError, MedmaskWarning, OverlapWarning
from .bbox import BBox, label_extents
from .label_values import check_mask_dtype, label_limit, labels_present
from .mapping import LabelMapping, as_label
from .readonly import read_only_view
from .selection import match_allowed_values
from .space import check_space, default_space, spaces_equal, voxel_volume_ml
from .wiring import wired

if TYPE_CHECKING:
    import nibabel as nib

__all__ = [
    "DTYPE_FOR_BIT_DEPTH",
    "LabelSource",
    "LabelStatistics",
    "OverlapWarning",
    "SegmentationMask",
    "warn_legacy_axis_order",
]

DTYPE_FOR_BIT_DEPTH: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.bool_),
    8: np.dtype(np.uint8),
    16: np.dtype(np.uint16),
    32: np.dtype(np.uint32),
}

OnOverlap = Literal["warn", "error"]


class LabelSource(Protocol):
    """Stored voxels not decoded yet: a mask loaded from an archive decodes on first use."""

    shape: tuple[int, int, int]
    dtype: np.dtype[Any]

    def decode_all(self) -> NDArray[Any]:
        """The whole label array."""
        ...

    def decode_label(self, label: int) -> NDArray[np.bool_] | None:
        """Where the array equals ``label``, when that is cheaper than :meth:`decode_all`."""
        ...


@dataclass(frozen=True)
class LabelStatistics:
    """Size and extent of one label.

    ``bbox`` is ``((start, stop), ...)`` per axis, stops exclusive like Python slices,
    or None for an empty label.
    """

    name: str
    label: int
    voxel_count: int
    volume_ml: float
    bbox: BBox | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "label": self.label,
            "voxel_count": self.voxel_count,
            "volume_ml": self.volume_ml,
            "bbox": [list(axis) for axis in self.bbox] if self.bbox else None,
        }


class SegmentationMask:
    """A 3-D label array with semantic names and geometry.

    Parameters
    ----------
    mask_array : numpy.ndarray
        3-D array of whole numbers >= 0, 0 being background: bool, (u)int8 to (u)int64,
        float32 or float64 (kept as given; see :mod:`medmask.model.label_values`).
    mapping : Mapping[str, int] or LabelMapping
        ``{name: label}`` for the labels in the array. Labels present in the array but
        not named get the name ``idx_<label>`` and a :class:`MedmaskWarning`.
    space : spacetransformer.Space, optional
        Geometry; ``space.shape`` equals ``mask_array.shape`` (medmask 0.1.3's rule).
        A Space whose shape is the array's reversed, and not the array's own, is taken
        the way MedMask before 0.1.3 meant it (array axes = the Space's axes in reverse
        order): the mask's ``space`` is then ``space.reverse_axis_order()``, which
        describes the array's axes in order (docs/medmask-compatibility.md). Default: a
        1 mm identity Space of the array's shape.

    Notes
    -----
    The mask keeps the array it is given without copying it; the first
    :meth:`add_label` copies it, so the caller's array never changes. The mapping is
    copied (a ``LabelMapping`` shared by two masks would rename both).

    Raises
    ------
    ValueError
        Non-3-D array, unsupported dtype, a label beyond the bit depth, or a Space of
        another shape; the message names the offending value.

    Examples
    --------
    >>> arr = np.zeros((4, 5, 6), dtype=np.uint8); arr[1:3, 1:3, 1:3] = 1
    >>> mask = SegmentationMask(arr, {"liver": 1})
    >>> int(mask.get_mask_by_names("liver").sum()), mask.bit_depth
    (8, 8)
    """

    def __init__(
        self,
        mask_array: NDArray[Any],
        mapping: Mapping[str, int] | LabelMapping,
        space: Space | None = None,
    ) -> None:
        self._setup(mask_array, mapping, space)

    def _setup(
        self,
        mask_array: NDArray[Any],
        mapping: Mapping[str, int] | LabelMapping,
        space: Space | None,
        where: str = "",
    ) -> None:
        """The constructor's work; ``where`` (a file's name) begins the warning about
        unnamed labels (:meth:`_named_in`)."""
        array = np.asarray(mask_array)
        _check_array(array)
        if space is None:
            space = default_space(array.shape)
        elif _reversed_fit(array.shape, space):
            warn_legacy_axis_order("SegmentationMask(mask_array, mapping, space)")
            space = space.reverse_axis_order()
        check_space(array.shape, space)
        self._stored_array: NDArray[Any] | None = array
        self._source: LabelSource | None = None
        self._owns_array = False  # the caller's array: copied before the first write
        self._axes_open = False  # lazy_init: the first add_label may still pick the axis order
        self.nifti_codes: tuple[int, int] | None = None  # (qform, sform) of its NIfTI file
        self.space: Space = space
        # The mask's own copy: adding labels must not rename another mask's voxels.
        self.mapping: LabelMapping = (
            mapping.copy() if isinstance(mapping, LabelMapping) else LabelMapping(mapping)
        )
        limit = label_limit(array.dtype)
        for name, label in self.mapping.items():
            if label > limit:
                raise ValueError(
                    f"label {label} ({name!r}) does not fit bit depth {self.bit_depth} "
                    f"(max {limit})"
                )
        self._name_unlabelled(where)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def _named_in(
        cls, where: str, array: NDArray[Any], mapping: LabelMapping, space: Space
    ) -> SegmentationMask:
        """``SegmentationMask(array, mapping, space)`` read from the file ``where``: the
        warning about labels without a name names the file (a cohort's files all warned
        the same line)."""
        mask = cls.__new__(cls)
        mask._setup(array, mapping, space, where)
        return mask

    @classmethod
    def _trusted(cls, array: NDArray[Any], mapping: LabelMapping, space: Space) -> SegmentationMask:
        """A mask from a checksummed file whose names were validated when it was written.

        Skips the scans of the constructor (they touch every voxel of a full volume).
        """
        _check_array(array)
        check_space(array.shape, space)
        mask = cls.__new__(cls)
        mask._array, mask.space, mask.mapping = array, space, mapping
        mask._owns_array, mask._axes_open = True, False
        mask.nifti_codes = None
        return mask

    @classmethod
    def _stored(cls, source: LabelSource, mapping: LabelMapping, space: Space) -> SegmentationMask:
        """A mask whose voxels ``source`` decodes when first needed (archives' masks).

        Until then, :meth:`get_mask_by_names` of one name asks the source for that label
        alone (codec 5 paints only its layer); everything else decodes the whole array.
        """
        check_space(source.shape, space)
        mask = cls.__new__(cls)
        mask._stored_array, mask._source = None, source
        mask.space, mask.mapping = space, mapping
        mask._owns_array, mask._axes_open = True, False
        mask.nifti_codes = None
        return mask

    # The array, decoded from the source on first use; assigning it drops the source.
    @property
    def _array(self) -> NDArray[Any]:
        if self._stored_array is None:
            assert self._source is not None
            self._stored_array = self._source.decode_all()
            self._source = None
        return self._stored_array

    @_array.setter
    def _array(self, array: NDArray[Any]) -> None:
        self._stored_array, self._source = array, None

    @classmethod
    def lazy_init(
        cls,
        bit_depth: int,
        *,
        space: Space | None = None,
        shape: Sequence[int] | None = None,
        shape_zyx: Sequence[int] | None = None,
    ) -> SegmentationMask:
        """An empty mask of ``bit_depth`` (1, 8, 16 or 32) to fill with :meth:`add_label`.

        Give ``space`` or ``shape`` (``shape_zyx`` is MedMask's name of it); with both,
        they must agree. With a ``space`` only, the first :meth:`add_label` whose array
        is the Space's shape reversed (MedMask's convention) turns the mask that way.
        """
        if shape_zyx is not None:
            warn_deprecated("lazy_init(shape_zyx=...)", "pass shape=...")
            shape = shape if shape is not None else shape_zyx
        depth = as_label(bit_depth, "bit_depth") if not isinstance(bit_depth, bool) else -1
        if depth not in DTYPE_FOR_BIT_DEPTH:
            raise ValueError(f"bit_depth must be one of 1, 8, 16, 32, got {bit_depth!r}")
        if space is None and shape is None:
            raise ValueError("lazy_init needs a space or a shape")
        grid = tuple(int(n) for n in (space.shape if space is not None else shape))  # type: ignore[union-attr]
        if shape is not None and tuple(int(n) for n in shape) != grid:
            raise ValueError(f"shape {tuple(shape)} does not match space.shape {grid}")
        mask = cls(np.zeros(grid, dtype=DTYPE_FOR_BIT_DEPTH[depth]), {}, space)
        mask._owns_array = True
        mask._axes_open = space is not None and shape is None
        return mask

    # -- properties ------------------------------------------------------------------------
    @property
    def data(self) -> NDArray[Any]:
        """The label array itself, as a read-only view (no copy; ``.copy()`` to change it)."""
        return read_only_view(self._array)

    @property
    def bit_depth(self) -> int:
        """Bits per voxel of the array's dtype: 1 for bool, else 8 to 64."""
        return 1 if self.dtype == np.bool_ else 8 * self.dtype.itemsize

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape (same as ``space.shape``)."""
        if self._source is not None:
            return self._source.shape
        return self._array.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """Array dtype."""
        if self._source is not None:
            return self._source.dtype
        return self._array.dtype

    # -- editing ---------------------------------------------------------------------------
    def add_label(
        self, mask: NDArray[Any], label: int, name: str, *, on_overlap: OnOverlap = "warn"
    ) -> None:
        """Paint the True (non-zero) voxels of ``mask`` with ``label`` and name it ``name``.

        Parameters
        ----------
        mask : numpy.ndarray
            Array of this mask's shape; non-zero voxels are painted.
        label : int
            A label not used yet, within the bit depth.
        name : str
            A name not used yet.
        on_overlap : {"warn", "error"}
            Voxels that already carry another label: ``"warn"`` emits one
            :class:`OverlapWarning` per label overwritten (naming both labels and the
            voxel count) and then overwrites them, as MedMask did; ``"error"`` raises
            ValueError and changes nothing.
        """
        if on_overlap not in ("warn", "error"):
            raise ValueError(f"on_overlap must be 'warn' or 'error', got {on_overlap!r}")
        region = np.asarray(mask)
        if region.shape != self.shape:
            self._turn_to(region.shape)
        label = as_label(label, "label")
        if self.mapping.has_label(label):
            raise ValueError(f"label {label} is already used by {self.mapping.inverse(label)!r}")
        limit = label_limit(self._array.dtype)
        if not 0 < label <= limit:
            raise ValueError(
                f"label {label!r} must be in 1..{limit} for bit depth {self.bit_depth}"
            )
        selected = region if region.dtype == np.bool_ else region != 0
        overlaps = self._overlaps(selected)
        if overlaps and on_overlap == "error":
            detail = ", ".join(
                f"{n} voxels of {self.mapping.inverse(old)!r}" for old, n in overlaps
            )
            raise ValueError(f"adding {name!r} (label {label}) would overwrite {detail}")
        for old, count in overlaps:
            old_name = self.mapping.inverse(old)
            message = (
                f"adding {name!r} (label {label}) overwrites {count} voxels "
                f"of {old_name!r} (label {old})"
            )
            warnings.warn(OverlapWarning(message, label, old, count), stacklevel=2)
        moved_from = self.mapping.get(name)
        self.mapping[name] = label  # a name in use moves to the new label, as in medmask 0.1.3
        if not self._owns_array:  # never paint into the caller's array
            self._array = np.array(self._array, order="K")
            self._owns_array = True
        self._array[selected] = label
        self._axes_open = False
        if moved_from is not None and np.any(self._array == moved_from):
            # 0.1.3 left those voxels without a name; keep them reachable instead.
            self.mapping[f"idx_{moved_from}"] = moved_from
            warnings.warn(
                MedmaskWarning(
                    f"name {name!r} moved from label {moved_from} to label {label}; the voxels "
                    f"still labelled {moved_from} are now named 'idx_{moved_from}'"
                ),
                stacklevel=2,
            )

    def _turn_to(self, shape: tuple[int, ...]) -> None:
        """Take MedMask's axis order for a lazily made mask, or refuse a wrong shape."""
        if not (self._axes_open and shape == self.shape[::-1] and len(self.mapping) == 0):
            raise ValueError(f"mask shape {shape} does not match the mask's shape {self.shape}")
        warn_legacy_axis_order("lazy_init(space=...) + add_label")
        self._array = np.zeros(shape, dtype=self._array.dtype)
        self.space = self.space.reverse_axis_order()
        self._axes_open = False

    def _overlaps(self, selected: NDArray[np.bool_]) -> list[tuple[int, int]]:
        """(existing label, voxel count) pairs under ``selected``."""
        under = self._array[selected]
        if under.dtype == np.bool_:
            hits = int(np.count_nonzero(under))
            return [(1, hits)] if hits else []
        taken = under[under != 0]
        if taken.size == 0:
            return []
        values, counts = np.unique(taken, return_counts=True)
        return [(int(v), int(c)) for v, c in zip(values, counts, strict=True)]

    # -- queries ---------------------------------------------------------------------------
    def get_mask_by_names(self, names: str | Iterable[str]) -> NDArray[np.bool_]:
        """Boolean mask of one name, or the union of several."""
        if isinstance(names, str):
            return self.get_mask_by_labels(self.mapping[names])
        return self.get_mask_by_labels([self.mapping[n] for n in names])

    def get_mask_by_labels(self, labels: int | Iterable[int]) -> NDArray[np.bool_]:
        """Boolean mask of one label, or the union of several; unknown labels raise."""
        wanted = [labels] if isinstance(labels, int | np.integer) else list(labels)
        for label in wanted:
            if not self.mapping.has_label(int(label)):
                raise MaskNotFoundError(f"label {label} is not in the mapping {self.mapping}")
        if self._source is not None and len(wanted) == 1:
            found = self._source.decode_label(int(wanted[0]))
            if found is not None:
                return found
        if self._array.dtype == np.bool_:  # only label 1 can be mapped
            return self._array.copy()
        return match_allowed_values(self._array, wanted)

    def get_binary_mask_by_names(self, names: str | Iterable[str]) -> NDArray[np.bool_]:
        """medmask 0.1.3's name of :meth:`get_mask_by_names`."""
        warn_deprecated("SegmentationMask.get_binary_mask_by_names", "use get_mask_by_names")
        return self.get_mask_by_names(names)

    def get_binary_mask_by_labels(self, labels: int | Iterable[int]) -> NDArray[np.bool_]:
        """medmask 0.1.3's query: voxels equal to any of ``labels``, named or not.

        Unlike :meth:`get_mask_by_labels`, a label that is not in the mapping is not an
        error: as in 0.1.3, it selects the voxels holding that value (none, usually).
        """
        warn_deprecated(
            "SegmentationMask.get_binary_mask_by_labels",
            "use get_mask_by_labels (which raises MaskNotFoundError for unknown labels)",
        )
        if isinstance(labels, int | np.integer):
            return self._array == labels  # type: ignore[no-any-return]
        return match_allowed_values(self._array, labels)

    def get_all_masks(self, binarize: bool = False) -> NDArray[Any]:
        """The label array itself as a read-only view (no copy), or with ``binarize=True``
        a new boolean foreground mask."""
        return self.to_binary() if binarize else read_only_view(self._array)

    def to_binary(self) -> NDArray[np.bool_]:
        """Boolean array, True where any label is."""
        return self._array != 0  # type: ignore[no-any-return]

    def statistics(self) -> dict[str, LabelStatistics]:
        """Per name: voxel count, volume in ml and bounding box."""
        ml = voxel_volume_ml(self.space)
        extents = label_extents(self._array)
        out = {}
        for name, label in self.mapping.items():
            count, box = extents.get(label, (0, None))
            out[name] = LabelStatistics(name, label, count, count * ml, box)
        return out

    # -- files (MedMask's API; the readers and writers are wired in: model/wiring.py) ---------
    @classmethod
    def from_nifti(
        cls,
        source: str | os.PathLike[str] | nib.Nifti1Image,
        mapping: Mapping[str, int] | None = None,
    ) -> SegmentationMask:
        """Read a NIfTI mask; see :func:`medmask.read_nifti`."""
        mask: SegmentationMask = wired().read_nifti(source, mapping=mapping)
        return mask

    @classmethod
    def from_nifti_folder(cls, folder: str | os.PathLike[str]) -> dict[str, SegmentationMask]:
        """Read a folder of per-organ masks; see :func:`medmask.read_nifti_folder`."""
        masks: dict[str, SegmentationMask] = wired().read_nifti_folder(folder)
        return masks

    @classmethod
    def from_dicom_seg(
        cls, source: str | os.PathLike[str], space: Space | None = None
    ) -> dict[str, SegmentationMask]:
        """Each segment of a DICOM SEG (a file, or a folder of one segmentation's
        instances) as a 0/1 mask, by segment label; see
        :func:`medmask.exchange.dicom.exchange.read_dicom_seg`.

        ``space``: the grid to read onto (e.g. the source series'); default the frames' own.
        """
        masks: dict[str, SegmentationMask] = wired().read_dicom_seg(source, space=space)
        return masks

    def to_nifti(self, path: str | os.PathLike[str] | None = None) -> nib.Nifti1Image:
        """The mask as a NIfTI image, written to ``path`` when given; see
        :func:`medmask.write_nifti`."""
        image: nib.Nifti1Image = wired().write_nifti(self, path)
        return image

    def save(
        self, path: str | os.PathLike[str], *, level: int | None = None, codec: str | None = None
    ) -> None:
        """Write a single-mask ``.msk`` file; see :func:`medmask.save_mask`."""
        check_legacy_codec(codec, "SegmentationMask.save")
        wired().save_mask(self, path, level=level)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SegmentationMask:
        """Read a ``.msk`` file (ours or medmask 0.1.3's); see :func:`medmask.load_mask`."""
        mask: SegmentationMask = wired().load_mask(path)
        return mask

    # -- internals -------------------------------------------------------------------------
    def _name_unlabelled(self, where: str = "") -> None:
        present = labels_present(self._array)
        missing = [label for label in present if not self.mapping.has_label(label)]
        if not missing:
            return
        for label in missing:
            self.mapping[f"idx_{label}"] = label
        said = f"labels {missing} have no name; named them idx_<label>"
        warnings.warn(MedmaskWarning(f"{where}: {said}" if where else said), stacklevel=4)

    def __repr__(self) -> str:
        return (
            f"SegmentationMask(shape={self.shape}, dtype={self.dtype}, "
            f"labels={len(self.mapping)}, mapping={self.mapping!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SegmentationMask):
            return NotImplemented
        return (
            self.dtype == other.dtype
            and self.mapping == other.mapping
            and spaces_equal(self.space, other.space)
            and np.array_equal(self._array, other._array)
        )

    # Hashable by identity, as in medmask 0.1.3 (masks as dict keys, in sets): equal
    # contents do not make two masks one key.
    __hash__ = object.__hash__


def warn_legacy_axis_order(where: str) -> None:
    """Say once that an array was matched to its Space with the axes reversed (MedMask's way)."""
    warn_once(
        "reversed-axes",
        f"{where}: the array's shape is the Space's shape reversed, so it is taken as MedMask "
        "took it (array axes = the Space's axes in reverse order) and the mask's space is "
        "space.reverse_axis_order(); give a Space in the array's own axis order (e.g. "
        "medmask.model.geometry.space_from_nifti_affine(img.affine, img.shape[:3]) for nibabel "
        "arrays) to silence this",
    )


def _reversed_fit(shape: tuple[int, ...], space: Space) -> bool:
    """Whether ``shape`` matches ``space`` only with the axes reversed (MedMask's convention)."""
    grid = tuple(int(n) for n in getattr(space, "shape", ()))
    return tuple(shape) != grid and tuple(shape) == grid[::-1]


def _check_array(array: NDArray[Any]) -> None:
    if array.ndim != 3:
        raise ValueError(f"mask array must be 3-D, got {array.ndim}-D with shape {array.shape}")
    check_mask_dtype(array.dtype)
