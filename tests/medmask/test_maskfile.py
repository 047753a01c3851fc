"""Single-mask .msk files: round trips, damage detection, medmask 0.1.3 files."""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from spacetransformer import Space

from medmask import (
    ChecksumError,
    FormatError,
    MedmaskError,
    MedmaskWarning,
    SegmentationMask,
    load_mask,
    save_mask,
)
from medmask.format.msk import FORMAT_VERSION, HEADER, HEADER_SIZE, MAGIC
from medmask.model.space import spaces_equal

LEGACY = Path(__file__).resolve().parents[1] / "data" / "medmask_0_1_3"


def sample_mask(dtype: type = np.uint8) -> SegmentationMask:
    arr = np.zeros((12, 10, 9), dtype=dtype)
    arr[2:7, 3:8, 1:5] = 1
    if dtype is not bool:
        arr[8:11, 1:4, 5:8] = 2
    mapping = {"liver": 1} if dtype is bool else {"liver": 1, "spleen": 2}
    space = Space(shape=arr.shape, origin=(1.5, -2.0, 30.0), spacing=(0.7, 0.7, 2.5))
    return SegmentationMask(arr, mapping, space)


def test_medmask_api_names(tmp_path: Path) -> None:
    mask = sample_mask()
    mask.save(tmp_path / "a.msk")
    save_mask(mask, tmp_path / "b.msk")
    assert SegmentationMask.load(tmp_path / "a.msk") == mask
    assert load_mask(str(tmp_path / "b.msk")) == mask
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]  # atomic write left nothing


def test_binary_content_is_detected_whatever_the_dtype(tmp_path: Path) -> None:
    region = sample_mask(bool).data
    sizes = {}
    for dtype in (bool, np.uint8, np.uint16, np.uint32):
        mask = SegmentationMask(region.astype(dtype), {"liver": 1})
        path = tmp_path / f"{np.dtype(dtype).name}.msk"
        mask.save(path)
        sizes[dtype] = path.stat().st_size
        again = load_mask(path)
        assert again.dtype == np.dtype(dtype)
        assert np.array_equal(again.data, region.astype(dtype))
    # only the dtype name in the metadata differs
    assert max(sizes.values()) - min(sizes.values()) <= 3


def test_empty_mask_has_no_blob(tmp_path: Path) -> None:
    mask = SegmentationMask.lazy_init(8, shape=(50, 50, 50))
    mask.mapping["kidney_cyst_left"] = 1
    path = tmp_path / "empty.msk"
    mask.save(path)
    (blob_length,) = struct.unpack_from("<Q", path.read_bytes(), 16)
    assert blob_length == 0
    assert load_mask(path) == mask


masks = st.builds(
    lambda arr, dtype, origin, spacing: (
        (arr > 0) if dtype is np.bool_ else arr.astype(dtype),
        origin,
        spacing,
    ),
    hnp.arrays(
        dtype=np.uint8,
        shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=12),
        elements=st.integers(0, 3),
    ),
    st.sampled_from([np.bool_, np.uint8, np.uint16, np.uint32]),
    st.tuples(*(st.floats(-1e4, 1e4) for _ in range(3))),
    st.tuples(*(st.floats(0.01, 10.0) for _ in range(3))),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(masks)
def test_property_round_trip(tmp_path: Path, case: tuple[np.ndarray, tuple, tuple]) -> None:
    arr, origin, spacing = case
    labels = {"a": 1} if arr.dtype == np.bool_ else {"a": 1, "b": 2, "c": 3}
    space = Space(shape=arr.shape, origin=origin, spacing=spacing)
    mask = SegmentationMask(arr, labels, space)
    mask.save(tmp_path / "p.msk", level=1)
    again = load_mask(tmp_path / "p.msk")
    assert again.dtype == arr.dtype
    assert np.array_equal(again.data, arr)
    assert again.mapping == mask.mapping
    assert spaces_equal(again.space, space)


# -- damage --------------------------------------------------------------------------------


@pytest.fixture
def good_file(tmp_path: Path) -> bytes:
    sample_mask().save(tmp_path / "good.msk")
    return (tmp_path / "good.msk").read_bytes()


def sections(data: bytes) -> tuple[int, int, int]:
    _, _, _, _, meta_length, blob_length, *_ = HEADER.unpack_from(data)
    return HEADER_SIZE, HEADER_SIZE + meta_length, HEADER_SIZE + meta_length + blob_length


def test_truncation_at_every_section_boundary(tmp_path: Path, good_file: bytes) -> None:
    meta_start, blob_start, end = sections(good_file)
    cuts = {
        0,
        4,
        meta_start - 1,
        meta_start,
        meta_start + 1,
        blob_start - 1,
        blob_start,
        blob_start + 1,
        end - 1,
    }
    for cut in sorted(cuts):
        path = tmp_path / "cut.msk"
        path.write_bytes(good_file[:cut])
        with pytest.raises(FormatError, match=r"cut\.msk"):
            load_mask(path)


def test_every_flipped_byte_is_caught(tmp_path: Path, good_file: bytes) -> None:
    path = tmp_path / "flip.msk"
    for position in range(len(good_file)):
        damaged = bytearray(good_file)
        damaged[position] ^= 0x5A
        path.write_bytes(bytes(damaged))
        with pytest.raises(MedmaskError):
            load_mask(path)


@pytest.mark.parametrize(
    ("offset", "value", "error", "message"),
    [
        (0, b"X", FormatError, "magic"),
        (8, bytes([FORMAT_VERSION[0] + 1]), FormatError, "version 3.0 is not supported"),
        (36, b"\x00\x00\x00\x00", ChecksumError, "header checksum"),
    ],
)
def test_header_damage_messages(
    tmp_path: Path, good_file: bytes, offset: int, value: bytes, error: type, message: str
) -> None:
    damaged = good_file[:offset] + value + good_file[offset + len(value) :]
    (tmp_path / "bad.msk").write_bytes(damaged)
    with pytest.raises(error, match=message):
        load_mask(tmp_path / "bad.msk")


def test_blob_damage_is_a_checksum_error(tmp_path: Path, good_file: bytes) -> None:
    _, blob_start, _ = sections(good_file)
    damaged = bytearray(good_file)
    damaged[blob_start + 2] ^= 0xFF
    (tmp_path / "bad.msk").write_bytes(bytes(damaged))
    with pytest.raises(ChecksumError, match="mask data checksum"):
        load_mask(tmp_path / "bad.msk")


def test_extra_bytes_and_foreign_files(tmp_path: Path, good_file: bytes) -> None:
    (tmp_path / "long.msk").write_bytes(good_file + b"\x00")
    with pytest.raises(FormatError, match="extra bytes"):
        load_mask(tmp_path / "long.msk")
    (tmp_path / "text.msk").write_text("liver,spleen\n" * 10)
    with pytest.raises(FormatError, match=r"not a medmask \.msk file"):
        load_mask(tmp_path / "text.msk")


def test_consistent_checksums_over_bad_metadata_are_still_refused(tmp_path: Path) -> None:
    """A writer bug (valid checksums, wrong content) must not give wrong data silently."""
    from medmask.format.msk import pack_msk

    good = sample_mask()
    good.save(tmp_path / "g.msk")
    from medmask.format.msk import unpack_msk

    parts = unpack_msk((tmp_path / "g.msk").read_bytes(), "g.msk")
    for key, value in (
        ("bbox", [[0, 99], [0, 1], [0, 1]]),
        ("dtype", "float64"),
        ("codec", 9),
        ("space", {}),
    ):
        meta = dict(parts.meta, **{key: value})
        (tmp_path / "m.msk").write_bytes(pack_msk(meta, parts.blob))
        with pytest.raises(FormatError, match=r"m\.msk"):
            load_mask(tmp_path / "m.msk")
    short_blob = parts.blob[: len(parts.blob) // 2]
    (tmp_path / "s.msk").write_bytes(pack_msk(parts.meta, short_blob))
    with pytest.raises(FormatError, match=r"s\.msk"):
        load_mask(tmp_path / "s.msk")


def test_magic_constant() -> None:
    assert len(MAGIC) == 8
    assert HEADER_SIZE == 40


# -- medmask 0.1.3 -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def legacy_expected() -> tuple[dict, dict[str, np.ndarray]]:
    meta = json.loads((LEGACY / "expected.json").read_text(encoding="utf-8"))
    with np.load(LEGACY / "expected.npz") as arrays:
        return meta, {k: arrays[k] for k in arrays.files}


@pytest.mark.parametrize("name", ["bool_liver", "uint8_labels", "uint16_labels", "uint8_empty"])
def test_reads_medmask_013_files(
    name: str, legacy_expected: tuple[dict, dict[str, np.ndarray]]
) -> None:
    meta, arrays = legacy_expected
    mask = load_mask(LEGACY / f"{name}.msk")
    assert mask.mapping.to_dict() == meta["masks"][name]["mapping"]
    assert str(mask.dtype) == meta["masks"][name]["dtype"]
    assert np.array_equal(mask.data, arrays[name])
    assert spaces_equal(mask.space, Space.from_json(json.dumps(meta["space"])))


def test_damaged_medmask_013_files(tmp_path: Path) -> None:
    data = (LEGACY / "uint8_labels.msk").read_bytes()
    for cut in (10, 62, len(data) // 2, len(data) - 1):
        (tmp_path / "old.msk").write_bytes(data[:cut])
        with pytest.raises(FormatError, match=r"old\.msk"):
            load_mask(tmp_path / "old.msk")
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x5A
        (tmp_path / "flip.msk").write_bytes(bytes(damaged))
        try:
            with (
                warnings.catch_warnings()
            ):  # a flipped label value is named idx_<n>, with a warning
                warnings.simplefilter("ignore", MedmaskWarning)
                mask = load_mask(tmp_path / "flip.msk")
        except MedmaskError:
            continue
        # 0.1.3 has no checksums: a flip may go unnoticed, but must give a valid mask
        assert mask.shape == (20, 24, 16)
