"""Which voxels hold any of a set of label values (medmask 0.1.3's ``match_allowed_values``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["match_allowed_values"]

_LOOKUP_MAX_ITEMSIZE = 2  # up to 16 bits a lookup table beats one comparison per value


def match_allowed_values(image_data: NDArray[Any], allowed_set: Iterable[int]) -> NDArray[np.bool_]:
    """Boolean array: True where ``image_data`` holds one of ``allowed_set``.

    The same result as ``numpy.isin(image_data, list(allowed_set))``, faster for label
    maps: 8- and 16-bit arrays go through a lookup table (one pass however many values).

    Parameters
    ----------
    image_data : numpy.ndarray
        Integer (or bool) array, e.g. a label map.
    allowed_set : iterable of int
        Values to select; values the dtype cannot hold select nothing.

    Examples
    --------
    >>> match_allowed_values(np.arange(6, dtype=np.uint8), [1, 3, 4]).astype(int)
    array([0, 1, 0, 1, 1, 0])
    """
    values = np.asarray(image_data)
    wanted = sorted({int(v) for v in allowed_set})
    if not wanted:
        return np.zeros(values.shape, dtype=bool)
    if len(wanted) == 1:
        return values == wanted[0]  # type: ignore[no-any-return]
    if values.dtype == np.bool_:
        values = values.view(np.uint8)
    if values.dtype.kind == "u" and values.dtype.itemsize <= _LOOKUP_MAX_ITEMSIZE:
        size = 1 << (8 * values.dtype.itemsize)
        lookup = np.zeros(size, dtype=bool)
        lookup[[v for v in wanted if 0 <= v < size]] = True
        return lookup[values]  # type: ignore[no-any-return]
    return np.isin(values, wanted)
