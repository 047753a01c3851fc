"""The label scanner against numpy's own answer (np.unique), every dtype and memory layout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from medmask.model import label_values
from medmask.model.label_values import MASK_DTYPES, label_limit, labels_present

DTYPES = [d for d in MASK_DTYPES if d != "bool"]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dtype=st.sampled_from(DTYPES),
    shape=hnp.array_shapes(min_dims=3, max_dims=3, max_side=12),
    data=st.data(),
    layout=st.sampled_from(["C", "F", "strided"]),
)
def test_labels_present_is_numpys_unique(
    monkeypatch: pytest.MonkeyPatch, dtype: str, shape: tuple[int, ...], data: st.DataObject,
    layout: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(label_values, "_SLAB_VOXELS", 17)  # many slabs even for small arrays
    high = min(label_limit(np.dtype(dtype)), 70_000)
    values = data.draw(hnp.arrays(dtype, shape, elements=st.integers(0, high)))
    if layout == "F":
        values = np.asfortranarray(values)
    elif layout == "strided":
        values = np.repeat(values, 2, axis=2)[:, :, ::2]
    expected = [int(v) for v in np.unique(values) if v != 0]
    assert labels_present(values) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.array([0, 3, -1], np.int16), "holds -1"),
        (np.array([0, 2.5], np.float32), "2.5, not a whole number"),
        (np.array([0, np.inf], np.float64), "NaN or infinite"),
        (np.array([0, 2**24 + 2], np.float32), "above the highest label 16777216"),
        (np.array([0, 2**32], np.int64), "above the highest label 4294967295"),
    ],
)
def test_values_that_are_not_labels(values: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        labels_present(values.reshape(1, 1, -1))


def test_binary_and_empty_arrays() -> None:
    assert labels_present(np.zeros((3, 3, 3), np.uint8)) == []
    assert labels_present(np.ones((3, 3, 3), bool)) == [1]
    assert labels_present(np.ones((3, 3, 3), np.uint32)) == [1]
    assert labels_present(np.zeros((0, 3, 3), np.float32)) == []
