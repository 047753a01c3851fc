"""Arrow columns from numpy arrays and Python values, and back, through their buffers.

pyarrow's own conversions - ``pyarrow.array``, ``Array.to_numpy``, ``Schema.empty_table``,
``Table.group_by`` - first ask whether the values are pandas objects, and asking imports
pandas: 0.3 s of a cold ``medmask catalog`` run that takes about a second in all
(benchmarks/catalog.py). The catalog's columns are of a few plain kinds - numbers and
booleans with or without nulls, strings, lists of strings, lists of numbers - and built
from their buffers nothing is asked. tests/medmask/test_arrow_columns.py compares each
function here with pyarrow's own conversion, which stays the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

__all__ = [
    "as_numpy",
    "empty_table",
    "first_rows",
    "number_lists",
    "numbers",
    "string_lists",
    "strings",
]

_TYPES: dict[np.dtype[Any], Any] = {
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.float64): pa.float64(),
}
_DTYPES: dict[str, np.dtype[Any]] = {str(arrow): dtype for dtype, arrow in _TYPES.items()}
_OFFSETS_MAX = 2**31 - 1  # a string column's bytes, with 32-bit offsets


def _bitmap(bits: NDArray[np.bool_]) -> Any:
    return pa.py_buffer(np.packbits(bits, bitorder="little"))


def numbers(values: NDArray[Any], mask: NDArray[np.bool_] | None = None) -> Any:
    """An int64, int32, float64 or boolean array of ``values`` (one dimension); null where
    ``mask`` is True (as ``pyarrow.array(values, mask=mask)``)."""
    array = np.ascontiguousarray(values)
    validity = None if mask is None or not mask.any() else _bitmap(~np.asarray(mask, bool))
    if array.dtype == np.bool_:
        return pa.Array.from_buffers(pa.bool_(), len(array), [validity, _bitmap(array)])
    kind = _TYPES.get(array.dtype)
    if kind is None:
        raise TypeError(f"numbers: {array.dtype} is not int64, int32, float64 or bool")
    return pa.Array.from_buffers(kind, len(array), [validity, pa.py_buffer(array)])


def strings(values: Sequence[str | None]) -> Any:
    """A string array of ``values``, null where a value is None."""
    encoded = [b"" if v is None else v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
    if offsets[-1] > _OFFSETS_MAX:
        raise ValueError("strings: more than 2 GiB of text in one column")
    absent = np.fromiter((v is None for v in values), bool, len(encoded))
    validity = _bitmap(~absent) if absent.any() else None
    return pa.Array.from_buffers(
        pa.string(), len(encoded),
        [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))],
    )  # fmt: skip


def string_lists(rows: Sequence[Sequence[str]]) -> Any:
    """A list<string> array, one list per row."""
    lengths = np.fromiter(map(len, rows), np.int64, len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(numbers(offsets), strings([s for row in rows for s in row]))


def number_lists(matrix: NDArray[Any]) -> Any:
    """A list array of a 2-d array's rows (each list as long as a row)."""
    rows, width = matrix.shape
    offsets = (np.arange(rows + 1) * width).astype(np.int32)
    return pa.ListArray.from_arrays(numbers(offsets), numbers(matrix.reshape(-1)))


def as_numpy(array: Any, null: float | bool | None = None) -> NDArray[Any]:
    """The values of an int64, int32, float64 or boolean array (or chunked array), as
    numpy (read-only where they are the array's own memory); nulls become ``null``.

    Raises
    ------
    ValueError
        The array has nulls and no ``null`` value is given, or has another type.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count and null is None:
        raise ValueError("as_numpy: the array has nulls; say what they become")
    n, start = len(array), array.offset
    validity, data = array.buffers()[:2]
    if pa.types.is_boolean(array.type):
        values = _bits(data, start, n)
    else:
        dtype = _DTYPES.get(str(array.type))
        if dtype is None:
            raise ValueError(f"as_numpy: {array.type} is not int64, int32, float64 or bool")
        values = (
            np.frombuffer(data, dtype=dtype, count=start + n)[start:]
            if n
            else np.zeros(0, dtype=dtype)
        )
    if array.null_count:
        values = np.where(_bits(validity, start, n), values, null if null is not None else 0)
    return values


def _bits(buffer: Any, start: int, n: int) -> NDArray[np.bool_]:
    if n == 0:
        return np.zeros(0, dtype=bool)
    packed = np.frombuffer(buffer, dtype=np.uint8)
    return np.unpackbits(packed, count=start + n, bitorder="little")[start:].astype(bool)


def empty_table(schema: Any) -> Any:
    """A table of ``schema`` without rows."""
    return pa.table([pa.nulls(0, field.type) for field in schema], schema=schema)


def first_rows(column: Any) -> tuple[list[Any], NDArray[np.int64]]:
    """The distinct values of a column, in order of first appearance, and the row where
    each first appears."""
    encoded = column.combine_chunks().dictionary_encode() if isinstance(
        column, pa.ChunkedArray
    ) else column.dictionary_encode()  # fmt: skip
    codes = as_numpy(encoded.indices)
    _, first = np.unique(codes, return_index=True)  # codes count up from 0 in that order
    return encoded.dictionary.to_pylist(), first.astype(np.int64)
