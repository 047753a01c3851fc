"""Read-only views of a mask's array that say how to get a writable one.

``SegmentationMask.data`` and ``get_all_masks()`` hand out the mask's own array without
copying it (as MedMask did). Writing into it would change the mask behind its back, so the
view is read-only, and a write says to ``.copy()`` instead of numpy's bare "assignment
destination is read-only". Results of arithmetic on a view are plain numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ReadOnlyArrayError

__all__ = ["ReadOnlyArray", "read_only_view"]

_ADVICE = (
    "this array is a read-only view of the mask's voxels (no copy was made); "
    "use .copy() for an array you can change, or SegmentationMask.add_label to edit the mask"
)


class ReadOnlyArray(np.ndarray):
    """A read-only ndarray view; every way numpy offers to write into it raises."""

    def __setitem__(self, key: Any, value: Any) -> None:
        if not self.flags.writeable:
            raise ReadOnlyArrayError(_ADVICE)
        super().__setitem__(key, value)

    def fill(self, value: Any) -> None:
        """As ``ndarray.fill``; raises on the read-only view."""
        if not self.flags.writeable:
            raise ReadOnlyArrayError(_ADVICE)
        super().fill(value)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out")
        if out is not None:
            for target in out:
                if isinstance(target, ReadOnlyArray) and not target.flags.writeable:
                    raise ReadOnlyArrayError(_ADVICE)
            kwargs["out"] = tuple(_plain(target) for target in out)
        return getattr(ufunc, method)(*(_plain(x) for x in inputs), **kwargs)

    def copy(self, order: Any = "C") -> NDArray[Any]:  # type: ignore[override]
        """A writable copy, as a plain numpy array."""
        return np.ndarray.copy(self.view(np.ndarray), order=order)

    def astype(self, dtype: Any, *args: Any, **kwargs: Any) -> NDArray[Any]:
        """As ``ndarray.astype``, giving a plain numpy array."""
        return self.view(np.ndarray).astype(dtype, *args, **kwargs)


def read_only_view(array: NDArray[Any]) -> NDArray[Any]:
    """``array`` as a read-only :class:`ReadOnlyArray` view (no copy)."""
    view = array.view(ReadOnlyArray)
    view.flags.writeable = False
    return view


def _plain(value: Any) -> Any:
    return value.view(np.ndarray) if isinstance(value, ReadOnlyArray) else value
