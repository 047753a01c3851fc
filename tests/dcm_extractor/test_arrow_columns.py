"""The tables' Arrow columns built from buffers against pyarrow.array, the reference."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcm_extractor.outputs.arrowcolumns import column

KINDS = [pa.string(), pa.int64(), pa.float64()]

texts = st.one_of(
    st.text(max_size=12),  # any code point: Chinese, combining marks, NUL, lone surrogates
    st.text(alphabet="0123456789.\\ ", max_size=12),  # what UIDs, positions and IDs look like
    st.sampled_from(["", "张三", "000456", "1.2.840.10008.5.1.4.1.1.2"]),
)
integers = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**70), 2**70))
floats = st.floats(allow_nan=True, allow_infinity=True)
anything = st.one_of(texts, integers, floats, st.booleans(), st.none())


def outcome(make: Any) -> tuple[str, Any]:
    """What a conversion gives: its values (NaN and -0.0 told apart) and null count, and
    that its buffers are valid - or the type of the error it raises."""
    try:
        array = make()
    except Exception as err:  # (the comparison: both raise the same kind of error)
        return "error", type(err).__name__
    array.validate(full=True)
    return str(array.type), ([repr(value) for value in array.to_pylist()], array.null_count)


def same_as_pyarrow(values: list[Any], kind: pa.DataType) -> None:
    assert outcome(lambda: column(values, kind)) == outcome(lambda: pa.array(values, kind))


@settings(deadline=None)  # (no timing: the first pyarrow.array imports pandas)
@given(st.lists(st.one_of(texts, st.none()), max_size=40))
def test_text_columns_are_pyarrows(values: list[str | None]) -> None:
    same_as_pyarrow(values, pa.string())


@settings(deadline=None)  # (no timing: the first pyarrow.array imports pandas)
@given(st.lists(st.one_of(integers, st.none()), max_size=40))
def test_integer_columns_are_pyarrows(values: list[int | None]) -> None:
    same_as_pyarrow(values, pa.int64())


@settings(deadline=None)  # (no timing: the first pyarrow.array imports pandas)
@given(st.lists(st.one_of(floats, st.none()), max_size=40))
def test_decimal_columns_are_pyarrows(values: list[float | None]) -> None:
    same_as_pyarrow(values, pa.float64())


@settings(deadline=None)  # (no timing: the first pyarrow.array imports pandas)
@given(st.lists(anything, max_size=20), st.sampled_from(KINDS))
def test_values_of_another_type_get_what_pyarrow_makes_of_them(
    values: list[Any], kind: pa.DataType
) -> None:
    same_as_pyarrow(values, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_column(kind: pa.DataType) -> None:
    assert column([], kind).equals(pa.array([], kind))


def test_other_kinds_are_made_by_pyarrow() -> None:
    for values, kind in (([1, None, 3], pa.int32()), ([True, None], pa.bool_())):
        same_as_pyarrow(values, kind)


def test_a_lone_surrogate_fails_as_in_pyarrow() -> None:
    with pytest.raises(UnicodeEncodeError):
        column(["ok", "\ud800"], pa.string())


def test_a_parquet_run_does_not_import_pandas(tmp_path: Path) -> None:
    """The point of the module: pyarrow's conversion imports pandas (~0.2 s a run)."""
    script = f"""
import sys
from pathlib import Path
from dcm_extractor.runner.pipeline import RunOptions, run
from dcm_extractor.sample import generate_dicom_dataset
data = generate_dicom_dataset(Path({str(tmp_path)!r}) / "data").cases_root
run(RunOptions(data, Path({str(tmp_path)!r}) / "out", merge_all=True,
               formats=("csv", "parquet"), series=True, instances=True, resume=False))
assert (Path({str(tmp_path)!r}) / "out" / "all_instances.parquet").is_file()
print("pandas" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
