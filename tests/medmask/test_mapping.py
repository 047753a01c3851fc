"""LabelMapping: MedMask's name <-> label mapping."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from medmask import LabelMapping, MaskNotFoundError


def test_medmask_usage_as_written() -> None:
    m = LabelMapping({"liver": 1, "spleen": 2})
    assert m["liver"] == 1
    assert m.liver == 1
    assert m("spleen") == 2
    assert m.inverse(1) == "liver"
    assert m.has_label(1)
    assert not m.has_label(3)
    assert len(m) == 2
    assert list(m) == ["liver", "spleen"]
    assert list(m.items()) == [("liver", 1), ("spleen", 2)]
    assert LabelMapping.from_json(m.to_json()) == m


def test_setitem_moves_a_name_and_refuses_a_taken_label() -> None:
    m = LabelMapping({"liver": 1})
    m["liver"] = 5
    assert (m["liver"], m.has_label(1), m.inverse(5)) == (5, False, "liver")
    m["spleen"] = 1
    with pytest.raises(ValueError, match="label 1 is already used by 'spleen'"):
        m["kidney"] = 1


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ({"a": -2}, "positive"),
        ({"a": 1.5}, "positive"),
        ({"": 1}, "non-empty"),
    ],
)
def test_bad_pairs_are_value_errors(pairs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LabelMapping(pairs)  # type: ignore[arg-type]


def test_duplicate_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="already used"):
        LabelMapping({"a": 1, "b": 1})


def test_missing_names_and_labels() -> None:
    m = LabelMapping({"liver": 1})
    with pytest.raises(KeyError, match="'lung' is not in the mapping"):
        m["lung"]
    with pytest.raises(MaskNotFoundError):
        m.inverse(7)
    with pytest.raises(AttributeError, match="lung"):
        _ = m.lung


def test_copies_and_pickles() -> None:
    m = LabelMapping({"肝脏": 1, "spleen": 2})
    assert copy.deepcopy(m) == m
    assert pickle.loads(pickle.dumps(m)) == m
    assert "肝脏" in m.to_json()  # readable, not \\u-escaped


def test_from_json_needs_an_object() -> None:
    with pytest.raises(ValueError, match="object"):
        LabelMapping.from_json("[1, 2]")


@given(st.dictionaries(st.text(min_size=1, max_size=30), st.integers(1, 2**32 - 1), max_size=50))
def test_json_round_trip(pairs: dict[str, int]) -> None:
    if len(set(pairs.values())) != len(pairs):
        with pytest.raises(ValueError, match="already used"):
            LabelMapping(pairs)
        return
    m = LabelMapping(pairs)
    again = LabelMapping.from_json(m.to_json())
    assert again == m
    assert list(again.items()) == list(pairs.items())


def test_label_zero_names_the_background_and_is_no_mask() -> None:
    m = LabelMapping({"background": 0, "liver": 1, "spleen": 2})  # nnU-Net's dataset.json
    assert m.background == "background"
    assert m["background"] == 0 and m.background == "background" and m.inverse(0) == "background"
    assert "background" in m and m.has_label(0)
    assert list(m) == m.names() == ["liver", "spleen"] and m.labels() == [1, 2] and len(m) == 2
    assert dict(m.items()) == {"liver": 1, "spleen": 2}
    assert m.to_dict() == {"background": 0, "liver": 1, "spleen": 2}
    assert LabelMapping.from_json(m.to_json()) == m
    assert m.copy() == m and m != LabelMapping({"liver": 1, "spleen": 2})
    with pytest.raises(ValueError, match="label 0 is already used by 'background'"):
        m["air"] = 0
    m["background"] = 3  # moved to a mask label: no background any more
    assert m.background is None and m.names() == ["liver", "spleen", "background"]
    m["liver"] = 0
    assert m.background == "liver" and m.names() == ["spleen", "background"]
    assert not LabelMapping({"liver": 1}).has_label(0)


def test_a_named_background_survives_archive_and_nifti(tmp_path: Path) -> None:
    from spacetransformer import Space

    from medmask import MaskArchive, SegmentationMask, read_nifti

    array = np.zeros((4, 4, 4), np.uint8)
    array[0, 0, 0], array[1, 1, 1] = 1, 2
    mask = SegmentationMask(
        array, {"background": 0, "liver": 1, "spleen": 2}, Space(shape=(4, 4, 4))
    )
    assert sorted(mask.statistics()) == ["liver", "spleen"]
    with MaskArchive(tmp_path / "a.mska", "w") as archive:
        archive.add_mask(mask, "organs")
    with MaskArchive(tmp_path / "a.mska") as archive:
        assert archive.load_mask("organs") == mask
    mask.to_nifti(tmp_path / "o.nii.gz")
    assert read_nifti(tmp_path / "o.nii.gz").mapping.to_dict() == mask.mapping.to_dict()
