"""Decimal strings of many coordinates at once (RT Structure Set contours), against
Python's decimal arithmetic and pydicom's DS rules."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.valuerep import is_valid_ds

from medmask.exchange.dicom.encoding import decimal_strings


def reference(value: float) -> str:
    """The number rounded to 4 decimals (half to even, as numpy), written by Decimal."""
    tenths = int(np.rint(value * 1e4))
    text = format(Decimal(tenths).scaleb(-4).normalize(), "f")
    return "0" if tenths == 0 else text


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(-1e4, 1e4, allow_nan=False),
            st.floats(-9.99e9, 9.99e9, allow_nan=False),
            st.integers(-5000, 5000).map(lambda n: n / 16),  # grid-like values
        ),
        max_size=40,
    )
)
def test_each_number_is_its_rounded_decimal(values: list[float]) -> None:
    text, ends = decimal_strings(np.array(values, dtype=np.float64))
    written = text.decode("ascii").split("\\")
    assert written[-1] == ""  # every number ends in a backslash
    assert written[:-1] == [reference(v) for v in values]
    assert all(text[e : e + 1] == b"\\" for e in ends.tolist())
    assert len(ends) == len(values) and (len(values) == 0 or ends[-1] == len(text) - 1)
    for number in written[:-1]:
        assert len(number) <= 16 and is_valid_ds(number)


def test_the_python_formatting_it_replaces_gives_the_same_text() -> None:
    rng = np.random.default_rng(7)
    values = np.round(rng.uniform(-999.0, 999.0, 5000), 4)
    text, _ = decimal_strings(values)
    assert text.decode() == "".join(f"{v:.10g}\\" if v != 0 else "0\\" for v in values.tolist())


def test_signs_of_zero_and_limits() -> None:
    assert (
        decimal_strings(np.array([-0.0, -0.00004, 0.00005, -0.00025]))[0] == b"0\\0\\0\\-0.0002\\"
    )
    assert decimal_strings(np.array([9999999999.0]))[0] == b"9999999999\\"
    assert decimal_strings(np.zeros((0, 3)))[0] == b""
    with pytest.raises(ValueError, match="more than 16 characters"):
        decimal_strings(np.array([1e10]))
    with pytest.raises(ValueError, match="not a finite number"):
        decimal_strings(np.array([1.0, np.nan]))
