"""The TotalSegmentator-style label table in a NIfTI header extension."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medmask.errors import FormatError
from medmask.exchange.nifti_labels import decode_label_table, encode_label_table

# Names as users write them: any printable text without surrounding blanks or XML-illegal
# control characters (XML 1.0 cannot carry those at all).
names = (
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)


@given(st.dictionaries(st.integers(1, 2**31 - 1), names, min_size=1, max_size=40))
def test_round_trip(labels: dict[int, str]) -> None:
    assert decode_label_table(encode_label_table(labels)) == labels


def test_schema_matches_totalsegmentator_readers() -> None:
    content = encode_label_table({2: "liver", 1: "spleen"})
    root = ET.fromstring(content)
    entries = root.findall("./VolumeInformation/LabelTable/Label")
    # the path and attributes TotalSegmentator's load_multilabel_nifti walks
    assert root.tag == "CaretExtension"
    assert [(e.get("Key"), e.text) for e in entries] == [("1", "spleen"), ("2", "liver")]


def test_trailing_padding_is_ignored() -> None:
    # NIfTI pads extensions to 16 bytes; files in the wild pad with NULs or spaces.
    content = encode_label_table({1: "aorta"}) + b"\x00\x00\x00  \n"
    assert decode_label_table(content) == {1: "aorta"}


TABLE = b"<C><VolumeInformation><LabelTable>%s</LabelTable></VolumeInformation></C>"


TABLE = b"<C><VolumeInformation><LabelTable>%s</LabelTable></VolumeInformation></C>"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not xml at all", "not valid XML"),
        (b"<CaretExtension/>", "no Label entries"),
        (
            TABLE % b'<Label Key="x">a</Label>',
            "Key",
        ),
        (
            TABLE % b'<Label Key="1"> </Label>',
            "name",
        ),
    ],
)
def test_bad_tables_raise_format_error(content: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        decode_label_table(content)


def test_negative_labels_are_refused_and_zero_names_the_background() -> None:
    with pytest.raises(ValueError, match="negative"):
        encode_label_table({-1: "x"})
    assert decode_label_table(encode_label_table({0: "background", 1: "liver"})) == {
        0: "background",
        1: "liver",
    }
