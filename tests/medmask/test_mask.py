"""SegmentationMask: MedMask's API, validation, overlaps and statistics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from spacetransformer import Space

from medmask import (
    LabelMapping,
    MaskNotFoundError,
    MedmaskDeprecationWarning,
    MedmaskWarning,
    OverlapWarning,
    ReadOnlyArrayError,
    SegmentationMask,
)


def blobs(shape: tuple[int, int, int] = (10, 12, 8)) -> np.ndarray:
    arr = np.zeros(shape, dtype=np.uint8)
    arr[1:4, 2:6, 1:3] = 1
    arr[5:9, 6:11, 4:8] = 2
    return arr


def test_construction_forms() -> None:
    arr = blobs()
    space = Space(shape=arr.shape, spacing=(0.5, 0.5, 2.0))
    a = SegmentationMask(arr, {"liver": 1, "spleen": 2}, space)
    b = SegmentationMask(mask_array=arr, mapping={"liver": 1, "spleen": 2}, space=space)
    c = SegmentationMask(arr, LabelMapping({"liver": 1, "spleen": 2}), space)
    assert a == b == c
    assert a.mapping.spleen == 2
    assert a.bit_depth == 8
    assert a.space is space


def test_default_space_is_1mm_identity_of_the_array_shape() -> None:
    mask = SegmentationMask(blobs(), {"liver": 1, "spleen": 2})
    assert tuple(mask.space.shape) == (10, 12, 8)
    assert tuple(mask.space.spacing) == (1.0, 1.0, 1.0)
    assert tuple(mask.space.origin) == (0.0, 0.0, 0.0)


def test_space_of_another_shape_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"array shape \(10, 12, 8\).*space.shape \(8, 10, 12\)"):
        SegmentationMask(blobs(), {"liver": 1}, Space(shape=(8, 10, 12)))


@pytest.mark.parametrize(
    ("array", "mapping", "message"),
    [
        (np.zeros((4, 4), np.uint8), {}, "3-D"),
        (np.zeros((2, 2, 2, 2), np.uint8), {}, "3-D"),
        (np.zeros((4, 4, 4), np.complex64), {}, "complex64"),
        (np.full((4, 4, 4), 1.5, np.float32), {}, "1.5, not a whole number"),
        (np.full((4, 4, 4), -2, np.int64), {}, "holds -2; labels are >= 0"),
        (np.full((4, 4, 4), 2**32, np.uint64), {}, "above the highest label"),
        (np.zeros((4, 4, 4), np.uint8), {"big": 256}, "256"),
        (np.zeros((4, 4, 4), bool), {"two": 2}, "label 2"),
    ],
)
def test_bad_arrays_and_labels(array: np.ndarray, mapping: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SegmentationMask(array, mapping)


def test_unnamed_labels_are_named_and_reported() -> None:
    with pytest.warns(MedmaskWarning, match=r"\[2\] have no name"):
        mask = SegmentationMask(blobs(), {"liver": 1})
    assert mask.mapping.inverse(2) == "idx_2"


@pytest.mark.parametrize(
    ("depth", "dtype"), [(1, bool), (8, np.uint8), (16, np.uint16), (32, np.uint32)]
)
def test_lazy_init(depth: int, dtype: type) -> None:
    space = Space(shape=(5, 6, 7))
    by_space = SegmentationMask.lazy_init(bit_depth=depth, space=space)
    by_shape = SegmentationMask.lazy_init(depth, shape=(5, 6, 7))
    assert by_space.dtype == by_shape.dtype == np.dtype(dtype)
    assert by_space.bit_depth == depth
    assert by_space.shape == (5, 6, 7)
    assert len(by_space.mapping) == 0


def test_lazy_init_errors() -> None:
    with pytest.raises(ValueError, match="bit_depth"):
        SegmentationMask.lazy_init(bit_depth=12, shape=(2, 2, 2))
    with pytest.raises(ValueError, match="space or a shape"):
        SegmentationMask.lazy_init(bit_depth=8)
    with pytest.raises(ValueError, match="does not match"):
        SegmentationMask.lazy_init(8, space=Space(shape=(2, 2, 2)), shape=(3, 3, 3))


def test_add_label_and_queries() -> None:
    combined = SegmentationMask.lazy_init(bit_depth=8, shape=(10, 12, 8))
    arr = blobs()
    combined.add_label(arr == 1, 1, "liver")
    combined.add_label((arr == 2).astype(np.uint8), 2, "spleen")  # non-bool masks: non-zero voxels
    assert np.array_equal(combined.get_mask_by_names("liver"), arr == 1)
    assert np.array_equal(combined.get_mask_by_names(["liver", "spleen"]), arr > 0)
    assert np.array_equal(combined.get_mask_by_labels([1, 2]), arr > 0)
    assert np.array_equal(combined.get_mask_by_labels(2), arr == 2)
    with pytest.warns(MedmaskDeprecationWarning, match="get_mask_by_names"):
        assert np.array_equal(combined.get_binary_mask_by_names("spleen"), arr == 2)
    with pytest.warns(MedmaskDeprecationWarning, match="get_mask_by_labels"):
        assert np.array_equal(combined.get_binary_mask_by_labels([1]), arr == 1)
    assert np.array_equal(combined.get_all_masks(), arr)
    assert np.array_equal(combined.get_all_masks(binarize=True), arr > 0)
    assert np.array_equal(combined.to_binary(), arr > 0)
    with pytest.raises(MaskNotFoundError):
        combined.get_mask_by_names("lung")
    with pytest.raises(MaskNotFoundError):
        combined.get_mask_by_labels([1, 9])


def test_data_is_a_read_only_view_without_a_copy() -> None:
    mask = SegmentationMask(blobs(), {"liver": 1, "spleen": 2})
    for view in (mask.data, mask.get_all_masks()):
        assert np.shares_memory(view, mask.data)
        with pytest.raises(ReadOnlyArrayError, match=r"read-only view .* use \.copy\(\)"):
            view[0, 0, 0] = 3
        with pytest.raises(ValueError, match="read-only"):  # numpy's own error class too
            view[1:3] = 0
        with pytest.raises(ReadOnlyArrayError, match="copy"):
            view.__iadd__(1)  # what `view += 1` calls
        with pytest.raises(ReadOnlyArrayError, match="copy"):
            view.fill(0)
        with pytest.raises(ReadOnlyArrayError, match="copy"):
            np.add(view, 1, out=view)
    copy = mask.get_all_masks().copy()
    copy[0, 0, 0] = 3
    assert type(copy) is np.ndarray and mask.data[0, 0, 0] == 0
    derived = mask.data == 2  # arithmetic gives plain, writable numpy arrays
    assert type(derived) is np.ndarray and derived.flags.writeable
    assert type(mask.data.astype(np.int16)) is np.ndarray


def test_add_label_rules() -> None:
    combined = SegmentationMask.lazy_init(bit_depth=8, shape=(4, 4, 4))
    region = np.zeros((4, 4, 4), bool)
    region[0] = True
    combined.add_label(region, 1, "liver")
    with pytest.raises(ValueError, match="label 1 is already used"):
        combined.add_label(region, 1, "spleen")
    with pytest.raises(ValueError, match="256"):
        combined.add_label(region, 256, "big")
    with pytest.raises(ValueError, match="shape"):
        combined.add_label(np.ones((2, 2, 2), bool), 3, "small")
    with pytest.raises(ValueError, match="on_overlap"):
        combined.add_label(region, 3, "x", on_overlap="keep")  # type: ignore[arg-type]


def test_overlap_warns_then_overwrites_like_medmask() -> None:
    combined = SegmentationMask.lazy_init(bit_depth=8, shape=(6, 6, 6))
    first = np.zeros((6, 6, 6), bool)
    first[:3] = True
    second = np.zeros((6, 6, 6), bool)
    second[2:5] = True
    combined.add_label(first, 1, "sacrum")
    with pytest.warns(OverlapWarning) as caught:
        combined.add_label(second, 2, "rib_right_12")
    assert len(caught) == 1
    warning = caught[0].message
    assert isinstance(warning, OverlapWarning)
    assert (warning.new_label, warning.old_label, warning.voxels) == (2, 1, 36)
    assert "'sacrum' (label 1)" in str(warning)
    assert "36 voxels" in str(warning)
    assert np.array_equal(combined.get_mask_by_names("rib_right_12"), second)
    assert int(combined.get_mask_by_names("sacrum").sum()) == 72


def test_overlap_error_changes_nothing() -> None:
    combined = SegmentationMask.lazy_init(bit_depth=8, shape=(6, 6, 6))
    region = np.zeros((6, 6, 6), bool)
    region[:3] = True
    combined.add_label(region, 1, "sacrum")
    before = combined.get_all_masks()
    with pytest.raises(ValueError, match="would overwrite 108 voxels of 'sacrum'"):
        combined.add_label(np.ones((6, 6, 6), bool), 2, "body", on_overlap="error")
    assert np.array_equal(combined.data, before)
    assert "body" not in combined.mapping


def test_no_warning_without_overlap() -> None:
    combined = SegmentationMask.lazy_init(bit_depth=1, shape=(3, 3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        combined.add_label(np.ones((3, 3, 3), bool), 1, "body")


def test_statistics() -> None:
    space = Space(shape=(10, 12, 8), spacing=(0.5, 2.0, 3.0))
    mask = SegmentationMask(blobs(), {"liver": 1, "spleen": 2, "empty": 3}, space)
    stats = mask.statistics()
    assert stats["liver"].voxel_count == 3 * 4 * 2
    assert stats["liver"].volume_ml == pytest.approx(24 * 3.0 / 1000)
    assert stats["liver"].bbox == ((1, 4), (2, 6), (1, 3))
    assert stats["spleen"].bbox == ((5, 9), (6, 11), (4, 8))
    assert stats["empty"].voxel_count == 0
    assert stats["empty"].bbox is None
    assert stats["spleen"].to_dict()["bbox"] == [[5, 9], [6, 11], [4, 8]]


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.uint32]),
        shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=9),
        elements=st.integers(0, 5),
    )
)
def test_statistics_match_direct_numpy(arr: np.ndarray) -> None:
    mapping = {f"s{v}": v for v in range(1, 6)}
    stats = SegmentationMask(arr, mapping).statistics()
    for value in range(1, 6):
        binary = arr == value
        entry = stats[f"s{value}"]
        assert entry.voxel_count == int(binary.sum())
        if entry.bbox is None:
            assert not binary.any()
            continue
        region = tuple(slice(a, b) for a, b in entry.bbox)
        assert int(binary[region].sum()) == entry.voxel_count
        for axis, (start, stop) in enumerate(entry.bbox):
            assert binary.take(start, axis=axis).any()
            assert binary.take(stop - 1, axis=axis).any()
