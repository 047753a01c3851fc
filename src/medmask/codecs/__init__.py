"""Mask codecs: ndarray <-> bytes, shared by ``.msk`` files and archives.

Every mask is cropped to the bounding box of its non-zero voxels first; only the crop
is encoded, and an all-zero mask has no blob at all. Binary content (only 0 and 1) is
detected whatever dtype it arrives in and coded as row transitions (codec 4), so uint8
0/1 costs what bool costs; the dtype it came in is recorded and given back on decoding.
Label crops (several labels, or one other than 1) of integer dtypes are coded as one
such layer per label (codec 5) when that beats zstd over the raw values (codec 2).

Codec ids are part of the file formats (docs/mask-format.md); never renumber them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

import numpy as np
import zstandard
from numpy.typing import NDArray

from ..errors import FormatError
from ..model.bbox import BBox, bounding_box
from ..model.label_values import MASK_DTYPES, label_limit
from .runs import decode_runs_into

__all__ = [
    "DEFAULT_LEVEL",
    "FAST_LEVEL",
    "BBox",
    "CodecId",
    "EncodedMask",
    "LabelReader",
    "decode_crop",
    "decode_label",
    "decode_mask",
    "encode_mask",
    "layer_labels",
]

# Levels are zstd's for codecs 1 and 2; codec 4 has none, but from BOTH_ORDERS_LEVEL on
# binary crops are encoded in both candidate axis orders and the smaller kept.
DEFAULT_LEVEL: Final = 19  # small blobs: the highest practical zstd level still writes fast
FAST_LEVEL: Final = 3
BOTH_ORDERS_LEVEL: Final = 10

SUPPORTED_DTYPES: Final = MASK_DTYPES
# Runs are painted straight into these (compiled once each); other dtypes via a uint8 crop.
_NATIVE_RUNS: Final = ("bool", "uint8", "uint16", "uint32")
SMALL_CROP: Final = 32_768  # up to this many voxels both binary codecs are tried
# Codec 5 is kept without running the slow zstd level when it is this many times smaller
# than a level-3 frame: level 19 is never that much smaller than level 3 on label maps.
CLEAR_WIN: Final = 4
# Codec 5 paints labels through these unsigned views of the stored dtype.
_LAYER_PAINT: Final = {
    "uint8": "uint8", "int8": "uint8", "uint16": "uint16", "int16": "uint16",
    "uint32": "uint32", "int32": "uint32", "uint64": "uint64", "int64": "uint64",
}  # fmt: skip
MAX_VOXELS: Final = 2**33  # larger shapes in a file are damage, not data (512^3 is 2**27)


class CodecId(IntEnum):
    """How a blob's bytes encode the crop."""

    EMPTY = 0  # all-zero mask: no blob
    BITS_ZSTD = 1  # crop of a binary mask, np.packbits (C order, big-endian bits), zstd frame
    RAW_ZSTD = 2  # crop of a label mask, little-endian values in C order, zstd frame
    RUNS_ZSTD = 3  # binary crop as row transitions predicted slice to slice (runs.py); read only
    RUNS_ARITH = 4  # binary crop as row transitions, arithmetic-coded (arith_runs.py)
    LABEL_LAYERS = 5  # label crop as one codec-4 layer per label, one coder (label_layers.py)


@dataclass(frozen=True)
class EncodedMask:
    """A mask as stored: codec, dtype, full shape, bounding box and the blob."""

    codec: CodecId
    dtype: str
    shape: tuple[int, int, int]
    bbox: BBox | None
    blob: bytes


def encode_mask(array: NDArray[Any], *, level: int = DEFAULT_LEVEL) -> EncodedMask:
    """Crop ``array`` to its bounding box and encode it with the best-fitting codec."""
    dtype = str(array.dtype)
    if dtype not in SUPPORTED_DTYPES or array.ndim != 3 or array.dtype.byteorder == ">":
        raise ValueError(
            f"cannot encode a {array.ndim}-D {dtype} array; need 3-D {SUPPORTED_DTYPES}"
        )
    shape = (int(array.shape[0]), int(array.shape[1]), int(array.shape[2]))
    bbox = bounding_box(array)
    if bbox is None:
        return EncodedMask(CodecId.EMPTY, dtype, shape, None, b"")
    crop = array[tuple(slice(a, b) for a, b in bbox)]
    compressor = zstandard.ZstdCompressor(level=level)
    if crop.dtype == np.bool_ or int(crop.max()) <= 1:
        binary = crop if crop.dtype == np.bool_ else crop != 0
        runs = _encode_arith(binary, both_orders=level >= BOTH_ORDERS_LEVEL)
        if crop.size > SMALL_CROP:
            return EncodedMask(CodecId.RUNS_ARITH, dtype, shape, bbox, runs)
        bits = compressor.compress(np.packbits(binary.ravel()).tobytes())
        if len(bits) < len(runs):  # tiny masks: the bitmap can be smaller
            return EncodedMask(CodecId.BITS_ZSTD, dtype, shape, bbox, bits)
        return EncodedMask(CodecId.RUNS_ARITH, dtype, shape, bbox, runs)
    return _encode_labels(crop, dtype, shape, bbox, level)


def _encode_labels(
    crop: NDArray[Any], dtype: str, shape: tuple[int, int, int], bbox: BBox, level: int
) -> EncodedMask:
    """A label crop as codec 5 or codec 2, whichever is smaller (floats: codec 2)."""
    raw = np.ascontiguousarray(crop, dtype=crop.dtype.newbyteorder("<")).tobytes()
    compressor = zstandard.ZstdCompressor(level=level)
    if dtype not in _LAYER_PAINT:  # floats: zstd keeps every bit, negative zero included
        return EncodedMask(CodecId.RAW_ZSTD, dtype, shape, bbox, compressor.compress(raw))
    layers = _encode_layers(crop)
    if level > FAST_LEVEL:
        quick = zstandard.ZstdCompressor(level=FAST_LEVEL).compress(raw)
        if CLEAR_WIN * len(layers) <= len(quick):
            return EncodedMask(CodecId.LABEL_LAYERS, dtype, shape, bbox, layers)
    zstd = compressor.compress(raw)
    if len(zstd) < len(layers):
        return EncodedMask(CodecId.RAW_ZSTD, dtype, shape, bbox, zstd)
    return EncodedMask(CodecId.LABEL_LAYERS, dtype, shape, bbox, layers)


def decode_crop(encoded: EncodedMask) -> tuple[NDArray[Any], tuple[int, int, int]]:
    """The stored crop in its original dtype and the index of its first voxel.

    An empty mask gives a ``(0, 0, 0)`` array at offset ``(0, 0, 0)``.

    Raises
    ------
    FormatError
        When the blob does not decode to exactly the crop's size.
    """
    dtype = _dtype(encoded.dtype)
    if encoded.codec == CodecId.EMPTY or encoded.bbox is None:
        if encoded.blob:
            raise FormatError("an empty mask must have no data blob")
        return np.zeros((0, 0, 0), dtype=dtype), (0, 0, 0)
    _check_bbox(encoded.bbox, encoded.shape)
    crop_shape = tuple(b - a for a, b in encoded.bbox)
    voxels = math.prod(crop_shape)
    offset = (encoded.bbox[0][0], encoded.bbox[1][0], encoded.bbox[2][0])
    if encoded.codec == CodecId.BITS_ZSTD:
        raw = _decompress(encoded.blob, (voxels + 7) // 8)
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=voxels)
        crop = bits.reshape(crop_shape).astype(dtype, copy=False)
        return crop, offset
    if encoded.codec in _RUNS_DECODERS:
        native = encoded.dtype in _NATIVE_RUNS
        crop = np.zeros(crop_shape, dtype=dtype if native else np.uint8)
        origin = ((0, crop_shape[0]), (0, crop_shape[1]), (0, crop_shape[2]))
        target = crop.view(np.uint8) if dtype == np.bool_ else crop
        _RUNS_DECODERS[encoded.codec](encoded.blob, target, origin)
        return (crop if native else crop.astype(dtype)), offset
    if encoded.codec == CodecId.LABEL_LAYERS:
        crop = np.zeros(crop_shape, dtype=dtype)
        origin = ((0, crop_shape[0]), (0, crop_shape[1]), (0, crop_shape[2]))
        _decode_layers(encoded.blob, crop, origin)
        return crop, offset
    if encoded.codec == CodecId.RAW_ZSTD:
        if dtype == np.bool_:
            raise FormatError("a label-valued blob cannot have dtype bool")
        raw = _decompress(encoded.blob, voxels * dtype.itemsize)
        crop = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(crop_shape)
        return crop, offset
    raise FormatError(f"unknown codec id {int(encoded.codec)}")


def decode_mask(encoded: EncodedMask) -> NDArray[Any]:
    """The full mask array in its original dtype."""
    if math.prod(encoded.shape) > MAX_VOXELS or min(encoded.shape) < 0:
        raise FormatError(f"implausible mask shape {encoded.shape}")
    full = np.zeros(encoded.shape, dtype=_dtype(encoded.dtype))
    if (
        encoded.codec in _RUNS_DECODERS
        and encoded.bbox is not None
        and encoded.dtype in _NATIVE_RUNS
    ):
        _check_bbox(encoded.bbox, encoded.shape)
        target = full.view(np.uint8) if full.dtype == np.bool_ else full
        _RUNS_DECODERS[encoded.codec](encoded.blob, target, encoded.bbox)  # in place, no crop
        return full
    if encoded.codec == CodecId.LABEL_LAYERS and encoded.bbox is not None:
        _check_bbox(encoded.bbox, encoded.shape)
        _decode_layers(encoded.blob, full, encoded.bbox)  # in place, no crop
        return full
    crop, _ = decode_crop(encoded)
    if crop.size:
        full[tuple(slice(a, b) for a, b in encoded.bbox or ())] = crop
    return full


def decode_label(encoded: EncodedMask, label: int) -> NDArray[np.bool_]:
    """Where the mask equals ``label``, full size; codec 5 paints only that label's layer."""
    if encoded.codec != CodecId.LABEL_LAYERS or encoded.bbox is None:
        return np.asarray(decode_mask(encoded) == label, dtype=np.bool_)
    return LabelReader(encoded).read(label)


class LabelReader:
    """One label at a time out of a codec 5 mask, as full-size boolean arrays.

    Labels read in increasing order decode every layer once in all (see
    ``label_layers.LayerReader``); :attr:`position` says how many layers it has decoded.

    Raises
    ------
    FormatError
        When the blob is damaged, or the shape or bounding box are implausible.
    """

    def __init__(self, encoded: EncodedMask) -> None:
        from .label_layers import LayerReader  # noqa: PLC0415 - see _encode_arith

        if encoded.codec != CodecId.LABEL_LAYERS or encoded.bbox is None:
            raise ValueError("a LabelReader reads codec 5 (label-layers) masks")
        if math.prod(encoded.shape) > MAX_VOXELS or min(encoded.shape) < 0:
            raise FormatError(f"implausible mask shape {encoded.shape}")
        _check_bbox(encoded.bbox, encoded.shape)
        self.shape, self.bbox = encoded.shape, encoded.bbox
        self._layers = LayerReader(encoded.blob, limit=label_limit(_dtype(encoded.dtype)))
        self.labels: list[int] = self._layers.labels

    @property
    def position(self) -> int:
        """Layers decoded since the first."""
        return self._layers.position

    def read(self, label: int) -> NDArray[np.bool_]:
        """Where the mask equals ``label`` (all False for a label it does not hold)."""
        full = np.zeros(self.shape, dtype=np.bool_)
        if label in self.labels:
            self._layers.paint(full.view(np.uint8), self.bbox, only=label)
        return full


def layer_labels(blob: bytes) -> tuple[list[int], int]:
    """The labels of a codec 5 blob's layers, in order, and where its payload starts.

    Raises
    ------
    FormatError
        When the label table is damaged.
    """
    from .label_layers import layer_labels as parse  # noqa: PLC0415 - see _encode_arith

    return parse(blob)


def _encode_layers(crop: NDArray[Any]) -> bytes:
    from .label_layers import encode_label_layers  # noqa: PLC0415 - see _encode_arith

    return encode_label_layers(crop)


def _decode_layers(blob: bytes, target: NDArray[Any], bbox: BBox) -> None:
    """Paint a codec 5 blob into ``target`` (the full mask or the crop) at ``bbox``."""
    from .label_layers import decode_label_layers_into  # noqa: PLC0415 - see _encode_arith

    dtype = str(target.dtype)
    if dtype not in _LAYER_PAINT:
        raise FormatError(f"a label-layers blob cannot have dtype {dtype}")
    limit = label_limit(target.dtype)
    decode_label_layers_into(blob, target.view(_LAYER_PAINT[dtype]), bbox, limit=limit)


def _encode_arith(binary: NDArray[np.bool_], *, both_orders: bool) -> bytes:
    # numba takes ~0.3 s to import: only when a binary mask is coded, so that `medmask ls`
    # and other index-only work start fast.
    from .arith_runs import encode_arith_runs  # noqa: PLC0415

    return encode_arith_runs(binary, both_orders=both_orders)


def _decode_arith(blob: bytes, target: NDArray[Any], bbox: BBox, value: int = 1) -> None:
    from .arith_runs import decode_arith_runs_into  # noqa: PLC0415 - see _encode_arith

    decode_arith_runs_into(blob, target, bbox, value)


_RUNS_DECODERS: Final = {CodecId.RUNS_ZSTD: decode_runs_into, CodecId.RUNS_ARITH: _decode_arith}


def _dtype(name: str) -> np.dtype[Any]:
    if name not in SUPPORTED_DTYPES:
        raise FormatError(f"unsupported stored dtype {name!r}, expected one of {SUPPORTED_DTYPES}")
    return np.dtype(name)


def _check_bbox(bbox: BBox, shape: tuple[int, int, int]) -> None:
    for (start, stop), size in zip(bbox, shape, strict=True):
        if not 0 <= start < stop <= size:
            raise FormatError(f"bounding box {bbox} does not fit the shape {shape}")


def _decompress(blob: bytes, expected: int) -> bytes:
    """Decompress one zstd frame into exactly ``expected`` bytes (bounded: no zip bombs)."""
    try:
        raw = zstandard.ZstdDecompressor().decompress(blob, max_output_size=expected)
    except zstandard.ZstdError as err:
        raise FormatError(f"data blob does not decompress: {err}") from err
    if len(raw) != expected:
        raise FormatError(f"data blob decompresses to {len(raw)} bytes, expected {expected}")
    return raw
