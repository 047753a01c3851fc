"""Arrow arrays of the tables' columns, built from their buffers.

pyarrow's own conversion (``pyarrow.array``, ``pyarrow.table``) first asks whether the
values are pandas objects, and asking imports pandas: ~0.2 s of every run that writes
Parquet (``--instances`` always does). A run over 2,000 files with ``--format parquet``
took 0.4 s with it and 0.2 s without (the run's own summary line, this machine). The
tables' columns are of three kinds - text, int64 and float64, each with nulls (None) - and
built from their buffers nothing is asked; for 10^5 instance rows that costs about what
pyarrow's conversion does (0.09 s against 0.08).

Values of any other Python type go to ``pyarrow.array``, the reference: whatever it makes
of them (or the error it raises) is what the table gets. ``tests/dcm_extractor/
test_arrow_columns.py`` compares every array made here with pyarrow's.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import is_not
from typing import Any, Final

import numpy as np
import pyarrow as pa

__all__ = ["column", "numbers", "strings"]

_NONE: Final = type(None)
_OFFSETS_MOST: Final = 2**31 - 1  # a string array's bytes (32-bit offsets)


def column(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
    """What ``pyarrow.array(values, kind)`` gives, without asking about pandas.

    Parameters
    ----------
    values
        A column's values, None for null.
    kind
        Its Arrow type: string, int64 or float64 are built here, any other by pyarrow.
    """
    if kind == pa.string():
        return strings(values)
    if kind in (pa.int64(), pa.float64()):
        return numbers(values, kind)
    return pa.array(values, kind)


def strings(values: Sequence[Any]) -> pa.Array:
    """A string array of ``values`` (str, or None for null), as ``pyarrow.array``."""
    count = len(values)
    validity = None
    texts: Sequence[str] = values
    try:
        text = "".join(values)  # (nearly always: text only, no null)
    except TypeError:
        kinds = set(map(type, values))
        if not kinds <= {str, _NONE}:
            return pa.array(values, pa.string())  # (the reference decides)
        validity = _validity(values)
        texts = ["" if value is None else value for value in values]
        text = "".join(texts)
    try:
        if text.isascii():
            data = text.encode("ascii")
            lengths = np.fromiter(map(len, texts), np.int64, count)
        else:
            encoded = [value.encode("utf-8") for value in texts]
            data = b"".join(encoded)
            lengths = np.fromiter(map(len, encoded), np.int64, count)
    except UnicodeEncodeError:  # a lone surrogate: pyarrow says what it says of it
        return pa.array(values, pa.string())
    if len(data) > _OFFSETS_MOST:
        return pa.array(values, pa.string())
    offsets = np.zeros(count + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
    nulls = -1 if validity is not None else 0  # (-1: counted by Arrow from the bitmap)
    return pa.Array.from_buffers(pa.string(), count, buffers, null_count=nulls)


def numbers(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
    """An int64 array of ``values`` (int or None), or a float64 one (float or None), as
    ``pyarrow.array``; other values (bool, an int in a float column, text) go to it."""
    count = len(values)
    number, dtype = (int, np.int64) if kind == pa.int64() else (float, np.float64)
    kinds = set(map(type, values))
    if not kinds <= {number, _NONE}:
        return pa.array(values, kind)
    validity = None
    filled: Sequence[Any] = values
    if _NONE in kinds:
        validity = _validity(values)
        filled = [0 if value is None else value for value in values]
    try:
        array = np.fromiter(filled, dtype, count)
    except OverflowError:  # an int past int64: pyarrow's error says so
        return pa.array(values, kind)
    nulls = -1 if validity is not None else 0
    return pa.Array.from_buffers(kind, count, [validity, pa.py_buffer(array)], null_count=nulls)


def _validity(values: Sequence[Any]) -> pa.Buffer:
    """Arrow's validity bitmap of ``values``: a set bit for each value that is not None."""
    present = np.fromiter(map(is_not, values, repeat(None)), np.bool_, len(values))
    return pa.py_buffer(np.packbits(present, bitorder="little"))
