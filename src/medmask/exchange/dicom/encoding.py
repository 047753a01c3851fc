"""DICOM Explicit VR Little Endian elements as bytes, for the SEG's per-frame groups, and
decimal strings (DS) of many numbers at once, for RT Structure Set contours.

pydicom builds and writes a Dataset per frame at ~1 ms a frame (1,300 frames of s0000:
1.3 s of a 1.9 s export); these per-frame items differ only in four values, so they are
encoded here directly, ~30x faster (benchmarks/seg_export.py). The tests check that
pydicom reads these bytes back as the very Datasets ``seg_writer._frame_groups`` builds
with pydicom, which stays the reference (PS3.5 7.1.2 and 7.5 for the layout).

An RT Structure Set of s0000 holds ~300,000 coordinates; Python's float formatting spends
~55 ms on them, :func:`decimal_strings` ~20 ms. Its tests compare it with Python's
``f"{x:.10g}"`` (the reference), with Decimal arithmetic and with pydicom's DS rules.
(Reading them back stays with Python's ``float``: a numpy parser measured slower.)
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

__all__ = ["decimal_strings", "element", "item", "sequence", "text", "uid"]

_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_ITEM = struct.pack("<HH", 0xFFFE, 0xE000)


def element(tag: int, vr: str, value: bytes) -> bytes:
    """One data element; ``value`` already padded to an even length."""
    code = vr.encode("ascii")
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + code
    if code in _LONG_VRS:
        return head + struct.pack("<HI", 0, len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def item(content: bytes) -> bytes:
    """A sequence item of defined length."""
    return _ITEM + struct.pack("<I", len(content)) + content


def sequence(tag: int, items: Iterable[bytes]) -> bytes:
    """A sequence (SQ) of defined length holding already-encoded items."""
    return element(tag, "SQ", b"".join(items))


def text(value: str) -> bytes:
    """A string value padded with a space (CS, DS, IS, LO, SH ...)."""
    raw = value.encode("ascii")
    return raw + b" " if len(raw) % 2 else raw


def uid(value: str) -> bytes:
    """A UI value padded with a NUL."""
    raw = value.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


DECIMALS = 4  # decimal places of :func:`decimal_strings`: 0.1 um in mm
_DS_BYTES = 16  # the longest decimal string (PS3.5 6.2)


def decimal_strings(values: NDArray[np.floating]) -> tuple[bytes, NDArray[np.int64]]:
    r"""Numbers rounded to 4 decimals as decimal strings, each followed by a backslash.

    Parameters
    ----------
    values : numpy.ndarray
        Finite numbers, any shape (read in C order).

    Returns
    -------
    text : bytes
        ``"x1\x2\...xn\"``: each number without trailing zeros after the point
        (and without the point when nothing follows it), as ``f"{round(x, 4):.10g}"``
        writes numbers under 10^6, except that zero has no sign.
    ends : numpy.ndarray
        Where each number's backslash is in ``text``: numbers ``i`` to ``j`` are
        ``text[ends[i - 1] + 1 : ends[j]]`` (from 0 for ``i == 0``).

    Raises
    ------
    ValueError
        A value is not finite, or needs more than 16 characters (10^10 and beyond).

    Examples
    --------
    >>> decimal_strings(np.array([12.5, -0.25, 3.0, 1 / 3]))[0]
    b'12.5\\-0.25\\3\\0.3333\\'
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(flat).all():
        raise ValueError("a coordinate is not a finite number")
    if len(flat) and np.abs(flat).max() >= 10 ** (_DS_BYTES - 2 - DECIMALS):
        raise ValueError(f"a coordinate needs more than {_DS_BYTES} characters")
    scaled = np.rint(flat * 10**DECIMALS).astype(np.int64)  # as np.round(x, 4) rounds
    whole, fraction = np.divmod(np.abs(scaled), 10**DECIMALS)
    longest = len(str(int(whole.max()))) if len(flat) else 1  # digits of the whole part
    groups = -(-longest // 4)
    digits = 4 * groups  # the whole part in groups of four digits, zero-padded
    point = 1 + digits
    chars = np.empty((len(flat), point + DECIMALS + 2), dtype=np.uint8)
    chars[:, 0] = ord("-")
    rest = whole
    for group in range(groups):
        rest, part = np.divmod(rest, 10**4)
        at = point - 4 * (group + 1)
        chars[:, at : at + 4] = np.take(_FOUR_DIGITS, part, axis=0)
    chars[:, point] = ord(".")
    chars[:, point + 1 : point + 1 + DECIMALS] = np.take(_FOUR_DIGITS, fraction, axis=0)
    chars[:, -1] = ord("\\")
    # what is kept: the sign of negative numbers, the whole part from its first
    # significant digit, the point and fraction up to its last one, the backslash
    places = np.ones(len(flat), dtype=np.int64)
    for power in range(1, digits):
        places += whole >= 10**power
    keep = np.empty(chars.shape, dtype=bool)
    keep[:, 0] = scaled < 0
    keep[:, 1:point] = np.take(
        np.arange(digits) >= digits - np.arange(digits + 1)[:, None], places, axis=0
    )
    keep[:, point : point + 1 + DECIMALS] = np.take(_FRACTION_KEPT, fraction, axis=0)
    keep[:, -1] = True
    decimals = np.take(_SIGNIFICANT, fraction)
    lengths = keep[:, 0] + places + decimals + (decimals > 0) + 1
    return np.compress(keep.ravel(), chars.ravel()).tobytes(), np.cumsum(lengths) - 1


_FOUR_DIGITS = np.frombuffer(
    "".join(f"{n:04d}" for n in range(10**4)).encode("ascii"), dtype=np.uint8
).reshape(10**4, 4)
_SIGNIFICANT = np.array([len(f"{n:04d}".rstrip("0")) for n in range(10**4)], dtype=np.int64)
_FRACTION_KEPT = (
    np.arange(1 + DECIMALS)[None, :] <= np.where(_SIGNIFICANT > 0, _SIGNIFICANT, -1)[:, None]
)
