"""Layouts followed from file to file give exactly what walking each file gives."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dcm_extractor.reading.facts import ImageFacts, Skip
from dcm_extractor.reading.fastheader import HEAD_BYTES, FastReader
from dcm_extractor.reading.fullparse import inspect_dicom
from dcm_extractor.reading.layout import LayoutCache

CT_SMALL = Path(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]


READER = FastReader()  # each test starts with a fresh reader (fresh_reader)
LAYOUTS: LayoutCache = READER.layouts


@pytest.fixture(autouse=True)
def fresh_reader() -> Iterator[None]:
    global READER, LAYOUTS  # noqa: PLW0603 - the tests below share one reader, as a case does
    READER = FastReader()
    LAYOUTS = READER.layouts
    yield


def variant(
    uid_digits: int = 3,
    name: str = "Doe^Jane",
    protocol: str | None = None,
    references: int = 0,
    rows: int = 128,
) -> bytes:
    """CT_small with values of other lengths, an optional extra element and a sequence."""
    ds = dcmread(CT_SMALL)
    ds.SOPInstanceUID = "1.2.826.0.1." + "7" * uid_digits
    if not name.isascii():
        ds.SpecificCharacterSet = "GB18030"
    ds.PatientName = name
    if protocol is not None:
        ds.ProtocolName = protocol  # (0018,1030): one more element in the middle
    if references:
        items = []
        for index in range(references):
            item = Dataset()
            item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
            item.ReferencedSOPInstanceUID = f"1.2.3.{index}" * (index + 1)
            items.append(item)
        ds.ReferencedImageSequence = items  # (0008,1140), undefined length as pydicom writes it
    ds.Rows = rows
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def verdict(data: bytes) -> ImageFacts | Skip:
    result, _ = READER.inspect(data[:HEAD_BYTES], len(data), read_all=lambda: data)
    return result


def test_a_series_is_followed_not_walked() -> None:
    series = [variant(uid_digits=digits) for digits in (3, 5, 4, 9, 3, 12, 6)]
    for data in series:
        assert verdict(data) == inspect_dicom(data)
    assert LAYOUTS.hits >= len(series) - 3  # learnt from the first two or three files
    assert LAYOUTS.layout is not None
    assert len(LAYOUTS.layout.segments) < len(LAYOUTS.layout.records) // 4  # runs, not steps


def test_a_changed_element_header_is_noticed() -> None:
    for data in (variant(), variant(uid_digits=5), variant(uid_digits=4)):
        verdict(data)
    hits = LAYOUTS.hits
    other = variant(protocol="CHEST")  # one element more: every later position shifts
    assert verdict(other) == inspect_dicom(other)
    assert LAYOUTS.hits == hits and LAYOUTS.misses >= 1
    smaller = variant(rows=64)  # same layout, other value: followed, value read anew
    facts = verdict(smaller)
    assert isinstance(facts, ImageFacts)
    assert facts.rows == 64
    assert facts == inspect_dicom(smaller)


def test_truncated_file_with_a_known_layout() -> None:
    for data in (variant(), variant(uid_digits=5), variant(uid_digits=4)):
        verdict(data)
    data = variant(uid_digits=6)
    for cut in (400, 700, 1000, len(data) - 10):
        result, _ = READER.inspect(data[:cut], cut)
        assert result == inspect_dicom(data[:cut]), cut


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 30),
            st.sampled_from(["Doe^Jane", "Li^Na", "王^小明", "X"]),
            st.one_of(st.none(), st.sampled_from(["A", "CHEST ROUTINE"])),
            st.integers(0, 3),
            st.sampled_from([64, 128]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_sequence_of_files_agrees_with_walking_each(
    params: list[tuple[int, str, str | None, int, int]],
) -> None:
    LAYOUTS.layout = None
    for uid_digits, name, protocol, references, rows in params:
        data = variant(uid_digits, name, protocol, references, rows)
        followed = verdict(data)
        saved, LAYOUTS.layout = LAYOUTS.layout, None
        walked = verdict(data)
        LAYOUTS.layout = saved
        assert followed == walked == inspect_dicom(data)


def test_a_text_column_in_another_vr_is_noticed_after_a_followed_series() -> None:
    """The text columns' VRs are checked once per layout (files that follow it have the
    same VRs); a file whose PatientName has become ``UL`` does not follow it, and goes
    to pydicom as the first file of a series would."""
    for data in (variant(), variant(uid_digits=5), variant(uid_digits=4)):
        assert verdict(data) == inspect_dicom(data)
    assert LAYOUTS.hits >= 1
    damaged = bytearray(variant(uid_digits=6))
    at = damaged.find(b"\x10\x00\x10\x00PN")
    damaged[at + 4 : at + 6] = b"UL"
    result, handed_over = READER.inspect(bytes(damaged[:HEAD_BYTES]), len(damaged), lambda: damaged)
    assert handed_over == "malformed"
    assert result == inspect_dicom(bytes(damaged))  # pydicom: two UL numbers, as it reads them
