"""LZMA's binary range coder with adaptive probabilities, compiled by numba.

The number coding of codec 4 (docs/mask-format.md, "Range coder" and "Numbers"):
modelled bits with 12-bit probabilities adapting by a shift of 4, direct bits, and the
two number forms built on them (signed, Exp-Golomb). They run inside other compiled
functions (``arith_runs.py``); a per-bit Python call would cost a hundred times more.

Speed notes, measured: a call between compiled functions costs ~20 ns here, a coded
bit ~5 ns, so the unit of work is a whole number: :func:`encode_number` and
:func:`decode_number` each code every bit of one number in one loop, with the coder's
registers as local variables, passed between calls as a tuple. Every value stays below
2**40, so int64 arithmetic matches the format's 32-bit registers exactly, compiled or
run as plain Python (the tests run both). Running out of room or of input never reads
or writes past an array's end: it shows in the position, which callers check once.

numba caches compiled code per function, keyed on that function's own file: after
editing this module, ``make clean`` (or delete ``__pycache__`` here), or the callers in
``arith_runs.py`` keep running the old version of it.

Where numba finds no place to cache - medmask installed where the user cannot write (a
container's system Python, a shared environment) and a home folder that is not writable
(``docker run --user``, a service's user) - numba refuses to compile at all ("cannot cache
function ... no locator available"). Then the cache is a folder of the user's own in the
temporary folder (``medmask-numba-<uid>``, mode 700, used only when it is the user's and
nobody else can write it: numba's cache files are pickles it loads); failing that, the code
is compiled without a cache (~3 s a process). ``NUMBA_CACHE_DIR`` chooses the place, as
numba documents.
"""

from __future__ import annotations

import functools
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "GROUP_SIZE",
    "compiled",
    "decode_number",
    "encode_number",
    "finish",
    "inlined",
    "new_encoder",
    "new_model",
    "start",
]

F = TypeVar("F", bound=Callable[..., Any])

PROB_BITS: Final = 12
PROB_ONE: Final = 1 << PROB_BITS
ADAPT_SHIFT: Final = 4
TOP: Final = 1 << 24
MASK32: Final = 0xFFFFFFFF
GROUP_SIZE: Final = 16  # probabilities per group: zero, sign, 4 unary, 10 Exp-Golomb
MAX_GOLOMB_BITS: Final = 32

# Where a number's next modelled bit is; Exp-Golomb prefix bits are GOLOMB + min(j, 9).
ZERO, SIGN, UNARY, GOLOMB = 0, 1, 2, 6
DIRECT = -1  # the Exp-Golomb suffix: direct bits
DONE = -2

# Decoder damage flags.
DAMAGED_START: Final = 1  # bad first bytes
DAMAGED_CODE: Final = 2  # the coder's state became impossible
DAMAGED_GOLOMB: Final = 4  # an Exp-Golomb prefix longer than 32

EncoderState = tuple[int, int, int, int, int]  # low, range, cache, cache_size, position
DecoderState = tuple[int, int, int, int]  # range, code, position, damage flags


def compiled(fn: F) -> F:
    """Compile ``fn`` with numba (cached on disk, releasing the GIL); the type stays."""
    return cast(F, _njit(fn))


def inlined(fn: F) -> F:
    """Like :func:`compiled`, but copied into each caller: for small per-row formulas."""
    return cast(F, _njit(fn, inline="always"))


def _njit(fn: Callable[..., Any], **options: Any) -> Any:
    """``fn`` compiled, cached where numba can cache it (the module docstring)."""
    found = _cached(fn, options)
    if found is None and _private_cache() is not None:
        found = _cached(fn, options)
    return found if found is not None else numba.njit(nogil=True, **options)(fn)


def _cached(fn: Callable[..., Any], options: dict[str, Any]) -> Any:
    """``fn`` compiled with numba's cache, or None where numba has no place for it."""
    try:
        return numba.njit(cache=True, nogil=True, **options)(fn)
    except RuntimeError as err:
        if not str(err).startswith("cannot cache function"):
            raise
        return None


@functools.cache
def _private_cache() -> Path | None:
    """numba's cache folder made the user's own folder in the temporary folder; None (and
    numba's setting unchanged) when there is none or it is not safely the user's."""
    uid = os.getuid() if hasattr(os, "getuid") else None  # (Windows' temp is the user's)
    folder = Path(tempfile.gettempdir()) / f"medmask-numba-{uid if uid is not None else 'user'}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        found = folder.lstat()
    except OSError:
        return None
    mine = uid is None or found.st_uid == uid
    if not (stat.S_ISDIR(found.st_mode) and mine and not found.st_mode & 0o022):
        return None  # (another user's, or writable by others: its pickles not trusted)
    numba.config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]  # (set at import)
    return folder


def new_model(groups: int) -> NDArray[np.int64]:
    """Probabilities of ``groups`` number groups, every one at 1/2."""
    return np.full(groups * GROUP_SIZE, PROB_ONE // 2, dtype=np.int64)


# --- encoder -----------------------------------------------------------------------------


@compiled
def new_encoder() -> EncoderState:
    """LZMA's starting state: a pending cache byte 0, so the payload starts with 0."""
    return (0, MASK32, 0, 1, 0)


@compiled
def shift_low(out: NDArray[np.uint8], state: EncoderState) -> EncoderState:
    """Move the top byte of ``low`` out, resolving a pending carry (LZMA's ShiftLow)."""
    low, rng, cache, cache_size, pos = state
    if low < 0xFF000000 or low > MASK32:
        carry = low >> 32
        byte = cache
        while True:
            if pos < out.size:
                out[pos] = (byte + carry) & 0xFF
            pos += 1
            byte = 0xFF
            cache_size -= 1
            if cache_size == 0:
                break
        cache = (low >> 24) & 0xFF
    return ((low & 0x00FFFFFF) << 8, rng, cache, cache_size + 1, pos)


@compiled
def encode_bit(
    out: NDArray[np.uint8], probs: NDArray[np.int64], at: int, bit: bool, state: EncoderState
) -> EncoderState:
    """One modelled bit with ``probs[at]``, which adapts."""
    low, rng, cache, cache_size, pos = state
    p = probs[at]
    bound = (rng >> PROB_BITS) * p
    if bit:
        low += bound
        rng -= bound
        probs[at] = p - (p >> ADAPT_SHIFT)
    else:
        rng = bound
        probs[at] = p + ((PROB_ONE - p) >> ADAPT_SHIFT)
    state = (low, rng, cache, cache_size, pos)
    while state[1] < TOP:
        state = shift_low(out, (state[0], state[1] << 8, state[2], state[3], state[4]))
    return state


@compiled
def encode_direct(out: NDArray[np.uint8], bit: int, state: EncoderState) -> EncoderState:
    """One bit at probability 1/2, without a model."""
    low, rng, cache, cache_size, pos = state
    rng >>= 1
    if bit:
        low += rng
    state = (low, rng, cache, cache_size, pos)
    while state[1] < TOP:
        state = shift_low(out, (state[0], state[1] << 8, state[2], state[3], state[4]))
    return state


@compiled
def encode_number(
    out: NDArray[np.uint8],
    probs: NDArray[np.int64],
    group: int,
    signed: bool,
    value: int,
    state: EncoderState,
) -> EncoderState:
    """Code ``value``: signed (zero flag, sign, unary, Exp-Golomb) or Exp-Golomb only.

    The encoder makes a call per bit; only the decoder's speed mattered enough to inline.
    """
    base = group * GROUP_SIZE
    golomb = value
    if signed:
        state = encode_bit(out, probs, base + ZERO, value != 0, state)
        if value == 0:
            return state
        state = encode_bit(out, probs, base + SIGN, value < 0, state)
        rest = abs(value) - 1
        for i in range(4):
            state = encode_bit(out, probs, base + UNARY + i, rest > i, state)
            if rest <= i:
                return state
        golomb = rest - 4
    golomb += 1  # Exp-Golomb: k prefix 1s, a 0, then the k low bits of golomb + 1
    k = 0
    while (golomb >> (k + 1)) != 0:
        k += 1
    for j in range(k + 1):
        state = encode_bit(out, probs, base + GOLOMB + min(j, 9), j < k, state)
    for j in range(k - 1, -1, -1):
        state = encode_direct(out, (golomb >> j) & 1, state)
    return state


@compiled
def finish(out: NDArray[np.uint8], state: EncoderState) -> int:
    """Flush the payload; return its length (more than ``out.size``: it did not fit)."""
    for _ in range(5):
        state = shift_low(out, state)
    return state[4]


# --- decoder -----------------------------------------------------------------------------


@compiled
def start(data: NDArray[np.uint8]) -> DecoderState:
    """Read the five starting bytes: a 0, then ``code`` (big-endian, below 0xFFFFFFFF)."""
    damage = 0
    if data.size < 5 or data[0] != 0:
        damage = DAMAGED_START
    code = 0
    for i in range(1, 5):
        code = (code << 8) | (int(data[i]) if i < data.size else 0)
    if code >= MASK32:
        damage = DAMAGED_START
        code = 0
    return (MASK32, code, 5, damage)


@compiled
def decode_number(  # noqa: PLR0912, PLR0915 - one loop: compiled calls cost ~20 ns each
    data: NDArray[np.uint8], probs: NDArray[np.int64], group: int, signed: bool, state: DecoderState
) -> tuple[int, DecoderState]:
    """Inverse of :func:`encode_number`; bytes past the end read as 0.

    One loop codes every bit of the number, one bit per turn, so that the coder's
    registers stay local (see the module's speed notes).
    """
    rng, code, pos, damage = state
    base = group * GROUP_SIZE
    phase = ZERO if signed else GOLOMB
    nonzero = True
    negative = False
    unary = 0  # 1s of the unary part
    k = 0  # 1s of the Exp-Golomb prefix
    left = 0  # suffix bits still to read
    tail = 0
    while phase != DONE:
        if phase == DIRECT:
            rng >>= 1
            tail <<= 1
            if code >= rng:
                code -= rng
                tail |= 1
                if code >= rng:  # only a damaged payload gets here
                    damage |= DAMAGED_CODE
                    code = 0
            left -= 1
            if left == 0:
                phase = DONE
        else:
            at = base + phase if phase < GOLOMB else base + GOLOMB + min(k, 9)
            p = probs[at]
            bound = (rng >> PROB_BITS) * p
            bit = code >= bound
            if bit:
                code -= bound
                rng -= bound
                probs[at] = p - (p >> ADAPT_SHIFT)
            else:
                rng = bound
                probs[at] = p + ((PROB_ONE - p) >> ADAPT_SHIFT)
            if phase == ZERO:
                nonzero = bit
                phase = SIGN if bit else DONE
            elif phase == SIGN:
                negative = bit
                phase = UNARY
            elif phase < GOLOMB:  # after four 1s, phase reaches GOLOMB
                unary += bit
                phase = phase + 1 if bit else DONE
            elif bit:
                k += 1
                if k > MAX_GOLOMB_BITS:
                    damage |= DAMAGED_GOLOMB
                    phase, k = DONE, 0
            else:
                phase, left = (DIRECT, k) if k else (DONE, 0)
        while rng < TOP:  # twice after a bit of probability below 1/256
            rng <<= 8
            code = (code << 8) | (int(data[pos]) if pos < data.size else 0)
            pos += 1
    golomb = (1 << k) - 1 + tail
    if not signed:
        value = golomb
    elif not nonzero:
        value = 0
    else:
        magnitude = 1 + unary + (golomb if unary == 4 else 0)
        value = -magnitude if negative else magnitude
    return value, (rng, code, pos, damage)
