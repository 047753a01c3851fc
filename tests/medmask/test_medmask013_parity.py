"""medmask 0.1.3's API as its users call it: each behaviour of 0.1.3 old scripts rely on.

Written from 0.1.3's released code and documentation (PyPI medmask==0.1.3); where 0.1.3
lost data silently, medkit keeps it and says so (docs/medmask-compatibility.md). Files
made by 0.1.3 itself are in tests/data/medmask_0_1_3.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from spacetransformer import Space

import medmask
from medmask import (
    LabelMapping,
    MaskArchive,
    MaskFile,
    MedmaskDeprecationWarning,
    MedmaskWarning,
    SegmentationMask,
    load_mask,
    match_allowed_values,
    save_mask,
)
from medmask.model.space import spaces_equal

LEGACY = Path(__file__).resolve().parents[1] / "data" / "medmask_0_1_3"
SPACE = Space(shape=(6, 5, 4), spacing=(0.8, 0.8, 2.5), origin=(-3.0, 4.0, 10.0))


def blob_mask(dtype: type = np.uint8) -> SegmentationMask:
    arr = np.zeros((6, 5, 4), dtype)
    arr[1:4, 1:3, 1:3] = 1
    return SegmentationMask(arr, {"liver": 1}, SPACE)


# -- names and modules -----------------------------------------------------------------------


def test_0_1_3_top_level_names_exist() -> None:
    for name in ("SegmentationMask", "LabelMapping", "MaskArchive", "MaskFile", "save_mask",
                 "load_mask", "match_allowed_values"):  # fmt: skip
        assert name in medmask.__all__ and hasattr(medmask, name)


def test_0_1_3_modules_import_and_hold_the_same_objects() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MedmaskDeprecationWarning)
        from medmask.core.mapping import LabelMapping as CoreMapping
        from medmask.core.segmask import SegmentationMask as CoreMask
        from medmask.storage import MaskArchive as StorageArchive
        from medmask.storage import MaskFile as StorageFile
        from medmask.storage import load_mask as storage_load
        from medmask.storage import save_mask as storage_save
        from medmask.storage.archivefile import MaskArchive as ArchiveFileArchive
        from medmask.storage.maskfile import MaskFile as MaskFileFile
    assert CoreMask is SegmentationMask and CoreMapping is LabelMapping
    assert StorageArchive is MaskArchive is ArchiveFileArchive
    assert StorageFile is MaskFile is MaskFileFile
    assert (storage_load, storage_save) == (load_mask, save_mask)


@pytest.mark.parametrize(
    ("module", "says"),
    [("medmask.storage", "from medmask"), ("medmask.core.segmask", "from medmask")],
)
def test_old_modules_warn_once_with_the_new_place(module: str, says: str) -> None:
    code = (
        "import warnings; warnings.simplefilter('default');"
        f"import {module}; import importlib; importlib.reload(__import__('{module}'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stderr.count("MedmaskDeprecationWarning") == 1, result.stderr
    assert says in result.stderr


def test_old_method_names_warn_once_and_point_at_the_new_ones(tmp_path: Path) -> None:
    mask = blob_mask()
    with pytest.warns(MedmaskDeprecationWarning, match="use get_mask_by_names") as caught:
        mask.get_binary_mask_by_names("liver")
        mask.get_binary_mask_by_names("liver")
    assert len(caught) == 1
    with MaskArchive(tmp_path / "a.mska", "w", space=SPACE) as archive:
        with pytest.warns(MedmaskDeprecationWarning, match="add_mask"):
            archive.add_segmask(mask, "liver")
        with pytest.warns(MedmaskDeprecationWarning, match="load_mask"):
            assert archive.load_segmask("liver") == mask


def test_space_from_nifty_equals_from_nifti_on_axial_grids_and_is_right_on_others() -> None:
    import nibabel as nib

    from medmask.model.geometry import space_from_nifti_affine, voxel_positions

    image = nib.Nifti1Image(np.zeros((6, 5, 4), np.uint8), np.diag([0.8, 0.8, 2.5, 1.0]))
    with pytest.warns(MedmaskDeprecationWarning, match="space_from_nifti_affine"):
        old = Space.from_nifty(image)
    theirs = Space.from_nifti(image)
    for field in ("shape", "origin", "spacing", "x_orientation", "y_orientation"):
        assert np.array_equal(getattr(old, field), getattr(theirs, field)), field
    # voxel axes along y, z, x (the example): nibabel's affine is the truth
    affine = np.array([[0, 0, 2, 10], [1, 0, 0, 20], [0, 1.5, 0, 30], [0, 0, 0, 1.0]])
    permuted = nib.Nifti1Image(np.zeros((3, 4, 5), np.uint8), affine)
    space = Space.from_nifty(permuted)
    assert space.to_json() == space_from_nifti_affine(affine, (3, 4, 5)).to_json()
    index = np.array([[2, 3, 4], [1, 0, 0]])
    ras = nib.affines.apply_affine(affine, index)
    assert np.allclose(voxel_positions(space, index), ras * [-1, -1, 1])
    assert np.allclose(space.y_orientation, (0, 0, 1))
    assert np.allclose(space.z_orientation, (-1, 0, 0))
    assert not np.allclose(Space.from_nifti(permuted).z_orientation, (-1, 0, 0))  # their bug


# -- MaskFile and codec= ----------------------------------------------------------------------


def test_maskfile_writes_reads_and_reports_its_header(tmp_path: Path) -> None:
    mask = blob_mask()
    path = tmp_path / "liver.msk"
    with pytest.warns(MedmaskDeprecationWarning, match="save_mask"), MaskFile(path, "w") as out:
        out.write(mask)
    assert MaskFile(path).read() == mask
    header = MaskFile(path).header
    assert header["data_offset"] + header["data_length"] == path.stat().st_size
    with pytest.raises(FileNotFoundError):
        MaskFile(tmp_path / "missing.msk")
    with pytest.raises(OSError, match="read-only"):
        MaskFile(path).write(mask)
    # a file written by 0.1.3 itself: its header fields by 0.1.3's names
    legacy = LEGACY / "uint8_labels.msk"
    fields = struct.unpack_from("<4s2BB6Q7x", legacy.read_bytes())[4:]
    assert tuple(MaskFile(legacy).header.values()) == fields
    assert list(MaskFile(legacy).header)[:2] == ["space_offset", "space_length"]


def test_codec_keyword_takes_zstd_and_refuses_others(tmp_path: Path) -> None:
    mask = blob_mask()
    with pytest.warns(MedmaskDeprecationWarning, match="picks the codec"):
        mask.save(tmp_path / "a.msk", codec="zstd")
    warnings.simplefilter("ignore", MedmaskDeprecationWarning)  # (pytest restores filters)
    save_mask(mask, tmp_path / "b.msk", codec="zstd")
    assert load_mask(tmp_path / "a.msk", codec="ZSTD") == mask
    with MaskArchive(tmp_path / "c.mska", "w", space=SPACE, codec="zstd") as archive:
        archive.add_mask(mask, "liver")
    for call in (
        lambda: save_mask(mask, tmp_path / "d.msk", codec="lz4"),
        lambda: load_mask(tmp_path / "a.msk", codec="gzip"),
        lambda: MaskArchive(tmp_path / "c.mska", codec="blosc"),
        lambda: MaskFile(tmp_path / "a.msk", codec="lz4"),
    ):
        with pytest.raises(ValueError, match=r"Unknown codec '.+'\. Available: \['zstd'\]"):
            call()
    assert not (tmp_path / "d.msk").exists()


# -- MaskArchive.header and .mode ----------------------------------------------------------------


def test_archive_mode_and_header(tmp_path: Path) -> None:
    path = tmp_path / "h.mska"
    archive = MaskArchive(path, "w", space=SPACE)
    assert archive.mode == "w"
    archive.add_mask(blob_mask(), "liver")
    archive.add_mask(SegmentationMask(np.zeros((6, 5, 4), np.uint8), {"brain": 1}, SPACE), "brain")
    with pytest.warns(MedmaskDeprecationWarning, match="archive.commit"):
        header = archive.header
    assert header["mask_count"] == 2
    assert header["index_offset"] + header["index_length"] == path.stat().st_size
    assert header["data_offset"] + header["data_length"] == header["index_offset"]
    assert MaskArchive(path).mode == "r" and MaskArchive(path).header["mask_count"] == 2
    legacy = MaskArchive(LEGACY / "organs.mska")
    raw = struct.unpack_from("<4s2BB7Q27x", (LEGACY / "organs.mska").read_bytes())
    names = "space_offset space_length index_offset index_length data_offset data_length"
    assert legacy.header == dict(zip([*names.split(), "mask_count"], raw[4:], strict=True))
    assert legacy.header["mask_count"] == 3


# -- numpy integer labels -------------------------------------------------------------------------


def test_numpy_integer_labels_are_labels() -> None:
    arr = np.zeros((6, 5, 4), np.uint16)
    arr[0], arr[2], arr[4] = 3, 7, 300
    mask = SegmentationMask.lazy_init(bit_depth=16, space=SPACE)
    for label in np.unique(arr)[1:]:  # numpy integers, as 0.1.3 scripts pass them
        mask.add_label(arr == label, label, f"organ_{label}")
    assert mask.mapping.to_dict() == {"organ_3": 3, "organ_7": 7, "organ_300": 300}
    assert all(type(v) is int for v in mask.mapping.labels())
    assert np.array_equal(mask.data, arr)
    mapping = LabelMapping({"a": np.int64(1)})
    mapping["b"] = np.uint16(7)
    assert mapping.to_dict() == {"a": 1, "b": 7} and json.loads(mapping.to_json())["b"] == 7
    assert SegmentationMask(arr, {"x": np.int32(3), "y": np.uint8(7), "z": 300}).mapping["x"] == 3
    for bad in (True, np.bool_(True), 1.0, "1"):
        with pytest.raises(ValueError, match="integer"):
            LabelMapping({"a": bad})  # type: ignore[dict-item]


# -- add_label: a name in use moves; the caller's array stays --------------------------------------


def test_add_label_with_a_name_in_use_moves_the_name_and_keeps_the_voxels() -> None:
    mask = SegmentationMask.lazy_init(bit_depth=8, space=SPACE)
    first = np.zeros((6, 5, 4), bool)
    first[:2] = True
    second = np.zeros((6, 5, 4), bool)
    second[4:] = True
    mask.add_label(first, 1, "liver")
    with pytest.warns(MedmaskWarning, match=r"'liver' moved from label 1 to label 2.*'idx_1'"):
        mask.add_label(second, 2, "liver")  # 0.1.3: the name now means label 2
    assert mask.mapping["liver"] == 2
    assert np.array_equal(mask.get_mask_by_names("liver"), second)
    # 0.1.3 left label 1's voxels without a name; here they stay reachable
    assert np.array_equal(mask.get_mask_by_names("idx_1"), first)
    # when the new label covers the old one entirely, nothing is left to name
    with warnings.catch_warnings():
        warnings.simplefilter("error", MedmaskWarning)
        with pytest.warns(MedmaskWarning, match="overwrites"):
            mask.add_label(second, 3, "liver")
    assert "idx_2" not in mask.mapping and mask.mapping["liver"] == 3


def test_add_label_never_changes_the_callers_array() -> None:
    arr = np.zeros((6, 5, 4), np.uint8)
    arr[0] = 1
    before = arr.copy()
    mask = SegmentationMask(arr, {"a": 1}, SPACE)
    twin = SegmentationMask(arr, {"a": 1}, SPACE)
    region = np.zeros((6, 5, 4), bool)
    region[3] = True
    mask.add_label(region, 2, "b")
    assert np.array_equal(arr, before) and np.array_equal(twin.data, before)
    # nor a mapping it was given: masks do not rename each other's voxels
    names = LabelMapping({"a": 1})
    first, second = SegmentationMask(arr, names, SPACE), SegmentationMask(arr, names, SPACE)
    first.add_label(region, 2, "b")
    assert names.to_dict() == {"a": 1} and second.mapping.to_dict() == {"a": 1}
    # a mask made from another mask's read-only view can be edited too
    again = SegmentationMask(mask.data, mask.mapping.copy(), mask.space)
    again.add_label(np.roll(region, 1, axis=0), 3, "c")
    assert np.count_nonzero(again.data == 3) == region.sum()
    assert not np.any(mask.data == 3)


# -- get_binary_mask_by_labels ----------------------------------------------------------------


def test_get_binary_mask_by_labels_of_unknown_labels_is_empty() -> None:
    arr = np.zeros((6, 5, 4), np.uint8)
    arr[0], arr[1] = 1, 2
    mask = SegmentationMask(arr, {"a": 1, "b": 2}, SPACE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MedmaskDeprecationWarning)
        assert not mask.get_binary_mask_by_labels(9).any()  # 0.1.3: all False, no error
        assert np.array_equal(mask.get_binary_mask_by_labels([2, 9]), arr == 2)
        assert np.array_equal(mask.get_binary_mask_by_labels(np.uint8(1)), arr == 1)
    with pytest.raises(medmask.MaskNotFoundError):
        mask.get_mask_by_labels(9)  # medkit's own query says so


@given(
    values=hnp.arrays(
        st.sampled_from([np.uint8, np.uint16, np.uint32, np.bool_]),
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
    ),
    allowed=st.sets(st.integers(-3, 70_000), max_size=6),
)
def test_match_allowed_values_is_isin(values: np.ndarray, allowed: set[int]) -> None:
    expected = np.isin(values.astype(np.int64), sorted(allowed))
    assert np.array_equal(match_allowed_values(values, allowed), expected)


# -- hashable, as in 0.1.3 --------------------------------------------------------------------


def test_masks_and_mappings_are_hashable_by_identity() -> None:
    a, b = blob_mask(), blob_mask()
    assert a == b and len({a, b}) == 2  # 0.1.3: objects, not values, are keys
    names = {a: "first", b: "second"}
    assert names[a] == "first"
    m = LabelMapping({"liver": 1})
    assert {m: 1}[m] == 1 and hash(m) == hash(m)


# -- axis order -------------------------------------------------------------------------------


def test_both_axis_conventions() -> None:
    arr = np.zeros((6, 5, 4), np.uint8)
    arr[0, 0, 0] = 1
    as_given = SegmentationMask(arr, {"a": 1}, SPACE)  # 0.1.3: array shape == space.shape
    assert as_given.space.to_json() == SPACE.to_json()
    reversed_space = SPACE.reverse_axis_order()  # MedMask: the array is the Space reversed
    with pytest.warns(MedmaskDeprecationWarning, match="reverse_axis_order"):
        old_style = SegmentationMask(arr, {"a": 1}, reversed_space)
    assert old_style.space.to_json() == SPACE.to_json()  # the array's axes, in order
    cube = np.zeros((4, 5, 4), np.uint8)  # fits both ways: read the 0.1.3 way, silently
    both = Space(shape=(4, 5, 4), spacing=(1.0, 2.0, 3.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SegmentationMask(cube, {}, both).space.to_json() == both.to_json()
    with pytest.raises(ValueError, match="does not match"):
        SegmentationMask(arr, {"a": 1}, Space(shape=(5, 6, 4)))


def test_lazy_init_follows_the_first_label_in_medmask_order(tmp_path: Path) -> None:
    reversed_space = SPACE.reverse_axis_order()
    combined = SegmentationMask.lazy_init(bit_depth=8, space=reversed_space)
    region = np.zeros((6, 5, 4), bool)
    region[2] = True
    with pytest.warns(MedmaskDeprecationWarning, match="reversed"):
        combined.add_label(region, 1, "liver")
    assert combined.shape == (6, 5, 4) and combined.space.to_json() == SPACE.to_json()
    with pytest.raises(ValueError, match="shape"):
        combined.add_label(np.zeros((4, 5, 6), bool), 2, "spleen")  # no turning back
    with pytest.warns(MedmaskDeprecationWarning, match="shape="):
        assert SegmentationMask.lazy_init(8, shape_zyx=(4, 5, 6)).shape == (4, 5, 6)
    # an archive opened with the reversed Space takes the masks' geometry
    with MaskArchive(tmp_path / "old.mska", "w", space=reversed_space) as archive:
        archive.add_mask(combined, "combined")
    with MaskArchive(tmp_path / "old.mska") as archive:
        assert archive.space is not None and spaces_equal(archive.space, SPACE)
        assert np.array_equal(archive.load_mask("combined").data, combined.data)
    with MaskArchive(tmp_path / "old.mska", "a", space=reversed_space) as archive:
        archive.add_mask(blob_mask(), "liver")  # reopening the MedMask way is fine too
