"""Decoder for medmask 0.1.3 data blobs (read-only).

Blob layout: ``flag`` (1 byte: 1 = bool packed with np.packbits, 0 = raw values),
``dtype_len`` (1 byte), dtype string (numpy name, e.g. ``uint8``), ``ndim`` (1 byte),
``ndim`` int64 sizes, then one zstd frame of the payload. The array is the full mask,
not cropped, in C order.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import FormatError
from . import MAX_VOXELS, SUPPORTED_DTYPES, _decompress

__all__ = ["decode_legacy_blob"]


def decode_legacy_blob(blob: bytes, source: str) -> NDArray[Any]:
    """The array stored in a 0.1.3 blob; FormatError naming ``source`` when damaged."""
    try:
        flag, dtype_len = blob[0], blob[1]
        dtype_name = blob[2 : 2 + dtype_len].decode("ascii")
        pos = 2 + dtype_len
        ndim = blob[pos]
        shape = struct.unpack_from(f"<{ndim}q", blob, pos + 1)
    except (IndexError, UnicodeDecodeError, struct.error) as err:
        raise FormatError(f"{source}: medmask 0.1.3 data header is damaged: {err}") from err
    payload = blob[pos + 1 + 8 * ndim :]
    if dtype_name not in SUPPORTED_DTYPES or ndim != 3 or min(shape) < 0 or flag not in (0, 1):
        raise FormatError(f"{source}: unexpected 0.1.3 array {dtype_name} {shape} (flag {flag})")
    voxels = math.prod(shape)
    if voxels > MAX_VOXELS:
        raise FormatError(f"{source}: implausible array shape {shape}")
    dtype = np.dtype(dtype_name)
    try:
        if flag == 1:
            raw = _decompress(payload, (voxels + 7) // 8)
            bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=voxels)
            return bits.reshape(shape).astype(dtype)
        raw = _decompress(payload, voxels * dtype.itemsize)
    except FormatError as err:
        raise FormatError(f"{source}: {err}") from err
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
