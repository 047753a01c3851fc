"""NIfTI in and out: exact geometry, axis order, dtype and label names."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from medmask import (
    FormatError,
    MaskArchive,
    MedmaskError,
    MedmaskWarning,
    SegmentationMask,
    read_nifti_folder,
)
from medmask.exchange.nifti import read_voxels
from medmask.sample import MaskSample, sample_affine


def save(array: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    image = nib.Nifti1Image(array, affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    nib.save(image, path)
    return path


def test_per_organ_files_round_trip_exactly(mask_sample: MaskSample, tmp_path: Path) -> None:
    for name in ("liver", "aorta", "rib_left_3", "kidney_cyst_left"):
        source = mask_sample.masks_dir / f"{name}.nii.gz"
        mask = SegmentationMask.from_nifti(source)
        assert list(mask.mapping.items()) == [(name, 1)]
        out = tmp_path / f"{name}.nii.gz"
        mask.to_nifti(out)
        original, again = nib.load(source), nib.load(out)
        assert np.array_equal(again.affine, original.affine)
        assert again.get_data_dtype() == original.get_data_dtype()
        assert np.array_equal(np.asarray(again.dataobj), np.asarray(original.dataobj))


def test_multilabel_names_from_the_header_extension(mask_sample: MaskSample) -> None:
    mask = SegmentationMask.from_nifti(mask_sample.multilabel_path)
    truth = json.loads(mask_sample.truth_path.read_text(encoding="utf-8"))
    assert mask.mapping.to_dict() == truth["labels"]
    assert tuple(mask.space.shape) == tuple(truth["shape"]) == mask.shape


def test_names_from_a_sidecar_in_either_direction(tmp_path: Path) -> None:
    arr = np.zeros((4, 5, 6), np.uint8)
    arr[1, 1, 1], arr[2, 2, 2] = 1, 7
    path = save(arr, np.eye(4), tmp_path / "seg.nii.gz")
    (tmp_path / "seg.json").write_text('{"1": "liver", "7": "肾"}', encoding="utf-8")
    assert SegmentationMask.from_nifti(path).mapping.to_dict() == {"liver": 1, "肾": 7}
    (tmp_path / "seg.json").write_text('{"liver": 1, "肾": 7}', encoding="utf-8")
    assert SegmentationMask.from_nifti(path).mapping.to_dict() == {"liver": 1, "肾": 7}
    (tmp_path / "seg.json").write_text('{"liver": 1, "肾": 7}', encoding="utf-8-sig")
    assert SegmentationMask.from_nifti(path).mapping.to_dict() == {"liver": 1, "肾": 7}
    (tmp_path / "seg.json").write_text("[1]", encoding="utf-8")
    with pytest.raises(FormatError, match=r"seg\.json"):
        SegmentationMask.from_nifti(path)
    (tmp_path / "seg.json").write_text('{"1": "肝脏"}', encoding="gbk")  # Notepad's "ANSI"
    with pytest.raises(FormatError, match=r"seg\.json: label sidecar is not UTF-8 text"):
        SegmentationMask.from_nifti(path)


def test_explicit_mapping_and_image_objects(tmp_path: Path) -> None:
    arr = np.zeros((4, 5, 6), np.uint16)
    arr[0, 0, 0] = 2
    image = nib.Nifti1Image(arr, np.diag([0.5, 0.5, 3.0, 1.0]))
    mask = SegmentationMask.from_nifti(image, mapping={"vessel": 2})
    assert mask.dtype == np.uint16
    assert tuple(mask.space.spacing) == (0.5, 0.5, 3.0)


def test_unnamed_multilabel_is_named_with_a_warning(tmp_path: Path) -> None:
    arr = np.zeros((3, 3, 3), np.uint8)
    arr[0, 0, 0], arr[1, 1, 1] = 1, 2
    path = save(arr, np.eye(4), tmp_path / "labels.nii")
    with pytest.warns(MedmaskWarning, match="no name"):
        mask = SegmentationMask.from_nifti(path)
    assert mask.mapping.to_dict() == {"idx_1": 1, "idx_2": 2}


def test_suffixes_in_any_case_are_nifti(tmp_path: Path) -> None:
    """Windows keeps names as typed: LIVER.NII.GZ, Spleen.Nii.Gz (nibabel itself then looks
    for another file: "Spleen.nii.Gz"), kidney.NII."""
    arrays = {}
    for i, name in enumerate(("LIVER.NII.GZ", "Spleen.Nii.Gz", "kidney.NII")):
        arr = np.zeros((4, 4, 4), np.uint8)
        arr[i, 1:3, 1:3] = 1
        stored = save(arr, np.diag([0.5, 0.5, 2.0, 1.0]), tmp_path / f"x{i}.nii.gz")
        (tmp_path / "m").mkdir(exist_ok=True)
        if name.endswith(("GZ", "Gz")):
            stored.rename(tmp_path / "m" / name)
        else:
            nib.save(nib.load(stored), tmp_path / "x.nii")
            (tmp_path / "x.nii").rename(tmp_path / "m" / name)
        arrays[name.split(".")[0]] = arr
    masks = read_nifti_folder(tmp_path / "m")
    assert sorted(masks) == sorted(arrays)
    for name, arr in arrays.items():
        assert np.array_equal(masks[name].data, arr), name
        assert tuple(masks[name].space.spacing) == (0.5, 0.5, 2.0)


@pytest.mark.parametrize(("value", "dtype"), [(255, np.uint8), (2.0, np.float32), (7, np.int16)])
def test_a_mask_stored_with_another_value_is_named_by_its_file(
    tmp_path: Path, value: float, dtype: type
) -> None:
    arr = np.zeros((4, 4, 4), dtype)
    arr[1:3, 1:3, 1:3] = value  # one mask saved as 0/255 (image editors) or 0/2
    path = save(arr, np.eye(4), tmp_path / "liver.nii.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("error", MedmaskWarning)  # no "labels have no name"
        mask = SegmentationMask.from_nifti(path)
        folder = read_nifti_folder(tmp_path)
    assert mask.mapping.to_dict() == {"liver": int(value)}
    assert folder["liver"].mapping.to_dict() == {"liver": int(value)}
    assert np.array_equal(mask.data, np.asarray(nib.load(path).dataobj))
    (tmp_path / "out").mkdir()
    back = mask.to_nifti(tmp_path / "out" / "liver.nii.gz")  # the name survives the trip
    assert np.array_equal(np.asarray(back.dataobj), arr)
    assert SegmentationMask.from_nifti(tmp_path / "out" / "liver.nii.gz").mapping == mask.mapping
    arr[0, 0, 0] = 1  # two values: a label map, its labels unnamed as before
    save(arr, np.eye(4), tmp_path / "two.nii.gz")
    with pytest.warns(MedmaskWarning, match="no name"):
        assert len(SegmentationMask.from_nifti(tmp_path / "two.nii.gz").mapping) == 2


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((3, 3, 3), 0.5, np.float32), "0.5, not a whole number"),
        (np.zeros((3, 3, 3, 2), np.uint8), "3-D"),
        (np.full((3, 3, 3), -1, np.int16), r"holds -1; labels are >= 0"),
        (np.full((3, 3, 3), np.nan, np.float32), "NaN or infinite"),
    ],
)
def test_not_a_mask(tmp_path: Path, array: np.ndarray, message: str) -> None:
    path = save(array, np.eye(4), tmp_path / "bad.nii.gz")
    with pytest.raises(FormatError, match=rf"bad\.nii\.gz.*{message}"):
        SegmentationMask.from_nifti(path)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.int16, np.int32, np.uint16])
def test_every_mask_type_is_kept_as_stored(tmp_path: Path, dtype: type) -> None:
    arr = np.zeros((3, 3, 3), dtype)
    arr[1, 1, 1] = 100
    path = save(arr, np.eye(4), tmp_path / "m.nii.gz")
    mask = SegmentationMask.from_nifti(path, mapping={"x": 100})
    assert mask.dtype == dtype and mask.data[1, 1, 1] == 100
    mask.to_nifti(tmp_path / "again.nii.gz")  # and written back as it came
    again = nib.load(tmp_path / "again.nii.gz")
    assert again.get_data_dtype() == dtype
    assert np.array_equal(np.asarray(again.dataobj), arr)


def test_not_a_nifti_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.nii.gz"
    path.write_text("hello")
    with pytest.raises(FormatError, match=r"notes\.nii\.gz"):
        SegmentationMask.from_nifti(path)


def test_folder_reading(mask_sample: MaskSample, tmp_path: Path) -> None:
    masks = SegmentationMask.from_nifti_folder(mask_sample.masks_dir)
    assert list(masks) == sorted(mask_sample.names)
    assert masks["liver"].mapping.to_dict() == {"liver": 1}
    # the shared affine's Space is worked out once, but each mask has its own
    alone = SegmentationMask.from_nifti(mask_sample.masks_dir / "spleen.nii.gz")
    assert masks["spleen"].space == alone.space == masks["liver"].space
    assert masks["spleen"].space is not masks["liver"].space
    masks["liver"].space.origin = (1.0, 2.0, 3.0)  # one caller changing its mask's Space
    assert masks["spleen"].space == alone.space  # changes no other mask's
    odd = tmp_path / "odd"
    odd.mkdir()
    save(np.zeros((3, 3, 3), np.uint8), np.eye(4), odd / "a.nii.gz")
    save(np.zeros((3, 3, 4), np.uint8), np.eye(4), odd / "b.nii.gz")
    with pytest.raises(FormatError, match=r"b\.nii\.gz: geometry differs from a\.nii\.gz"):
        read_nifti_folder(odd)
    with pytest.raises(MedmaskError, match=r"no \.nii"):
        read_nifti_folder(tmp_path / "odd" / "..")


def test_two_files_of_one_mask_name_are_refused_not_one_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """liver.nii beside liver.nii.gz (a folder unpacked twice): both would be the mask
    'liver'; reading the folder kept the last, packing said 'use replace=True'. Now one
    error naming both files, and `medmask pack` writes no archive."""
    from medmask.cli import main

    folder = tmp_path / "masks"
    folder.mkdir()
    voxels = np.zeros((3, 3, 3), np.uint8)
    save(voxels, np.eye(4), folder / "liver.nii")
    voxels[1, 1, 1] = 1
    save(voxels, np.eye(4), folder / "liver.nii.gz")
    save(voxels, np.eye(4), folder / "spleen.nii.gz")
    message = r"liver\.nii\.gz: its mask name 'liver' is liver\.nii's too"
    with pytest.raises(FormatError, match=message):
        read_nifti_folder(folder)
    archive = tmp_path / "masks.mska"
    assert main(["pack", str(folder), "-o", str(archive)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "liver.nii's too" in err and "replace=True" not in err
    assert not archive.exists()


def sample_affine_with(
    sx: float, sy: float, sz: float, yaw: float, tilt: float, ox: float
) -> np.ndarray:
    base = sample_affine((2, 2, 2), (sx, sy, sz))
    c, s = math.cos(yaw), math.sin(yaw)
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ np.array(
        [[1, 0, 0], [0, math.cos(tilt), -math.sin(tilt)], [0, math.sin(tilt), math.cos(tilt)]]
    )
    out = np.eye(4)
    out[:3, :3] = rotation @ base[:3, :3]
    out[:3, 3] = (ox, -ox / 2, ox / 3)
    return out


affines = st.builds(
    sample_affine_with,
    *(st.floats(0.3, 5.0) for _ in range(3)),
    st.floats(-math.pi, math.pi),
    st.floats(-0.3, 0.3),
    st.floats(-500, 500),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.uint32]),
        shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=7),
        elements=st.integers(0, 9),
    ),
    affine=affines,
)
def test_property_round_trip_through_nifti(
    tmp_path: Path, array: np.ndarray, affine: np.ndarray
) -> None:
    path = save(array, affine, tmp_path / "p.nii.gz")
    labels = {f"label {v}": int(v) for v in np.unique(array) if v}
    mask = SegmentationMask.from_nifti(path, mapping=labels)
    mask.to_nifti(tmp_path / "q.nii.gz")
    again, original = nib.load(tmp_path / "q.nii.gz"), nib.load(path)
    assert np.array_equal(again.affine, original.affine)
    assert again.get_data_dtype() == array.dtype
    assert np.array_equal(np.asarray(again.dataobj), array)
    if labels:  # an unnamed all-zero file is named after its stem instead
        assert SegmentationMask.from_nifti(tmp_path / "q.nii.gz").mapping.to_dict() == labels


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dtype=st.sampled_from(["<u1", "<i2", ">i2", "<u2", ">u4", "<f4", ">f8"]),
    shape=st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9)),
    gz=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_voxels_are_read_as_nibabel_reads_them(
    tmp_path: Path, dtype: str, shape: tuple[int, int, int], gz: bool, seed: int
) -> None:
    """The chunked reader against nibabel (the reference), byte orders and files alike."""
    arr = np.random.default_rng(seed).integers(0, 100, size=shape).astype(dtype)
    path = tmp_path / ("v.nii.gz" if gz else "v.nii")
    image = nib.Nifti1Image(arr, np.eye(4))
    image.header.set_data_dtype(np.dtype(dtype))
    nib.save(image, path)
    loaded = nib.load(path)
    ours = read_voxels(loaded)
    reference = np.asanyarray(loaded.dataobj)
    assert ours.shape == reference.shape and np.array_equal(ours, reference)
    assert ours.dtype.newbyteorder("=") == reference.dtype.newbyteorder("=")


def test_scaled_and_truncated_voxel_data(tmp_path: Path) -> None:
    arr = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    image = nib.Nifti1Image(arr, np.eye(4))
    image.header.set_slope_inter(2.0, 0.0)  # scaled data: nibabel applies the scaling
    nib.save(image, tmp_path / "scaled.nii")
    assert np.array_equal(read_voxels(nib.load(tmp_path / "scaled.nii")), arr * 2.0)
    nib.save(nib.Nifti1Image(arr, np.eye(4)), tmp_path / "cut.nii")
    data = (tmp_path / "cut.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[:-10])
    with pytest.raises(FormatError, match=r"cut\.nii: cannot read the voxel data"):
        SegmentationMask.from_nifti(tmp_path / "cut.nii", mapping={})


def test_a_two_dimensional_file_is_one_slice(tmp_path: Path) -> None:
    """ITK writes a single-slice annotation as a 2-D NIfTI (dim[0] = 2): packed as a
    volume of one slice (it was refused); every voxel lies where SimpleITK put it, in
    the unpacked 3-D file too."""
    sitk = pytest.importorskip("SimpleITK")
    from medmask.ops.pack import pack
    from medmask.ops.unpack import unpack_archive

    array = np.zeros((9, 8), np.uint8)  # SimpleITK's order: rows (y), columns (x)
    array[3:6, 2:5], array[0, 7] = 1, 1
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.9))
    image.SetOrigin((-10.0, 20.0))
    angle = 0.3
    image.SetDirection((np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)))
    folder = tmp_path / "case"
    folder.mkdir()
    sitk.WriteImage(image, str(folder / "lesion.nii.gz"))
    assert nib.load(folder / "lesion.nii.gz").header["dim"][0] == 2
    pack(folder, tmp_path / "a.mska")
    unpack_archive(tmp_path / "a.mska", tmp_path / "out")
    back = sitk.ReadImage(str(tmp_path / "out" / "lesion.nii.gz"))
    assert back.GetSize() == (8, 9, 1)
    expected = sorted(
        (*image.TransformIndexToPhysicalPoint((int(i), int(j))), 0.0) for j, i in np.argwhere(array)
    )
    got = sorted(
        back.TransformIndexToPhysicalPoint((int(i), int(j), int(k)))
        for k, j, i in np.argwhere(sitk.GetArrayFromImage(back))
    )
    assert np.allclose(got, expected, atol=1e-4)


def test_a_file_compressed_or_not_against_its_name_is_read_by_its_bytes(tmp_path: Path) -> None:
    """An uncompressed NIfTI named .nii.gz (SimpleITK reads it; nibabel goes by the name
    and fails) and a gzipped one named .nii: read from their bytes, voxels and geometry
    as nibabel reads the same bytes under the right name."""
    import gzip

    from medmask.ops.pack import pack

    array = np.zeros((6, 5, 4), np.uint8)
    array[1:4, 2:4, 1:3] = 1
    affine = np.diag([0.8, 0.9, 2.5, 1.0])
    right = save(array, affine, tmp_path / "right.nii")
    folder = tmp_path / "case"
    folder.mkdir()
    (folder / "liver.nii.gz").write_bytes(right.read_bytes())
    (folder / "spleen.nii").write_bytes(gzip.compress(right.read_bytes()))
    with pytest.raises(Exception, match="not a gzip file"):
        nib.load(folder / "liver.nii.gz").get_fdata()
    result = pack(folder, tmp_path / "a.mska")
    assert sorted(result.masks) == ["liver", "spleen"]
    from medmask import MaskArchive

    with MaskArchive(tmp_path / "a.mska") as archive:
        for name in ("liver", "spleen"):
            mask = archive.load_mask(name)
            assert np.array_equal(np.asarray(mask.data), array)
            assert np.allclose(mask.to_nifti(tmp_path / f"{name}.nii").affine, affine)
    sitk = pytest.importorskip("SimpleITK")
    by_itk = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "liver.nii.gz")))
    assert np.array_equal(by_itk.transpose(2, 1, 0), array)


def test_one_volume_in_five_dimensions_is_a_mask_and_a_scan_of_many_has_a_grid(
    tmp_path: Path,
) -> None:
    """(X, Y, Z, 1, 1) - one component of one time point - is the volume (it was refused);
    several volumes stay refused, saying what they may be; a 4-D scan (fMRI, DWI, dynamic
    PET) has the grid of each volume for ``--like``."""
    from medmask.exchange.nifti import nifti_space

    affine = np.diag([0.8, 0.9, 2.0, 1.0])
    affine[:3, 3] = (-10.0, 20.0, 30.0)
    volume = np.zeros((4, 5, 6, 1, 1), np.uint8)
    volume[1, 2, 3] = 1
    nib.save(nib.Nifti1Image(volume, affine), tmp_path / "v.nii.gz")
    assert nib.load(tmp_path / "v.nii.gz").header["dim"][0] == 5
    mask = SegmentationMask.from_nifti(tmp_path / "v.nii.gz")
    assert mask.shape == (4, 5, 6) and np.argwhere(np.asarray(mask.data)).tolist() == [[1, 2, 3]]
    assert np.allclose(mask.space.to_nifti_affine(), affine)
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 1, 3), np.uint8), affine), tmp_path / "c.nii.gz")
    with pytest.raises(FormatError, match=r"c\.nii\.gz: .*got \(4, 5, 6, 1, 3\): 1 x 3 volumes"):
        SegmentationMask.from_nifti(tmp_path / "c.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 7), np.int16), affine), tmp_path / "dwi.nii.gz")
    space = nifti_space(tmp_path / "dwi.nii.gz")
    assert tuple(space.shape) == (4, 5, 6)
    assert np.allclose(space.to_nifti_affine(), affine)


def test_headers_nibabel_fixes_or_cannot_place_are_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A voxel size of 0 (pixdim[3] = 0): nibabel reads it as 1 mm and printed a bare line
    to stderr; pack said nothing of it. It is a warning naming the file now. A NaN in the
    header's geometry was "affine must be a finite 4x4 matrix, got shape (4, 4)"."""
    import struct

    from medmask.cli import main

    voxels = np.zeros((10, 10, 5), np.uint8)
    voxels[2:4, 2:4, 1:3] = 1
    image = nib.Nifti1Image(voxels, np.diag([1.0, 1.0, 2.0, 1.0]))
    image.set_qform(image.affine, 1)
    image.set_sform(None, 0)
    nib.save(image, tmp_path / "base.nii")
    header = bytearray((tmp_path / "base.nii").read_bytes())
    zero = header.copy()
    struct.pack_into("<f", zero, 88, 0.0)  # pixdim[3] (NIfTI-1: pixdim at byte 76)
    (tmp_path / "zero.nii").write_bytes(bytes(zero))
    nan = header.copy()
    struct.pack_into("<f", nan, 80, float("nan"))  # pixdim[1]
    (tmp_path / "nan.nii").write_bytes(bytes(nan))
    capsys.readouterr()
    assert main(["pack", str(tmp_path / "zero.nii"), "-o", str(tmp_path / "z.mska")]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"medmask: warning: {tmp_path / 'zero.nii'}: its header is not valid NIfTI: "
        "pixdim[1,2,3] should be non-zero; setting 0 dims to 1 (nibabel's fix)"
    ]
    with MaskArchive(tmp_path / "z.mska") as archive:
        assert archive.space is not None and tuple(archive.space.spacing) == (1.0, 1.0, 1.0)
    assert main(["pack", str(tmp_path / "nan.nii"), "-o", str(tmp_path / "n.mska")]) == 1
    assert "nan.nii: the affine holds values that are not finite numbers" in capsys.readouterr().err

    # a folder whose files share the header (TotalSegmentator copies the scan's): one line
    folder = tmp_path / "organs"
    folder.mkdir()
    for organ in ("liver", "spleen", "aorta"):
        (folder / f"{organ}.nii").write_bytes(bytes(zero))
    assert main(["pack", str(folder), "-o", str(tmp_path / "f.mska")]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "medmask: warning: 3 files (aorta.nii, ...): their headers are not valid NIfTI: "
        "pixdim[1,2,3] should be non-zero; setting 0 dims to 1 (nibabel's fix)"
    ]


def _two_forms(path: Path, shift: float, sform_code: int, affine: np.ndarray) -> Path:
    """A mask whose qform lies ``shift`` mm along x from its sform (``affine``)."""
    voxels = np.zeros((12, 10, 6), np.uint8)
    voxels[3:6, 2:5, 1:4] = 1
    image = nib.Nifti1Image(voxels, affine)
    qform = affine.copy()
    qform[0, 3] += shift
    image.set_qform(qform, code=1)
    image.set_sform(affine, code=sform_code)
    nib.save(image, path)
    return path


def test_a_file_whose_qform_and_sform_disagree_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tool that updates one of the two (MONAI Label#211, LST-AI#44) leaves a file that
    ITK places at its qform and nibabel (so medmask) at its sform. pack said nothing."""
    from medmask.cli import main
    from medmask.exchange.nifti import nifti_space, read_nifti

    sitk = pytest.importorskip("SimpleITK", reason="SimpleITK is in the test extra")

    oblique = sample_affine((12, 10, 6), (0.8, 0.8, 2.5))  # (float32 rounding: no warning)
    masks = tmp_path / "masks"
    masks.mkdir()
    for name in ("liver", "spleen", "kidney"):
        _two_forms(masks / f"{name}.nii.gz", 30.0, 2, oblique)
    agreeing = _two_forms(tmp_path / "agree.nii.gz", 0.0, 2, oblique)
    # the reader we did not write places the file at its qform: the two places are real
    itk = sitk.ReadImage(str(masks / "liver.nii.gz"))
    nib_origin = nib.load(masks / "liver.nii.gz").affine[:3, 3] * [-1, -1, 1]  # RAS -> LPS
    assert np.allclose(np.array(itk.GetOrigin()) - nib_origin, [-30.0, 0, 0], atol=1e-3)

    capsys.readouterr()
    assert main(["pack", str(masks), "-o", str(tmp_path / "m.mska")]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "qform" in line]
    assert len(warned) == 1  # one line for the folder, not one a file
    assert warned[0].startswith("medmask: warning: 3 files (kidney.nii.gz, ...): the qform")
    assert "up to 30 mm apart" in warned[0] and "medmask takes the sform" in warned[0]
    with MaskArchive(tmp_path / "m.mska") as archive:  # the sform's place, as nibabel's
        assert archive.space is not None
        assert np.allclose(archive.space.origin, nib_origin, atol=1e-4)

    with pytest.warns(MedmaskWarning, match=r"liver\.nii\.gz: the qform and the sform"):
        read_nifti(masks / "liver.nii.gz")
    with pytest.warns(MedmaskWarning, match="up to 30 mm apart"):
        nifti_space(masks / "liver.nii.gz")  # a scan given as --like
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_nifti(agreeing)  # both forms the same place: nothing said
        near = _two_forms(tmp_path / "near.nii.gz", 0.05, 2, oblique)  # < 0.1 voxel
        read_nifti(near)
        scanner = _two_forms(tmp_path / "scanner.nii.gz", 0.0, 1, oblique)
        read_nifti(scanner)
