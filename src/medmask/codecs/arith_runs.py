"""Codec 4, "runs-arith": row transitions, predicted in two directions, arithmetic-coded.

The rows and transitions are codec 3's (``runs.py``); what changes is how they are
coded. Each transition is predicted from the same row in the previous slice, shifted by
how the neighbouring row moved between the two slices, and the error is coded by an
adaptive binary range coder (``rangecoder.py``) in contexts chosen from how far that
neighbour and the boundary itself moved before. zstd's Huffman stage cannot spend less
than a bit on a symbol, and most of these errors are 0: the adaptive coder spends a
fraction of one, which makes archives about a third smaller. Decoding is one compiled
pass that paints each row's runs as soon as they are known.

The exact bitstream is specified in docs/mask-format.md ("Codec 4: runs-arith").
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from ..errors import FormatError
from ..model.bbox import BBox
from . import rangecoder as rc
from .rangecoder import compiled, inlined
from .runs import PERMUTATIONS, candidate_orders, row_transitions

__all__ = ["decode_arith_runs_into", "encode_arith_runs"]

HEADER_SIZE: Final = 2  # perm, reserved
N_GROUPS: Final = 49
MOVE_GROUPS: Final = 12  # groups 0..11 code the counts
NEIGHBOUR_GROUPS: Final = 44
START_GROUP: Final = 46
RUN_GROUP: Final = 47
GAP_GROUP: Final = 48
NO_MOVE: Final = 3  # context class of "no move known"

# What the row decoder finds wrong, besides the coder's own damage flags.
BAD_COUNT: Final = 1
BAD_POSITIONS: Final = 2

_DAMAGE: Final = {
    rc.DAMAGED_START: "a bad payload start",
    rc.DAMAGED_CODE: "an impossible coder state",
    rc.DAMAGED_GOLOMB: "an overlong number",
}


def encode_arith_runs(binary: NDArray[np.bool_], *, both_orders: bool = True) -> bytes:
    """Encode a binary crop; rows along the axis with the fewest transitions.

    With ``both_orders`` the two orders of the other axes are both encoded and the
    smaller blob kept.
    """
    orders = candidate_orders(binary)
    best: bytes | None = None
    for perm in orders if both_orders else orders[:1]:
        counts, positions = row_transitions(binary, perm)
        blob = bytes((perm, 0)) + encode_arith_payload(counts, positions)
        if best is None or len(blob) < len(best):
            best = blob
    assert best is not None
    return best


def encode_arith_payload(counts: NDArray[np.int64], positions: NDArray[np.int64]) -> bytes:
    slices, rows = counts.shape
    offsets = transitions_offsets(counts)
    capacity = 64 + counts.size // 4 + 2 * positions.size
    while True:  # the first guess is ample for real masks; noise may need more room
        out = np.empty(capacity, dtype=np.uint8)
        state = encode_rows(
            offsets, positions, slices, rows, out, rc.new_model(N_GROUPS), rc.new_encoder()
        )
        size = rc.finish(out, state)
        if size <= capacity:
            return out[:size].tobytes()
        capacity = 2 * size


def transitions_offsets(counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Where each row's transitions start in the positions array, plus the total."""
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts.ravel(), out=offsets[1:])
    return offsets


@compiled
def encode_rows(
    offsets: NDArray[np.int64],
    positions: NDArray[np.int64],
    slices: int,
    rows: int,
    out: NDArray[np.uint8],
    probs: NDArray[np.int64],
    state: rc.EncoderState,
) -> rc.EncoderState:
    """Code every row (slice-major), continuing ``state`` and the model ``probs``."""
    moves = np.full(positions.size, NO_MOVE, dtype=np.int64)  # move class per transition
    for s in range(slices):
        for r in range(rows):
            row = s * rows + r
            at = offsets[row]
            n = offsets[row + 1] - at
            p_at = offsets[row - rows] if s else 0
            n_p = offsets[row - rows + 1] - p_at if s else 0
            n_at = offsets[row - 1] if r else 0
            n_n = at - n_at if r else 0
            q_at = offsets[row - rows - 1] if s and r else 0
            n_q = p_at - q_at if s and r else 0
            group = _count_group(n_p, n_n, n_q)
            state = rc.encode_number(out, probs, group, True, (n - n_p) // 2, state)
            if n == 0:
                continue
            if n == n_p:
                planar = n_n == n and n_q == n
                for k in range(n):
                    m = positions[n_at + k] - positions[q_at + k] if planar else 0
                    group = _move_group(planar, m, moves[p_at + k], k)
                    error = positions[at + k] - positions[p_at + k] - m
                    state = rc.encode_number(out, probs, group, True, error, state)
                    moves[at + k] = min(abs(positions[at + k] - positions[p_at + k]), 2)
            elif n == n_n:
                for k in range(n):
                    error = positions[at + k] - positions[n_at + k]
                    group = NEIGHBOUR_GROUPS + (k & 1)
                    state = rc.encode_number(out, probs, group, True, error, state)
            else:
                state = rc.encode_number(out, probs, START_GROUP, False, positions[at], state)
                for k in range(1, n):
                    gap = positions[at + k] - positions[at + k - 1] - 1
                    group = RUN_GROUP if k & 1 else GAP_GROUP
                    state = rc.encode_number(out, probs, group, False, gap, state)
    return state


def decode_arith_runs_into(blob: bytes, target: NDArray[Any], bbox: BBox, value: int = 1) -> None:
    """Paint the runs of the crop at ``bbox`` with ``value`` into ``target``.

    ``target`` is a C-contiguous 3-D array of an unsigned integer type (the full mask,
    or a crop-sized array with a bbox starting at 0); other voxels are left as they are.

    Raises
    ------
    FormatError
        When the blob is damaged or does not fit the crop's shape.
    """
    if not target.flags.c_contiguous or target.ndim != 3:
        raise ValueError("runs target must be a C-contiguous 3-D array")
    if len(blob) < HEADER_SIZE or blob[0] >= len(PERMUTATIONS) or blob[1] != 0:
        raise FormatError("runs-arith blob has a bad header")
    if any(not 0 <= a < b <= n for (a, b), n in zip(bbox, target.shape, strict=True)):
        raise ValueError(f"bounding box {bbox} does not fit the target {target.shape}")
    perm = PERMUTATIONS[blob[0]]
    crop_shape = [bbox[axis][1] - bbox[axis][0] for axis in range(3)]
    strides = [stride // target.itemsize for stride in target.strides]
    origin = sum(box[0] * stride for box, stride in zip(bbox, strides, strict=True))
    data = np.frombuffer(blob, dtype=np.uint8, offset=HEADER_SIZE)
    state = rc.start(data)
    problem, state = decode_rows(
        data,
        state,
        crop_shape[perm[0]],
        crop_shape[perm[1]],
        crop_shape[perm[2]],
        target.reshape(-1),
        origin,
        strides[perm[0]],
        strides[perm[1]],
        strides[perm[2]],
        value,
        True,
        rc.new_model(N_GROUPS),
    )
    check_decoded("runs-arith", data.size, problem, state, last=True)


def check_decoded(
    codec: str, size: int, problem: int, state: rc.DecoderState, *, last: bool
) -> None:
    """Raise for what :func:`decode_rows` found; ``last``: the payload must end here.

    Raises
    ------
    FormatError
        When the rows or the coder found damage, or the payload ends early or late.
    """
    used, damage = state[2], state[3]
    if used > size:
        raise FormatError(f"{codec} blob ends early (truncated)")
    if damage:
        reasons = ", ".join(text for flag, text in _DAMAGE.items() if damage & flag)
        raise FormatError(f"{codec} blob is damaged: {reasons}")
    if problem == BAD_COUNT:
        raise FormatError(f"{codec} blob is damaged: a row count outside the row")
    if problem == BAD_POSITIONS:
        raise FormatError(f"{codec} blob is damaged: transitions out of order or outside the row")
    if last and used < size:
        raise FormatError(f"{codec} blob has {size - used} bytes after its last row")


@compiled
def decode_rows(  # noqa: PLR0912, PLR0915 - one loop: compiled calls cost ~20 ns each
    data: NDArray[np.uint8],
    state: rc.DecoderState,
    slices: int,
    rows: int,
    length: int,
    target: NDArray[Any],
    origin: int,
    slice_step: int,
    row_step: int,
    step: int,
    value: int,
    paint: bool,
    probs: NDArray[np.int64],
) -> tuple[int, rc.DecoderState]:
    """Decode every row, painting it when ``paint``; return (problem, coder state).

    Continues ``state`` and the model ``probs``. Stops at the first problem; a payload
    that ends early reads as zeros and is caught by the bytes used (``state[2]``).
    """
    capacity = 4 * rows + 16
    previous = np.empty(capacity, dtype=np.int64)  # slice s - 1: positions, move classes
    previous_moves = np.empty(capacity, dtype=np.int64)
    current = np.empty(capacity, dtype=np.int64)
    current_moves = np.empty(capacity, dtype=np.int64)
    previous_offsets = np.zeros(rows + 1, dtype=np.int64)
    current_offsets = np.zeros(rows + 1, dtype=np.int64)
    for s in range(slices):
        for r in range(rows):
            if state[3] or state[2] > data.size:
                return 0, state
            at = current_offsets[r]
            p_at = previous_offsets[r]
            n_p = previous_offsets[r + 1] - p_at
            n_at = current_offsets[r - 1] if r else 0
            n_n = at - n_at
            q_at = previous_offsets[r - 1] if r else 0
            n_q = p_at - q_at
            group = _count_group(n_p, n_n, n_q)
            step_count, state = rc.decode_number(data, probs, group, True, state)
            n = n_p + 2 * step_count
            if n < 0 or n > length + 1:
                return BAD_COUNT, state
            current_offsets[r + 1] = at + n
            if n == 0:
                continue
            if at + n > capacity:  # grow all four buffers alike
                capacity = 2 * (at + n)
                previous = _grown(previous, capacity)
                previous_moves = _grown(previous_moves, capacity)
                current = _grown(current, capacity)
                current_moves = _grown(current_moves, capacity)
            if n == n_p:
                planar = n_n == n and n_q == n
                for k in range(n):
                    m = current[n_at + k] - previous[q_at + k] if planar else 0
                    group = _move_group(planar, m, previous_moves[p_at + k], k)
                    error, state = rc.decode_number(data, probs, group, True, state)
                    position = previous[p_at + k] + m + error
                    current[at + k] = position
                    current_moves[at + k] = min(abs(position - previous[p_at + k]), 2)
            elif n == n_n:
                for k in range(n):
                    group = NEIGHBOUR_GROUPS + (k & 1)
                    error, state = rc.decode_number(data, probs, group, True, state)
                    current[at + k] = current[n_at + k] + error
                    current_moves[at + k] = NO_MOVE
            else:
                first, state = rc.decode_number(data, probs, START_GROUP, False, state)
                current[at] = first
                current_moves[at] = NO_MOVE
                for k in range(1, n):
                    group = RUN_GROUP if k & 1 else GAP_GROUP
                    gap, state = rc.decode_number(data, probs, group, False, state)
                    current[at + k] = current[at + k - 1] + 1 + gap
                    current_moves[at + k] = NO_MOVE
            last = -1
            for k in range(n):
                if current[at + k] <= last:
                    return BAD_POSITIONS, state
                last = current[at + k]
            if current[at] < 0 or last > length:
                return BAD_POSITIONS, state
            if not paint:
                continue
            base = origin + s * slice_step + r * row_step
            for k in range(0, n, 2):
                for i in range(current[at + k], current[at + k + 1]):
                    target[base + i * step] = value
        previous, current = current, previous
        previous_moves, current_moves = current_moves, previous_moves
        previous_offsets, current_offsets = current_offsets, previous_offsets
    return 0, state


@inlined
def _count_group(n_previous: int, n_neighbour: int, n_neighbour_previous: int) -> int:
    """Context of a row's count step: its previous count, and whether its neighbour's moved."""
    changed = n_neighbour != n_neighbour_previous
    return 4 * min(n_previous // 2, 2) + 2 * changed + (n_neighbour == n_previous)


@inlined
def _move_group(planar: bool, neighbour_move: int, previous_move: int, rank: int) -> int:
    """Context of a transition's error: how far the neighbour and the boundary itself moved."""
    a = min(abs(neighbour_move), 2) if planar else NO_MOVE
    return MOVE_GROUPS + 8 * a + 2 * previous_move + (rank & 1)


@compiled
def _grown(array: NDArray[np.int64], capacity: int) -> NDArray[np.int64]:
    bigger = np.empty(capacity, dtype=np.int64)
    bigger[: array.size] = array
    return bigger
