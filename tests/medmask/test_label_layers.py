"""Codec 5 (label-layers): agrees with its specification, round-trips, and survives damage.

``spec_decode`` below follows docs/mask-format.md ("Codec 5: label-layers") in plain
Python, with the range decoder and row steps written from the specification for codec 4
(test_arith_runs.py), independently of the compiled decoder.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
from codec4_spec import SpecDecoder, ball, spec_rows
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from medmask import FormatError
from medmask.codecs import CodecId, EncodedMask, decode_crop, decode_label, decode_mask, encode_mask
from medmask.codecs.arith_runs import encode_arith_runs
from medmask.codecs.label_layers import decode_label_layers_into, encode_label_layers
from medmask.codecs.runs import PERMUTATIONS
from medmask.model.bbox import bounding_box

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "totalseg_s0000"
INTEGER_DTYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64")


def read_varint(blob: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = blob[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def spec_decode(blob: bytes, crop_shape: tuple[int, int, int]) -> np.ndarray:
    """A label crop (uint64) from a codec-5 blob, following the specification's steps."""
    count, at = read_varint(blob, 0)
    labels = []
    for _ in range(count):
        label, at = read_varint(blob, at)
        labels.append(label)
    assert count >= 1 and labels == sorted(set(labels)) and labels[0] >= 1
    coder = SpecDecoder(blob[at:], groups=56)
    out = np.zeros(crop_shape, np.uint64)
    for label in labels:
        perm = coder.golomb(49)
        assert perm <= 5
        start, size = [], []
        for axis in range(3):
            start.append(coder.golomb(50 + axis))
            size.append(1 + coder.golomb(53 + axis))
        assert all(a + n <= m for a, n, m in zip(start, size, crop_shape, strict=True))
        layer = spec_rows(coder, tuple(size), PERMUTATIONS[perm])
        box = out[tuple(slice(a, a + n) for a, n in zip(start, size, strict=True))]
        assert not (box[layer] != 0).any(), "layers never share a voxel"
        box[layer] = label
    assert coder.pos == len(coder.data), "the payload must be read to its end"
    return out


def organs(shape: tuple[int, int, int] = (40, 36, 30), labels: tuple[int, ...] = (1, 2, 3, 7)):
    """A few touching, overlapping balls painted in order: a small label map."""
    out = np.zeros(shape, np.uint32)
    rng = np.random.default_rng(sum(labels))
    for label in labels:
        center = tuple(rng.uniform(n / 4, 3 * n / 4) for n in shape)
        out[ball(shape, center, rng.uniform(0.12, 0.25) * min(shape))] = label
    return out


def decoded(blob: bytes, crop: np.ndarray) -> np.ndarray:
    out = np.zeros(crop.shape, crop.dtype)
    view = out.view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[out.itemsize])
    origin = tuple((0, n) for n in crop.shape)
    decode_label_layers_into(blob, view, origin, limit=int(np.iinfo(crop.dtype).max))
    return out


@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 7), st.integers(1, 7), st.integers(1, 7)),
        elements=st.sampled_from([0, 0, 1, 2, 5, 200]),
    )
)
def test_noise_round_trips_and_matches_the_specification(array: np.ndarray) -> None:
    if not array.any():
        return
    blob = encode_label_layers(array)
    assert np.array_equal(decoded(blob, array), array)
    assert np.array_equal(spec_decode(blob, array.shape), array)


@pytest.mark.parametrize("seed", range(4))
def test_organ_maps_match_the_specification(seed: int) -> None:
    labels = tuple(sorted({int(v) for v in np.random.default_rng(seed).integers(1, 40, 5)}))
    crop = organs(labels=labels)
    blob = encode_label_layers(crop)
    assert np.array_equal(spec_decode(blob, crop.shape), crop)
    assert np.array_equal(decoded(blob, crop), crop)


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
def test_every_integer_dtype_round_trips_with_its_highest_label(dtype: str) -> None:
    top = min(int(np.iinfo(dtype).max), 2**32 - 1)
    full = np.zeros((30, 30, 30), dtype)
    full[2:20, 3:25, 4:15] = organs((18, 22, 11), (1, 2, 3)).astype(dtype)
    full[22:28, 5:9, 5:9] = top
    encoded = encode_mask(full)
    assert encoded.codec == CodecId.LABEL_LAYERS
    back = decode_mask(encoded)
    assert back.dtype == full.dtype and np.array_equal(back, full)
    crop, offset = decode_crop(encoded)
    box = bounding_box(full)
    assert box is not None and offset == tuple(a for a, _ in box)
    assert np.array_equal(crop, full[tuple(slice(a, b) for a, b in box)])
    one = decode_label(encoded, top)
    assert one.dtype == np.bool_ and np.array_equal(one, full == top)
    assert not decode_label(encoded, 99).any()  # not a layer: nothing, without decoding


def test_a_thousand_labels_round_trip() -> None:
    rng = np.random.default_rng(1)
    full = np.zeros((64, 64, 64), np.uint16)
    for label in range(1, 1001):
        x, y, z = rng.integers(3, 61, 3)
        full[x - 3 : x + 2, y - 2 : y + 3, z - 1 : z + 2] = label * 60  # up to 60,000
    encoded = encode_mask(full)
    assert encoded.codec == CodecId.LABEL_LAYERS
    assert np.array_equal(decode_mask(encoded), full)
    assert np.array_equal(decode_label(encoded, int(full.max())), full == full.max())


def test_one_label_paints_only_its_layer() -> None:
    full = np.zeros((44, 40, 34), np.uint16)
    full[2:42, 2:38, 2:32] = organs()
    encoded = encode_mask(full)
    for label in (1, 2, 3, 7):
        assert np.array_equal(decode_label(encoded, label), full == label)


def test_a_layer_costs_what_codec_4_costs_for_the_mask_alone() -> None:
    """One label: the layer's payload is codec 4's, plus its box and the label table."""
    mask = ball((50, 44, 40), (25, 22, 20), 15)
    crop = mask[tuple(slice(a, b) for a, b in bounding_box(mask) or ())]
    alone = len(encode_arith_runs(crop))
    layered = len(encode_label_layers(crop.astype(np.uint8) * 9))
    assert abs(layered - alone) <= 8


def test_damaged_label_tables() -> None:
    crop = organs()
    blob = encode_label_layers(crop)
    payload = blob[5:]  # 4 labels, one byte each
    full = np.zeros(crop.shape, np.uint32)
    whole = tuple((0, n) for n in crop.shape)
    for bad, message in (
        (b"", "truncated"),
        (b"\x00" + payload, "no layers"),
        (b"\x02\x02\x01" + payload, "not increasing"),
        (b"\x01\x80\x00" + payload, "needless zero"),
        (b"\x01\xff\xff\xff\xff\xff\x01" + payload, "longer than 5 bytes"),
        (b"\x7f\x01", "127 labels in 2 bytes"),
    ):
        with pytest.raises(FormatError, match=message):
            decode_label_layers_into(bad, full, whole, limit=2**32 - 1)
    with pytest.raises(FormatError, match="label 7 does not fit"):
        decode_label_layers_into(blob, full, whole, limit=6)
    with pytest.raises(FormatError, match="bytes after its last row"):
        decode_label_layers_into(blob + b"\x00", full, whole, limit=255)
    with pytest.raises(ValueError, match="does not fit"):
        decode_label_layers_into(blob, full, ((0, 41), (0, 36), (0, 30)), limit=255)


def test_a_box_outside_the_crop_is_damage() -> None:
    crop = organs()
    blob = encode_label_layers(crop)
    small = np.zeros((20, 36, 30), np.uint32)  # the blob's boxes reach past slice 20
    with pytest.raises(FormatError, match="leaves the crop"):
        decode_label_layers_into(blob, small, ((0, 20), (0, 36), (0, 30)), limit=255)


def test_every_truncation_is_an_error() -> None:
    crop = organs()
    blob = encode_label_layers(crop)
    for cut in range(len(blob)):
        with pytest.raises(FormatError):
            decoded(blob[:cut], crop)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_blobs_never_crash_or_write_outside_the_crop(data: st.DataObject) -> None:
    blob = bytearray(encode_label_layers(organs()))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    full = np.zeros((44, 40, 34), np.uint32)
    # archives catch such damage first, by the blob's checksum; here: no other error
    with contextlib.suppress(FormatError):
        decode_label_layers_into(bytes(blob), full, ((2, 42), (2, 38), (2, 32)), limit=255)
    inside = np.zeros(full.shape, bool)
    inside[2:42, 2:38, 2:32] = True
    assert not full[~inside].any()


def test_a_stored_codec_5_blob_under_another_dtype_is_refused() -> None:
    encoded = encode_mask(organs().astype(np.uint8))
    for dtype in ("float32", "bool"):
        bad = EncodedMask(encoded.codec, dtype, encoded.shape, encoded.bbox, encoded.blob)
        with pytest.raises(FormatError, match="cannot have dtype"):
            decode_mask(bad)


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/totalseg_s0000")
def test_s0000_combined_is_no_larger_than_its_masks_alone() -> None:
    import nibabel as nib

    combined = None
    alone = 0
    for label, path in enumerate(sorted(SHARED.glob("*.nii.gz")), start=1):
        mask = np.asarray(nib.load(path).dataobj) != 0
        combined = np.zeros(mask.shape, np.uint8) if combined is None else combined
        combined[mask] = label  # the notebook's add_label: the later organ keeps a voxel
    assert combined is not None
    for label in np.unique(combined)[1:]:
        mask = combined == label
        crop = mask[tuple(slice(a, b) for a, b in bounding_box(mask) or ())]
        alone += len(encode_mask(crop).blob)
    encoded = encode_mask(combined)
    assert encoded.codec == CodecId.LABEL_LAYERS
    assert len(encoded.blob) < alone
    assert np.array_equal(decode_mask(encoded), combined)
    crop, _ = decode_crop(encoded)
    assert np.array_equal(spec_decode(encoded.blob, crop.shape), crop)
