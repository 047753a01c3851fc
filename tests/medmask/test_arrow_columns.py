"""ops/arrow_columns.py against pyarrow's own conversions (the reference), and the reason
it exists: a catalog run that never imports pandas."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from medmask.ops.arrow_columns import (
    as_numpy,
    empty_table,
    first_rows,
    number_lists,
    numbers,
    string_lists,
    strings,
)
from medmask.ops.catalog import catalog_schema
from medmask.ops.pack import pack
from medmask.sample import generate_masks


def plain(array: pa.Array) -> list[object]:
    """The values, NaN written as "nan" (NaN equals nothing, pyarrow's equals included)."""

    def one(value: object) -> object:
        if isinstance(value, list):
            return [one(v) for v in value]
        return "nan" if isinstance(value, float) and math.isnan(value) else value

    return [one(v) for v in array.to_pylist()]


DTYPES = st.sampled_from([np.int64, np.int32, np.float64, np.bool_])
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # no lone surrogates


@settings(max_examples=200, deadline=None)
@given(data=st.data(), dtype=DTYPES, n=st.integers(0, 70))
def test_numbers_are_pyarrows_array(data: st.DataObject, dtype: type, n: int) -> None:
    values = data.draw(hnp.arrays(dtype, n))
    mask = data.draw(st.none() | hnp.arrays(np.bool_, n))
    ours = numbers(values, mask=mask)
    theirs = pa.array(values, mask=mask)
    assert ours.type == theirs.type and plain(ours) == plain(theirs)
    assert ours.null_count == theirs.null_count
    if not ours.null_count:  # and back, from any offset of a slice
        start = data.draw(st.integers(0, n))
        expected = values[start:]
        assert np.array_equal(as_numpy(ours.slice(start)), expected, equal_nan=dtype is np.float64)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), dtype=DTYPES, n=st.integers(1, 70))
def test_nulls_become_the_value_given(data: st.DataObject, dtype: type, n: int) -> None:
    values = data.draw(
        hnp.arrays(dtype, n, elements={"allow_nan": False} if dtype is np.float64 else None)
    )
    mask = data.draw(hnp.arrays(np.bool_, n))
    start = data.draw(st.integers(0, n))
    array = pa.array(values, mask=mask).slice(start)
    filler = pa.scalar(1, type=array.type) if dtype is not np.bool_ else pa.scalar(True)
    expected = array.fill_null(filler).to_numpy(zero_copy_only=False)
    assert np.array_equal(as_numpy(array, null=1 if dtype is not np.bool_ else True), expected)
    if array.null_count:
        try:
            as_numpy(array)
        except ValueError as err:
            assert "nulls" in str(err)
        else:
            raise AssertionError("nulls read without a value for them")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.none() | TEXT, max_size=30))
def test_strings_are_pyarrows_array(values: list[str | None]) -> None:
    ours = strings(values)
    assert ours.equals(pa.array(values, pa.string()))
    assert ours.to_pylist() == values


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(TEXT, max_size=4), max_size=20))
def test_string_lists_are_pyarrows_array(rows: list[list[str]]) -> None:
    assert string_lists(rows).equals(pa.array(rows, pa.list_(pa.string())))


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=9)))
def test_number_lists_are_pyarrows_array(matrix: np.ndarray) -> None:
    ours, theirs = number_lists(matrix), pa.array(matrix.tolist(), pa.list_(pa.float64()))
    assert ours.type == theirs.type and plain(ours) == plain(theirs)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "日本"]), max_size=40))
def test_first_rows_are_a_group_bys_first(values: list[str]) -> None:
    keys, first = first_rows(pa.chunked_array([pa.array(values, pa.string())]))
    expected = list(dict.fromkeys(values))
    assert keys == expected
    assert first.tolist() == [values.index(k) for k in expected]


def test_empty_table_is_the_schemas() -> None:
    schema = catalog_schema()
    assert empty_table(schema).equals(schema.empty_table())
    assert pc.sum(numbers(np.arange(5))).as_py() == 10  # a usable array


def test_a_catalog_run_never_imports_pandas(tmp_path: Path) -> None:
    """pyarrow imports pandas on its first own conversion: 0.3 s of a cold catalog."""
    for seed in range(2):
        sample = generate_masks(tmp_path / f"n{seed}", seed=seed, shape=(30, 28, 20))
        pack(sample.masks_dir, tmp_path / "archives" / f"case{seed}.mska")
    archives, catalog = str(tmp_path / "archives"), str(tmp_path / "c.parquet")
    script = (
        "import os, sys\n"
        "from medmask.cli import main\n"
        f"assert main(['catalog', {archives!r}, '-o', {catalog!r}]) == 0\n"
        f"os.utime({str(tmp_path / 'archives' / 'case1.mska')!r}, ns=(1, 10**18))\n"
        f"assert main(['catalog', {archives!r}, '-o', {catalog!r}]) == 0  # an update\n"
        "print('pandas' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "False", done.stdout
