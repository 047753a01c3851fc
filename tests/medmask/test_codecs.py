"""Mask codecs: every codec decodes to exactly what was encoded; bad blobs raise FormatError."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from medmask import FormatError
from medmask.codecs import CodecId, EncodedMask, decode_crop, decode_mask, encode_mask
from medmask.codecs.runs import PERMUTATIONS, _encode_order, decode_runs_into, encode_runs


def ball(shape: tuple[int, int, int], center: tuple[float, ...], radius: float) -> np.ndarray:
    grid = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return sum((g - c) ** 2 for g, c in zip(grid, center, strict=True)) <= radius**2  # type: ignore[no-any-return]


binary_arrays = hnp.arrays(
    dtype=np.bool_,
    shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=14),
    elements=st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(binary_arrays, st.sampled_from(["bool", "uint8", "uint16", "uint32"]))
def test_any_binary_array_round_trips(array: np.ndarray, dtype: str) -> None:
    typed = array.astype(dtype)
    encoded = encode_mask(typed, level=1)
    decoded = decode_mask(encoded)
    assert decoded.dtype == np.dtype(dtype)
    assert np.array_equal(decoded, typed)
    crop, offset = decode_crop(encoded)
    if array.any():
        assert encoded.codec in (CodecId.RUNS_ARITH, CodecId.BITS_ZSTD)
        region = tuple(slice(o, o + n) for o, n in zip(offset, crop.shape, strict=True))
        assert np.array_equal(typed[region], crop)
    else:
        assert encoded.codec == CodecId.EMPTY
        assert encoded.blob == b""


# Codec 3 (runs-zstd) is no longer written but must stay readable.


@settings(max_examples=60, deadline=None)
@given(binary_arrays, st.integers(0, 5))
def test_runs_codec_in_every_axis_order(array: np.ndarray, perm: int) -> None:
    blob = _encode_order(array, perm, 1)
    out = np.zeros(array.shape, np.uint8)
    whole = ((0, array.shape[0]), (0, array.shape[1]), (0, array.shape[2]))
    decode_runs_into(blob, out, whole)
    assert np.array_equal(out.astype(bool), array)


@pytest.mark.parametrize("perm", range(len(PERMUTATIONS)))
def test_runs_into_a_region_of_a_larger_array(perm: int) -> None:
    shape = (30, 26, 22)
    mask = ball(shape, (14, 12, 10), 9) & ~ball(shape, (14, 12, 10), 4)  # a hollow shell
    bbox = ((5, 24), (3, 22), (1, 20))
    crop = mask[5:24, 3:22, 1:20]
    full = np.zeros(shape, np.uint16)
    decode_runs_into(_encode_order(crop, perm, 3), full, bbox, value=7)
    expected = np.zeros(shape, np.uint16)
    expected[5:24, 3:22, 1:20][crop] = 7
    assert np.array_equal(full, expected)


def test_codec_3_masks_decode_through_the_mask_api() -> None:
    shape = (30, 26, 22)
    mask = ball(shape, (14, 12, 10), 9)
    bbox = ((5, 24), (3, 22), (1, 20))
    blob = _encode_order(mask[5:24, 3:22, 1:20], 2, 3)
    encoded = EncodedMask(CodecId.RUNS_ZSTD, "uint8", shape, bbox, blob)
    assert np.array_equal(decode_mask(encoded), mask.astype(np.uint8))
    crop, offset = decode_crop(encoded)
    assert offset == (5, 3, 1)
    assert np.array_equal(crop, mask[5:24, 3:22, 1:20].astype(np.uint8))


def test_codec_choice() -> None:
    big = ball((60, 60, 60), (30, 30, 30), 20)
    assert encode_mask(big).codec == CodecId.RUNS_ARITH
    labels = big.astype(np.uint8) * 3
    assert encode_mask(labels).codec == CodecId.LABEL_LAYERS  # one label, not 1: codec 5
    assert np.array_equal(decode_mask(encode_mask(labels)), labels)
    # floats keep zstd (bit-exact), and so does a crop where zstd is smaller: noise
    assert encode_mask(labels.astype(np.float32)).codec == CodecId.RAW_ZSTD
    noise = np.random.default_rng(0).integers(0, 3, (40, 40, 40), dtype=np.uint8)
    assert encode_mask(noise).codec == CodecId.RAW_ZSTD
    assert encode_mask(noise, level=3).codec == CodecId.RAW_ZSTD
    # uint8 0/1 is stored exactly like bool: binary content is detected whatever the dtype
    assert encode_mask(big.astype(np.uint8)).blob == encode_mask(big).blob


def test_runs_beat_the_bitmap_and_codec_3_on_organ_shapes() -> None:
    organ = ball((80, 70, 60), (40, 35, 30), 25) & ~ball((80, 70, 60), (50, 35, 30), 8)
    runs = encode_mask(organ).blob
    bits = zstandard.ZstdCompressor(level=19).compress(np.packbits(organ).tobytes())
    assert len(runs) < 0.8 * len(bits)
    assert len(runs) < len(encode_runs(organ, 19))  # real masks: see test_arith_runs.py


def _frame(header: bytes, body: bytes = b"") -> bytes:
    return zstandard.ZstdCompressor().compress(header + body)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"not zstd", "does not decompress"),
        (_frame(b"\x00" * 4), "shorter than its header"),
        (_frame(struct.pack("<BBxxII4x", 9, 0, 0, 0)), "axis order 9"),
        (_frame(struct.pack("<BBxxII4x", 0, 0, 0, 0), b"\x00" * 3), "header implies"),
        (
            _frame(struct.pack("<BBxxII4x", 0, 0, 0, 0), b"\x01" + b"\x00" * 15),
            "impossible transition counts",
        ),
        (
            _frame(
                struct.pack("<BBxxII4x", 0, 0, 0, 2),
                b"\x02" + b"\x00" * 3 + b"\xfe" + b"\x00" * 11 + b"\x05\x09",
            ),
            "outside the row",
        ),
        (
            _frame(struct.pack("<BBxxII4x", 0, 0, 1, 0), b"\x02" + b"\x00" * 15 + b"\x01"),
            "do not match",
        ),
    ],
)
def test_damaged_runs_blobs(blob: bytes, message: str) -> None:
    out = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(FormatError, match=message):
        decode_runs_into(blob, out, ((0, 4), (0, 4), (0, 4)))


def test_damaged_encoded_masks() -> None:
    good = encode_mask(ball((10, 10, 10), (5, 5, 5), 3))
    with pytest.raises(FormatError, match="does not fit"):
        decode_mask(
            EncodedMask(good.codec, "uint8", (10, 10, 10), ((0, 11), (0, 5), (0, 5)), good.blob)
        )
    with pytest.raises(FormatError, match="unsupported stored dtype"):
        decode_mask(EncodedMask(good.codec, "complex64", (10, 10, 10), good.bbox, good.blob))
    with pytest.raises(FormatError, match="no data blob"):
        decode_crop(EncodedMask(CodecId.EMPTY, "uint8", (10, 10, 10), None, b"x"))
    with pytest.raises(FormatError, match="implausible"):
        decode_mask(EncodedMask(good.codec, "uint8", (2**20, 2**20, 2**20), good.bbox, good.blob))


def test_numba_loads_only_when_a_binary_mask_is_coded() -> None:
    import subprocess
    import sys

    script = (
        "import sys, numpy as np, medmask\n"
        "from medmask.codecs import encode_mask\n"
        "assert 'numba' not in sys.modules, 'import medmask loaded numba'\n"
        "m = np.zeros((40, 40, 40), bool)\n"
        "m[5:30, 5:30, 5:30] = True\n"
        "m[10:20, 10:20, 10] = False\n"
        "encode_mask(m)\n"
        "print('numba' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
