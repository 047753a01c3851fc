"""The values a mask array may hold, and which ones it holds, checked in one pass.

Masks come in every numeric type NIfTI files use (TotalSegmentator writes uint8, other
tools int16, float32 after resampling): medmask keeps the type and checks the values
instead. A label is a whole number from 1 to 2**32 - 1 (float32 to 2**24, where it
still counts exactly); 0 is background. Large arrays are scanned in slabs of 256 K
voxels, so a 512 x 512 x 800 label map needs no full-size temporary arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

__all__ = ["LABEL_MAX", "MASK_DTYPES", "check_mask_dtype", "label_limit", "labels_present"]

LABEL_MAX: Final = 2**32 - 1
MASK_DTYPES: Final = (
    "bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
    "float32", "float64",
)  # fmt: skip
_SLAB_VOXELS: Final = 1 << 18  # small enough for the allocator to reuse temporaries
_COUNTED_BELOW: Final = 1 << 16  # values below are counted with bincount, others sorted


def check_mask_dtype(dtype: np.dtype[Any]) -> None:
    """Raise ValueError unless ``dtype`` is one a mask may have (:data:`MASK_DTYPES`)."""
    if str(dtype) not in MASK_DTYPES or dtype.byteorder not in "=|<":
        raise ValueError(
            f"unsupported mask dtype {dtype}; masks are bool, (u)int8-64, float32 or float64 "
            "holding whole numbers >= 0"
        )


def label_limit(dtype: np.dtype[Any]) -> int:
    """The highest label an array of ``dtype`` holds exactly."""
    if dtype == np.bool_:
        return 1
    if dtype.kind == "f":
        exact: int = 2 ** (int(np.finfo(dtype).nmant) + 1)
        return min(LABEL_MAX, exact)
    return min(LABEL_MAX, int(np.iinfo(dtype).max))


def labels_present(array: NDArray[Any]) -> list[int]:
    """The non-zero values in ``array``, ascending.

    Raises
    ------
    ValueError
        A value is negative, not a whole number, not finite, or above the dtype's
        :func:`label_limit`; the message gives the value.
    """
    if array.size == 0:
        return []
    if array.dtype == np.bool_:
        return [1] if array.any() else []
    if array.dtype.kind == "u" and (array.flags.c_contiguous or array.flags.f_contiguous):
        highest = _or_of_all(array)
        if highest <= 1:  # the common binary mask: nothing to count
            return [highest] if highest else []
    limit = label_limit(array.dtype)
    counts = np.zeros(0, dtype=np.int64)
    others: set[int] = set()
    for slab in _slabs(array):
        high = _check_slab(slab, limit)
        if high == 0:
            continue  # an empty slab (whole-body maps have many): nothing to count
        if high < _COUNTED_BELOW:
            flat = slab.ravel(order="K")
            if flat.dtype.kind == "i":  # checked >= 0: the same bits read as unsigned
                flat = flat.view(flat.dtype.str.replace("i", "u"))
            if np.count_nonzero(flat) < flat.size // 2:  # mostly background: count the rest
                flat = flat[flat != 0]  # (4x faster than counting zeros for a body's 7%)
            small = flat.dtype in (np.uint8, np.uint16, np.uint32)  # cast safely by bincount
            found = np.bincount(flat if small else flat.astype(np.intp))
            if found.size > counts.size:
                found[: counts.size] += counts
                counts = found
            else:
                counts[: found.size] += found
        else:
            others.update(int(v) for v in np.unique(slab))
    present = {int(v) for v in np.flatnonzero(counts)} | others
    present.discard(0)
    return sorted(present)


def _check_slab(slab: NDArray[Any], limit: int) -> int:
    """The slab's highest value, after checking every value is a label or 0."""
    kind = slab.dtype.kind
    if kind == "f":
        if not np.isfinite(slab).all():
            raise ValueError("the array holds NaN or infinite values; labels are whole numbers")
        whole = slab == np.floor(slab)
        if not whole.all():
            bad = slab[~whole].flat[0]
            raise ValueError(f"the array holds {bad}, not a whole number; labels are whole")
    if kind in "if":
        low = slab.min()
        if low < 0:
            raise ValueError(f"the array holds {low}; labels are >= 0 (0 is background)")
    high = slab.max()
    if high > limit:
        raise ValueError(f"the array holds {high}, above the highest label {limit} of {slab.dtype}")
    return int(high)


def _slabs(array: NDArray[Any]) -> Iterator[NDArray[Any]]:
    """Views of ``array`` along its slowest axis in memory, ~8 M voxels each."""
    axis = 2 if array.flags.f_contiguous and not array.flags.c_contiguous else 0
    length = array.shape[axis]
    step = max(1, _SLAB_VOXELS // max(1, array.size // max(1, length)))
    for start in range(0, length, step):
        yield array[start : start + step] if axis == 0 else array[..., start : start + step]


def _or_of_all(array: NDArray[Any]) -> int:
    """Bitwise OR of every value: 0 for an all-zero array, 1 for a binary one.

    On contiguous arrays it runs over 64-bit words, several times faster than ``max``.
    """
    if array.nbytes % 8 == 0:
        words = int(np.bitwise_or.reduce(array.ravel(order="K").view(np.uint64)))
        folded = 0
        for shift in range(0, 64, 8 * array.itemsize):  # fold the lanes of one word together
            folded |= (words >> shift) & ((1 << (8 * array.itemsize)) - 1)
        return folded
    return int(np.bitwise_or.reduce(array, axis=None))
