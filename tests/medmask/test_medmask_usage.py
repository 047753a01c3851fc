"""MedMask users' code, as written, on real TotalSegmentator output and on generated masks."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from spacetransformer import Space

from medmask import LabelMapping, MaskArchive, OverlapWarning, SegmentationMask
from medmask.sample import MaskSample


def organ_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.nii.gz"))


def run_usage_as_written(files: list[Path], tmp_path: Path) -> None:
    """The README usage of MedMask, then the checks that it lost nothing."""
    path = files[0]
    space = Space.from_nifti(nib.load(path))
    arrays = {p.name.removesuffix(".nii.gz"): np.asarray(nib.load(p).dataobj) for p in files}

    # per-organ masks round-trip exactly through .msk and NIfTI
    for name, arr in list(arrays.items())[:12]:
        mask = SegmentationMask(arr, {name: 1}, space)
        mask = SegmentationMask(mask_array=arr, mapping={name: 1}, space=space)
        assert mask.bit_depth == 8
        mask.save(tmp_path / "one.msk")
        again = SegmentationMask.load(tmp_path / "one.msk")
        assert np.array_equal(again.data, arr)
        assert again.mapping == mask.mapping
        via_nifti = SegmentationMask.from_nifti(path.parent / f"{name}.nii.gz")
        assert np.array_equal(via_nifti.data, arr)
        m = mask.mapping
        assert (m[name], getattr(m, name), m.inverse(1), m.has_label(1), len(m)) == (
            1,
            1,
            name,
            True,
            1,
        )
        assert LabelMapping.from_json(m.to_json()) == m
        assert np.array_equal(mask.to_binary(), arr > 0)

    # the archive as MedMask's README builds it: one uint8 0/1 mask per organ
    archive = MaskArchive(str(tmp_path / "organs.mska"), mode="w", space=space)
    for name, arr in arrays.items():
        archive.add_mask(SegmentationMask(arr, {name: 1}, space), name)
    archive.close()
    archive = MaskArchive(str(tmp_path / "organs.mska"), mode="r")
    assert archive.all_names() == list(arrays)
    for name, arr in arrays.items():
        assert np.array_equal(archive.load_mask(name).data, arr), name  # overlaps included
    assert set(archive.read_all_mapping()) == set(arrays)
    archive.close()

    # the combined mask: warnings name exactly the overlaps the data has
    combined = SegmentationMask.lazy_init(bit_depth=8, space=space)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for label, (name, arr) in enumerate(arrays.items(), start=1):
            combined.add_label(arr > 0, label, name)
    reported = {(w.message.new_label, w.message.old_label): w.message.voxels for w in caught}
    assert all(issubclass(w.category, OverlapWarning) for w in caught)

    labels = {name: label for label, name in enumerate(arrays, start=1)}
    present = {name: arr for name, arr in arrays.items() if arr.any()}
    depth = np.zeros(space.shape, dtype=np.uint8)
    for arr in present.values():
        depth += arr > 0
    shared = tuple(np.nonzero(depth > 1))
    expected: dict[tuple[int, int], int] = {}
    holders = np.array([arr[shared] > 0 for arr in arrays.values()])  # masks x shared voxels
    for column in holders.T:
        owners = [int(i) + 1 for i in np.flatnonzero(column)]
        for earlier, later in itertools.pairwise(owners):
            expected[(later, earlier)] = expected.get((later, earlier), 0) + 1
    assert reported == expected

    # outside the overlaps every voxel carries its one mask's label, or 0
    result = combined.get_all_masks()
    single = depth <= 1
    owner = np.zeros(result.shape, dtype=np.int64)
    for name, arr in present.items():
        owner[arr > 0] = labels[name]
    assert np.array_equal(result[single], owner[single])
    # and on overlaps the last added label wins, as in MedMask
    assert np.array_equal(result[~single], owner[~single])
    for name in list(present)[:5]:
        assert np.array_equal(combined.get_mask_by_names(name)[single], (arrays[name] > 0)[single])
    union = combined.get_mask_by_names(list(arrays)[:5])
    assert np.array_equal(union, np.isin(result, [labels[n] for n in list(arrays)[:5]]))


def test_usage_on_generated_masks(mask_sample: MaskSample, tmp_path: Path) -> None:
    run_usage_as_written(organ_files(mask_sample.masks_dir), tmp_path)


@pytest.mark.shared_data
def test_usage_on_totalsegmentator_s0000(shared_data: Path, tmp_path: Path) -> None:
    files = organ_files(shared_data / "totalseg_s0000")
    assert len(files) == 117
    run_usage_as_written(files, tmp_path)
