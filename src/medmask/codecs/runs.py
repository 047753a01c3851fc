"""The row-transition codec for binary masks (codec id 3, "runs-zstd"); read, no longer written.

Its rows and transitions (:func:`row_transitions`, :func:`candidate_orders`) are also
codec 4's (``arith_runs.py``), which codes them about a third smaller; its encoder
stays as the reference the tests and ``benchmarks/mask_coders.py`` compare against.

A binary crop is stored as where each voxel row switches between outside and inside,
predicted from the same row in the previous slice. Organ boundaries move little from
slice to slice, so the residuals are mostly 0 and +-1 and compress far better than the
voxels themselves; decoding is a few vectorized passes over the transitions, then the
runs are painted straight into the output array.

Blob: one zstd frame of ``header + counts + deltas + raws``:

* header, 16 bytes: ``perm`` (u8, index into :data:`PERMUTATIONS`: the crop is
  transposed so that rows run along the last axis and slices along the first), ``widths``
  (u8: bit 0 counts are int16 instead of int8, bit 1 deltas int16, bit 2 raws uint16
  instead of uint8), 2 reserved bytes, then ``n_deltas`` and ``n_raws`` (u32 each) and 4
  reserved bytes;
* ``counts``: per row (C order over the first two transposed axes) the number of
  transitions minus the previous slice's number for the same row;
* ``deltas``: for rows whose count equals the previous slice's, each transition's shift
  from the previous slice's transition of the same rank, in chain order (row, rank,
  slice) so that one boundary's successive moves are adjacent;
* ``raws``: for the other rows, the first transition's position and the gaps to the
  next, in (row, slice, rank) order.

A transition at position ``p`` (0 <= p <= row length) means voxel ``p`` differs from
voxel ``p - 1`` (outside the row counts as 0); transitions come in pairs (start, stop).
"""

from __future__ import annotations

import itertools
import struct
from typing import Any, Final

import numpy as np
import zstandard
from numpy.typing import NDArray

from ..errors import FormatError
from ..model.bbox import BBox

__all__ = [
    "PERMUTATIONS",
    "candidate_orders",
    "decode_runs_into",
    "encode_runs",
    "row_transitions",
]

PERMUTATIONS: Final = tuple(itertools.permutations(range(3)))
_HEADER: Final = struct.Struct("<BBxxII4x")
_MAX_TRANSITIONS_PER_ROW: Final = 1 << 16


def encode_runs(crop: NDArray[Any], level: int) -> bytes:
    """Encode a binary crop (any dtype, values 0/1), trying the likely-best axis orders."""
    binary = np.asarray(crop) != 0
    best: bytes | None = None
    for perm in candidate_orders(binary):
        blob = _encode_order(binary, perm, level)
        if best is None or len(blob) < len(best):
            best = blob
    assert best is not None
    return best


def candidate_orders(binary: NDArray[np.bool_]) -> list[int]:
    """Rows along the axis with the fewest transitions; both choices of slice axis."""
    transitions = [
        int(np.count_nonzero(np.diff(binary, axis=axis))) if binary.shape[axis] > 1 else 0
        for axis in range(3)
    ]
    row_axis = int(np.argmin(transitions))
    others = [a for a in range(3) if a != row_axis]
    return [PERMUTATIONS.index((a, b, row_axis)) for a, b in (others, others[::-1])]


def row_transitions(
    binary: NDArray[np.bool_], perm_index: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Transitions of the crop transposed by ``perm_index``.

    Returns the number of transitions of every row, shape (slices, rows), and all their
    positions, rows in C order and each row's in increasing order.
    """
    view = binary.transpose(PERMUTATIONS[perm_index])
    slices, rows, length = view.shape
    padded = np.zeros((slices, rows, length + 2), dtype=bool)
    padded[:, :, 1:-1] = view
    changes = padded[:, :, 1:] != padded[:, :, :-1]
    row_ids, positions = np.nonzero(changes.reshape(slices * rows, length + 1))
    counts = np.bincount(row_ids, minlength=slices * rows).reshape(slices, rows)
    return counts.astype(np.int64, copy=False), positions.astype(np.int64, copy=False)


def _encode_order(binary: NDArray[np.bool_], perm_index: int, level: int) -> bytes:
    counts, positions = row_transitions(binary, perm_index)
    slices, rows = counts.shape
    width = max(int(counts.max(initial=0)), 1)
    flat_counts = counts.ravel()
    rank = np.arange(positions.size) - np.repeat(np.cumsum(flat_counts) - flat_counts, flat_counts)
    table = np.zeros((slices, rows, width), dtype=np.int64)
    table.reshape(-1, width)[np.repeat(np.arange(flat_counts.size), flat_counts), rank] = positions
    previous_counts = np.zeros_like(counts)
    previous_counts[1:] = counts[:-1]
    previous = np.zeros_like(table)
    previous[1:] = table[:-1]
    same = counts == previous_counts
    valid = np.arange(width)[None, None, :] < counts[:, :, None]
    # Deltas in chain order (row, rank, slice): one transition's moves follow each other.
    deltas = _chain_order(table - previous)[_chain_order(valid & same[:, :, None])]
    gaps = table.copy()
    gaps[:, :, 1:] -= table[:, :, :-1]
    raws = _row_order(gaps)[_row_order(valid & ~same[:, :, None])]
    count_steps = (counts - previous_counts).ravel()
    widths = 0
    streams = []
    for bit, values, narrow, wide in (
        (0, count_steps, np.int8, np.int16),
        (1, deltas, np.int8, np.int16),
        (2, raws, np.uint8, np.uint16),
    ):
        info = np.iinfo(narrow)
        fits = values.size == 0 or (info.min <= values.min() and values.max() <= info.max)
        if not fits:
            widths |= 1 << bit
        streams.append(values.astype("<" + np.dtype(narrow if fits else wide).str[1:]).tobytes())
    header = _HEADER.pack(perm_index, widths, deltas.size, raws.size)
    return zstandard.ZstdCompressor(level=level).compress(header + b"".join(streams))


def decode_runs_into(blob: bytes, target: NDArray[Any], bbox: BBox, value: int = 1) -> None:
    """Paint the runs of the crop at ``bbox`` with ``value`` into ``target``.

    ``target`` is a C-contiguous 3-D array (the full mask, or a crop-sized array with a
    bbox starting at 0); voxels outside the runs are left as they are.

    Raises
    ------
    FormatError
        When the blob is inconsistent with the crop's shape.
    """
    if not target.flags.c_contiguous or target.ndim != 3:
        raise ValueError("runs target must be a C-contiguous 3-D array")
    crop_shape = (bbox[0][1] - bbox[0][0], bbox[1][1] - bbox[1][0], bbox[2][1] - bbox[2][0])
    perm, counts, deltas, raws = _parse(blob, crop_shape)
    begin, end = _run_bounds(counts, deltas, raws, crop_shape[perm[2]])
    if begin.size:
        _paint(target, bbox, perm, counts, begin, end, value)


Streams = tuple[tuple[int, int, int], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]


def _parse(blob: bytes, crop_shape: tuple[int, int, int]) -> Streams:
    """Axis order, per-row transition counts, deltas and raws of a blob."""
    try:
        raw = zstandard.ZstdDecompressor().decompress(
            blob, max_output_size=_max_stream_bytes(crop_shape)
        )
    except zstandard.ZstdError as err:
        raise FormatError(f"runs blob does not decompress: {err}") from err
    if len(raw) < _HEADER.size:
        raise FormatError("runs blob is shorter than its header")
    perm_index, widths, n_deltas, n_raws = _HEADER.unpack_from(raw)
    if perm_index >= len(PERMUTATIONS):
        raise FormatError(f"runs blob names axis order {perm_index}, expected 0..5")
    perm = PERMUTATIONS[perm_index]
    slices, rows, length = (crop_shape[axis] for axis in perm)
    dtypes = [
        np.dtype(w if widths >> bit & 1 else n)
        for bit, n, w in ((0, "i1", "<i2"), (1, "i1", "<i2"), (2, "u1", "<u2"))
    ]
    sizes = [slices * rows, n_deltas, n_raws]
    expected = _HEADER.size + sum(n * d.itemsize for n, d in zip(sizes, dtypes, strict=True))
    if expected != len(raw):
        raise FormatError(f"runs blob holds {len(raw)} bytes, its header implies {expected}")
    streams, at = [], _HEADER.size
    for count, dtype in zip(sizes, dtypes, strict=True):
        streams.append(np.frombuffer(raw, dtype=dtype, count=count, offset=at).astype(np.int64))
        at += count * dtype.itemsize
    count_steps, deltas, raws = streams
    counts = np.cumsum(count_steps.reshape(slices, rows), axis=0)
    limit = min(length + 1, _MAX_TRANSITIONS_PER_ROW)
    if counts.size and (counts.min() < 0 or counts.max() > limit or np.any(counts % 2)):
        raise FormatError("runs blob has impossible transition counts")
    return perm, counts, deltas, raws


def _run_bounds(
    counts: NDArray[np.int64], deltas: NDArray[np.int64], raws: NDArray[np.int64], length: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Start and stop of every run, rows in C order, runs in row order."""
    slices, rows = counts.shape
    width = max(int(counts.max(initial=0)), 1)
    previous_counts = np.zeros_like(counts)
    previous_counts[1:] = counts[:-1]
    same = counts == previous_counts
    valid = np.arange(width)[None, None, :] < counts[:, :, None]
    same_slots, changed_slots = valid & same[:, :, None], valid & ~same[:, :, None]
    if int(same_slots.sum()) != deltas.size or int(changed_slots.sum()) != raws.size:
        raise FormatError("runs blob's residual counts do not match its transition counts")
    values = np.zeros((slices, rows, width), dtype=np.int32)
    if raws.size:  # changed rows: positions from the gaps, a running sum within each row
        gaps = np.zeros_like(values)
        _row_order(gaps)[_row_order(changed_slots)] = raws
        values[changed_slots] = np.cumsum(gaps, axis=2, dtype=np.int32)[changed_slots]
    _chain_order(values)[_chain_order(same_slots)] = deltas
    # Segmented running sum along the slices: a changed row restarts its chain.
    totals = np.cumsum(values, axis=0, dtype=np.int32)
    starts = np.maximum.accumulate(np.where(same, -1, np.arange(slices)[:, None]), axis=0)
    restarted = starts > 0
    if restarted.any():
        rows_index = np.broadcast_to(np.arange(rows), starts.shape)
        before = totals[np.maximum(starts - 1, 0), rows_index]
        before[~restarted] = 0
        totals -= before
    positions = totals[valid].astype(np.int64)
    begin, end = positions[0::2], positions[1::2]
    if begin.size and (begin.min() < 0 or end.max() > length or np.any(end <= begin)):
        raise FormatError("runs blob decodes to runs outside the row")
    return begin, end


def _chain_order(array: NDArray[Any]) -> NDArray[Any]:
    """(slice, row, rank) -> (row, rank, slice): a transition's successive moves adjacent."""
    return array.transpose(1, 2, 0)


def _row_order(array: NDArray[Any]) -> NDArray[Any]:
    """(slice, row, rank) -> (row, slice, rank)."""
    return array.transpose(1, 0, 2)


def _paint(
    target: NDArray[Any],
    bbox: BBox,
    perm: tuple[int, int, int],
    counts: NDArray[np.int64],
    begin: NDArray[np.int64],
    end: NDArray[np.int64],
    value: int,
) -> None:
    """Set every run's voxels through one flat index array (crop axes -> target strides)."""
    slices, rows = counts.shape
    index: type[np.signedinteger[Any]] = np.int32 if target.size < 2**31 else np.int64
    strides = [stride // target.itemsize for stride in target.strides]
    origin = sum(box[0] * stride for box, stride in zip(bbox, strides, strict=True))
    s0, s1, s2 = (strides[axis] for axis in perm)
    row_base: NDArray[np.signedinteger[Any]] = (
        np.arange(slices, dtype=index)[:, None] * s0 + np.arange(rows, dtype=index)[None, :] * s1
    )
    first = np.repeat(row_base.ravel(), counts.ravel() // 2) + (begin * s2 + origin).astype(index)
    lengths: NDArray[np.signedinteger[Any]] = (end - begin).astype(index)
    done = np.cumsum(lengths, dtype=index) - lengths  # voxels painted before each run
    flat = np.repeat(first - done * s2, lengths) + np.arange(int(lengths.sum()), dtype=index) * s2
    target.reshape(-1)[flat] = value


def _max_stream_bytes(crop_shape: tuple[int, int, int]) -> int:
    voxels = crop_shape[0] * crop_shape[1] * (crop_shape[2] + 1)
    return _HEADER.size + 2 * crop_shape[0] * crop_shape[1] + 4 * voxels
