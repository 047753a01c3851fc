"""Codec 5, "label-layers": a label map as one codec-4 layer per label, one coder for all.

A label map's organs barely share boundaries (on TotalSegmentator's s0000 about 4 % of
the label changes along a row are between two organs rather than organ and background),
so coding each label's voxels as a binary layer costs little more than coding the map's
boundaries once, and lets every layer pick the axis order and box that suit its organ,
as codec 4 does for a mask stored alone. What is gained over storing the masks one by
one is the model: one arithmetic coder runs through all layers, so what it learnt on the
first organs about how boundaries move keeps paying on the next (measured before it was
built: 14.1 KB for s0000's 20 labels against 15.3 KB with a model per layer, and 15.1 KB
for one shared axis order with boundaries snapped to the neighbouring organ's).

One label can be read without painting the others: the layers before it must still be
decoded, since they train the model, but that is the cheap part of decoding.

The exact bitstream is specified in docs/mask-format.md ("Codec 5: label-layers").
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from ..errors import FormatError
from ..model.bbox import BBox, label_extents
from . import rangecoder as rc
from .arith_runs import (
    N_GROUPS as ROW_GROUPS,
)
from .arith_runs import (
    check_decoded,
    decode_rows,
    encode_arith_payload,
    encode_rows,
    transitions_offsets,
)
from .runs import PERMUTATIONS, row_transitions

__all__ = ["LayerReader", "decode_label_layers_into", "encode_label_layers", "layer_labels"]

N_GROUPS: Final = 56
PERM_GROUP: Final = ROW_GROUPS  # 49
START_GROUP: Final = ROW_GROUPS + 1  # 50..52, one per crop axis
SIZE_GROUP: Final = ROW_GROUPS + 4  # 53..55
MAX_LABEL: Final = 2**32 - 1
MAX_VARINT_BYTES: Final = 5
CODEC: Final = "label-layers"

Layer = tuple[int, BBox, NDArray[np.int64], NDArray[np.int64], tuple[int, int]]


def encode_label_layers(
    crop: NDArray[Any], extents: dict[int, tuple[int, BBox]] | None = None
) -> bytes:
    """Encode an integer crop with at least one non-zero voxel.

    ``extents`` (``label_extents(crop)``, when the caller has it) saves a pass.
    """
    if extents is None:
        extents = label_extents(crop)
    if not extents:
        raise ValueError("a label-layers blob needs at least one non-zero voxel")
    labels = sorted(extents)
    if labels[0] < 1 or labels[-1] > MAX_LABEL:
        raise ValueError(f"labels must lie in 1 .. {MAX_LABEL}, got {labels[0]} .. {labels[-1]}")
    layers = [_best_layer(crop, label, extents[label][1]) for label in labels]
    capacity = 64 + sum(
        16 + counts.size // 4 + 2 * positions.size for _, _, counts, positions, _ in layers
    )
    while True:  # ample for real masks; noise may need more room
        out = np.empty(capacity, dtype=np.uint8)
        probs = rc.new_model(N_GROUPS)
        state = rc.new_encoder()
        for perm, box, counts, positions, (slices, rows) in layers:
            state = rc.encode_number(out, probs, PERM_GROUP, False, perm, state)
            for axis, (start, stop) in enumerate(box):
                state = rc.encode_number(out, probs, START_GROUP + axis, False, start, state)
                state = rc.encode_number(
                    out, probs, SIZE_GROUP + axis, False, stop - start - 1, state
                )
            offsets = transitions_offsets(counts)
            state = encode_rows(offsets, positions, slices, rows, out, probs, state)
        size = rc.finish(out, state)
        if size <= capacity:
            break
        capacity = 2 * size
    table = _varint(len(labels)) + b"".join(_varint(label) for label in labels)
    return table + out[:size].tobytes()


def _best_layer(crop: NDArray[Any], label: int, box: BBox) -> Layer:
    """The label's voxels in their box, in the axis order whose codec 4 payload is smallest."""
    binary = crop[tuple(slice(a, b) for a, b in box)] == label
    best: Layer | None = None
    best_size = 0
    for perm in range(len(PERMUTATIONS)):
        counts, positions = row_transitions(binary, perm)
        size = len(encode_arith_payload(counts, positions))  # on its own, from a fresh model
        if best is None or size < best_size:
            slices, rows = counts.shape
            best, best_size = (perm, box, counts, positions, (slices, rows)), size
    assert best is not None
    return best


def layer_labels(blob: bytes) -> tuple[list[int], int]:
    """The labels of a blob's layers and where its payload starts.

    Raises
    ------
    FormatError
        When the label table is damaged.
    """
    at = 0
    count, at = _read_varint(blob, at)
    if count < 1:
        raise FormatError(f"{CODEC} blob has no layers")
    if count > len(blob):  # each label takes a byte at least
        raise FormatError(f"{CODEC} blob is damaged: {count} labels in {len(blob)} bytes")
    labels: list[int] = []
    for _ in range(count):
        label, at = _read_varint(blob, at)
        if label < 1 or (labels and label <= labels[-1]):
            raise FormatError(f"{CODEC} blob is damaged: labels not increasing from 1")
        labels.append(label)
    return labels, at


def decode_label_layers_into(
    blob: bytes, target: NDArray[Any], bbox: BBox, *, limit: int, only: int | None = None
) -> None:
    """Paint each layer's label into ``target`` at the crop ``bbox``; or 1 where ``only`` is.

    ``target`` is a C-contiguous 3-D array of an unsigned integer type (the full mask,
    or a crop-sized array with a bbox starting at 0); ``limit`` is the highest label the
    stored dtype holds. Other voxels are left as they are.

    Raises
    ------
    FormatError
        When the blob is damaged or does not fit the crop's shape.
    """
    LayerReader(blob, limit=limit).paint(target, bbox, only=only)


class LayerReader:
    """Decodes a blob layer by layer and remembers where it stopped.

    Reading labels in increasing order (a loop over a label map's names) then decodes
    every layer once in all; a label before the last one read starts again from the
    first layer, as the shared model requires.

    Raises
    ------
    FormatError
        When the label table is damaged or holds a label above ``limit``.
    """

    def __init__(self, blob: bytes, *, limit: int) -> None:
        self.labels, payload = layer_labels(blob)
        if self.labels[-1] > limit:
            raise FormatError(
                f"{CODEC} blob is damaged: label {self.labels[-1]} does not fit its dtype"
            )
        self._data = np.frombuffer(blob, dtype=np.uint8, offset=payload)
        self._rewind()

    @property
    def position(self) -> int:
        """How many layers have been decoded since the first."""
        return self._next

    def _rewind(self) -> None:
        self._next = 0
        self._probs = rc.new_model(N_GROUPS)
        self._state = rc.start(self._data)

    def paint(self, target: NDArray[Any], bbox: BBox, *, only: int | None = None) -> None:
        """Paint every layer's label at ``bbox`` (see :func:`decode_label_layers_into`).

        With ``only``, paint 1 where that label is, and stop after its layer.
        """
        if not target.flags.c_contiguous or target.ndim != 3:
            raise ValueError("label-layers target must be a C-contiguous 3-D array")
        if any(not 0 <= a < b <= n for (a, b), n in zip(bbox, target.shape, strict=True)):
            raise ValueError(f"bounding box {bbox} does not fit the target {target.shape}")
        wanted = self.labels.index(only) if only in self.labels else len(self.labels)
        if only is None or wanted < self._next:
            self._rewind()
        try:
            self._paint_from(target, bbox, only, wanted)
        except FormatError:
            self._rewind()
            raise

    def _paint_from(self, target: NDArray[Any], bbox: BBox, only: int | None, wanted: int) -> None:
        data, probs, state = self._data, self._probs, self._state
        crop_shape = [stop - start for start, stop in bbox]
        strides = [stride // target.itemsize for stride in target.strides]
        flat = target.reshape(-1)
        while self._next < len(self.labels):
            label = self.labels[self._next]
            perm, state = rc.decode_number(data, probs, PERM_GROUP, False, state)
            box = []
            for axis in range(3):
                start, state = rc.decode_number(data, probs, START_GROUP + axis, False, state)
                size, state = rc.decode_number(data, probs, SIZE_GROUP + axis, False, state)
                box.append((start, start + size + 1))
            check_decoded(CODEC, data.size, 0, state, last=False)
            if perm >= len(PERMUTATIONS):
                raise FormatError(f"{CODEC} blob is damaged: axis order {perm} of label {label}")
            if any(stop > n for (_, stop), n in zip(box, crop_shape, strict=True)):
                raise FormatError(
                    f"{CODEC} blob is damaged: the box {box} of label {label} leaves the crop"
                )
            order = PERMUTATIONS[perm]
            sizes = [box[axis][1] - box[axis][0] for axis in order]
            origin = sum((bbox[a][0] + box[a][0]) * strides[a] for a in range(3))
            problem, state = decode_rows(
                data,
                state,
                sizes[0],
                sizes[1],
                sizes[2],
                flat,
                origin,
                strides[order[0]],
                strides[order[1]],
                strides[order[2]],
                label if only is None else 1,
                only is None or self._next == wanted,
                probs,
            )
            check_decoded(CODEC, data.size, problem, state, last=False)
            self._next += 1
            self._state = state
            if self._next == wanted + 1 and only is not None:
                return
        check_decoded(CODEC, data.size, 0, state, last=True)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(blob: bytes, at: int) -> tuple[int, int]:
    value = 0
    for i in range(MAX_VARINT_BYTES):
        if at + i >= len(blob):
            raise FormatError(f"{CODEC} blob ends inside its label table (truncated)")
        byte = blob[at + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i:
                raise FormatError(f"{CODEC} blob is damaged: a varint with a needless zero byte")
            return value, at + i + 1
    raise FormatError(f"{CODEC} blob is damaged: a varint longer than {MAX_VARINT_BYTES} bytes")
