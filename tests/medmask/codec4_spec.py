"""Codec 4's range decoder, number forms and rows, written from docs/mask-format.md alone.

Plain Python, one bit at a time, independent of the compiled decoder: the tests of
codec 4 (test_arith_runs.py) and of codec 5, which codes its layers with the same rows
(test_label_layers.py), decode the encoders' blobs with it too, which checks the
specification as much as the code.
"""

from __future__ import annotations

import itertools

import numpy as np

from medmask.codecs.runs import PERMUTATIONS


class SpecDecoder:
    """The range decoder and number forms of the specification, one bit at a time."""

    def __init__(self, payload: bytes, groups: int = 49) -> None:
        assert payload[0] == 0
        self.data, self.pos = payload, 5
        self.code, self.range = int.from_bytes(payload[1:5], "big"), 0xFFFFFFFF
        assert self.code < 0xFFFFFFFF
        self.probs = [2048] * (groups * 16)

    def _normalize(self) -> None:
        while self.range < 2**24:
            self.range <<= 8
            self.code = (self.code << 8) | self.data[self.pos]  # IndexError: truncated
            self.pos += 1

    def bit(self, index: int) -> int:
        p = self.probs[index]
        bound = (self.range >> 12) * p
        if self.code < bound:
            self.range, self.probs[index], bit = bound, p + ((4096 - p) >> 4), 0
        else:
            self.code -= bound
            self.range -= bound
            self.probs[index], bit = p - (p >> 4), 1
        self._normalize()
        return bit

    def direct(self) -> int:
        self.range >>= 1
        bit = int(self.code >= self.range)
        self.code -= self.range * bit
        self._normalize()
        return bit

    def golomb(self, g: int) -> int:
        k = 0
        while self.bit(16 * g + 6 + min(k, 9)):
            k += 1
        tail = 0
        for _ in range(k):
            tail = (tail << 1) | self.direct()
        return 2**k - 1 + tail

    def unsigned(self, g: int) -> int:
        for i in range(4):
            if not self.bit(16 * g + 2 + i):
                return i
        return 4 + self.golomb(g)

    def signed(self, g: int) -> int:
        if not self.bit(16 * g):
            return 0
        negative = self.bit(16 * g + 1)
        magnitude = 1 + self.unsigned(g)
        return -magnitude if negative else magnitude


def spec_decode(blob: bytes, crop_shape: tuple[int, int, int]) -> np.ndarray:
    """A binary crop from a codec-4 blob, following the specification's steps."""
    perm = PERMUTATIONS[blob[0]]
    assert blob[1] == 0
    coder = SpecDecoder(blob[2:])
    out = spec_rows(coder, crop_shape, perm)
    assert coder.pos == len(coder.data), "the payload must be read to its end"
    return out


def spec_rows(coder: SpecDecoder, crop_shape: tuple[int, ...], perm: tuple[int, ...]) -> np.ndarray:
    """Steps 1-4 ("Rows") for a binary crop transposed by ``perm``."""
    slices, rows, length = (crop_shape[a] for a in perm)
    out = np.zeros((slices, rows, length), bool)
    before: list[list[int]] = [[] for _ in range(rows)]  # slice s - 1
    before_moves: list[list[int | None]] = [[] for _ in range(rows)]
    for s in range(slices):
        now: list[list[int]] = []
        now_moves: list[list[int | None]] = []
        for r in range(rows):
            p = before[r]
            n_row = now[r - 1] if r else []
            q = before[r - 1] if r else []
            g = 4 * min(len(p) // 2, 2) + 2 * (len(n_row) != len(q)) + (len(n_row) == len(p))
            n = len(p) + 2 * coder.signed(g)
            assert 0 <= n <= length + 1
            c: list[int] = []
            moves: list[int | None] = [None] * n
            if n and n == len(p):
                planar = len(n_row) == len(q) == n
                for k in range(n):
                    m = n_row[k] - q[k] if planar else 0
                    a = min(abs(m), 2) if planar else 3
                    v = before_moves[r][k]
                    b = min(abs(v), 2) if v is not None else 3
                    c.append(p[k] + m + coder.signed(12 + 8 * a + 2 * b + k % 2))
                    moves[k] = c[k] - p[k]
            elif n and n == len(n_row):
                c = [n_row[k] + coder.signed(44 + k % 2) for k in range(n)]
            elif n:
                c = [coder.golomb(46)]
                for k in range(1, n):
                    c.append(c[-1] + 1 + coder.golomb(47 if k % 2 else 48))
            assert all(a < b for a, b in itertools.pairwise(c))
            assert not c or (c[0] >= 0 and c[-1] <= length)
            for start, stop in zip(c[0::2], c[1::2], strict=True):
                out[s, r, start:stop] = True
            now.append(c)
            now_moves.append(moves)
        before, before_moves = now, now_moves
    return out.transpose(np.argsort(perm))


def ball(shape: tuple[int, int, int], center: tuple[float, ...], radius: float) -> np.ndarray:
    grid = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return sum((g - c) ** 2 for g, c in zip(grid, center, strict=True)) <= radius**2  # type: ignore[no-any-return]
