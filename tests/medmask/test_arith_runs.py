"""Codec 4 (runs-arith): agrees with its specification, round-trips, and survives damage.

``spec_decode`` (codec4_spec.py) is written from docs/mask-format.md alone, in plain
Python and independently of the compiled decoder: the encoder's blobs must decode to the
mask with it too, which checks the specification as much as the code.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from codec4_spec import ball, spec_decode
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from medmask import FormatError
from medmask.codecs.arith_runs import decode_arith_runs_into, encode_arith_runs
from medmask.codecs.runs import encode_runs

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "totalseg_s0000"


def organ(seed: int) -> np.ndarray:
    """A lumpy organ-like shape with a hole and a detached piece: every row kind occurs."""
    rng = np.random.default_rng(seed)
    shape = (24, 28, 20)
    mask = ball(shape, (12, 14, 10), 8)
    for _ in range(4):
        mask |= ball(shape, tuple(rng.uniform(6, 16, 3)), rng.uniform(2, 5))
    mask &= ~ball(shape, (12, 14, 10), 3)
    mask |= ball(shape, (3, 3, 3), 2)
    return mask


binary_arrays = hnp.arrays(
    dtype=np.bool_,
    shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=12),
    elements=st.booleans(),
)


def decode(blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    decode_arith_runs_into(blob, out, ((0, shape[0]), (0, shape[1]), (0, shape[2])))
    return out.astype(bool)


@settings(max_examples=150, deadline=None)
@given(binary_arrays)
def test_noise_round_trips_and_matches_the_specification(array: np.ndarray) -> None:
    blob = encode_arith_runs(array)
    assert np.array_equal(decode(blob, array.shape), array)
    assert np.array_equal(spec_decode(blob, array.shape), array)


@pytest.mark.parametrize("seed", range(4))
def test_organ_shapes_match_the_specification(seed: int) -> None:
    mask = organ(seed)
    for both in (True, False):
        blob = encode_arith_runs(mask, both_orders=both)
        assert np.array_equal(spec_decode(blob, mask.shape), mask)
        assert np.array_equal(decode(blob, mask.shape), mask)


def test_big_transition_counts_grow_the_row_buffers() -> None:
    stripes = np.zeros((3, 40, 61), bool)
    stripes[:, :, ::2] = True  # 62 transitions in each of 120 rows
    stripes[1, ::3, 1::2] = True  # rows that change count from slice to slice
    assert np.array_equal(decode(encode_arith_runs(stripes), stripes.shape), stripes)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32"])
def test_decoding_into_a_region_touches_only_the_runs(dtype: str) -> None:
    mask = organ(7)
    shape = (30, 33, 29)
    bbox = ((2, 26), (4, 32), (5, 25))
    full = np.full(shape, 3, dtype)  # voxels outside the runs must keep their value
    decode_arith_runs_into(encode_arith_runs(mask), full, bbox, value=9)
    expected = np.full(shape, 3, dtype)
    expected[2:26, 4:32, 5:25][mask] = 9
    assert np.array_equal(full, expected)


def test_the_compiled_coder_matches_plain_python() -> None:
    """The same blobs with numba switched off: int64 registers never overflow."""
    script = (
        "import numpy as np, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_arith_runs import organ\n"
        "from medmask.codecs.arith_runs import encode_arith_runs\n"
        "print(','.join(encode_arith_runs(organ(s)).hex() for s in range(2)))\n"
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    folder = str(Path(__file__).parent)
    result = subprocess.run(
        [sys.executable, "-c", script, folder], env=env, capture_output=True, text=True, check=True
    )
    compiled = ",".join(encode_arith_runs(organ(s)).hex() for s in range(2))
    assert result.stdout.strip() == compiled


def test_damaged_headers_and_targets() -> None:
    blob = encode_arith_runs(organ(1))
    out = np.zeros((24, 28, 20), np.uint8)
    whole = ((0, 24), (0, 28), (0, 20))
    for bad in (b"", b"\x06\x00" + blob[2:], b"\x00\x01" + blob[2:]):
        with pytest.raises(FormatError, match="bad header"):
            decode_arith_runs_into(bad, out, whole)
    with pytest.raises(FormatError, match="bytes after its last row"):
        decode_arith_runs_into(blob + b"\x00", out, whole)
    with pytest.raises(ValueError, match="does not fit"):
        decode_arith_runs_into(blob, out, ((0, 25), (0, 28), (0, 20)))


def test_every_truncation_is_an_error() -> None:
    blob = encode_arith_runs(organ(2))
    for cut in range(len(blob)):
        out = np.zeros((24, 28, 20), np.uint8)
        with pytest.raises(FormatError):
            decode_arith_runs_into(blob[:cut], out, ((0, 24), (0, 28), (0, 20)))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_blobs_never_crash_or_write_outside_the_crop(data: st.DataObject) -> None:
    blob = bytearray(encode_arith_runs(organ(3)))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(2, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(2, len(blob)))]
    full = np.zeros((28, 32, 24), np.uint8)
    # archives catch such damage first, by the blob's checksum; here: no other error
    with contextlib.suppress(FormatError):
        decode_arith_runs_into(bytes(blob), full, ((2, 26), (2, 30), (2, 22)))
    inside = np.zeros(full.shape, bool)
    inside[2:26, 2:30, 2:22] = True
    assert not full[~inside].any()


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/totalseg_s0000")
def test_real_masks_are_a_third_smaller_than_with_codec_3() -> None:
    import nibabel as nib

    new = old = 0
    for path in sorted(SHARED.glob("*.nii.gz")):
        mask = np.asarray(nib.load(path).dataobj) != 0
        if not mask.any():
            continue
        crop = mask[tuple(slice(a.min(), a.max() + 1) for a in np.nonzero(mask))]
        blob = encode_arith_runs(crop)
        assert np.array_equal(decode(blob, crop.shape), crop), path.name
        new += len(blob)
        old += len(encode_runs(crop, 19))
    assert new < 0.7 * old
