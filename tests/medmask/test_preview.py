"""Preview pictures: radiological orientation from any affine, colours, legend, CT under."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medmask import FormatError, MaskArchive, MaskNotFoundError, SegmentationMask
from medmask.model.space import space_from_affine
from medmask.ops.pack import pack
from medmask.ops.preview import display_slice, label_colours, render_preview
from medmask.sample import MaskSample

# Voxel axes running to the patient's left, posterior, superior (DICOM order), 2x1x3 mm.
LPS = np.diag([-2.0, -1.0, 3.0, 1.0])


def marker_volume(ijk: tuple[int, int, int] = (0, 0, 7)) -> np.ndarray:
    """One voxel set in a 10x12x8 grid."""
    volume = np.zeros((10, 12, 8), np.uint8)
    volume[ijk] = 1
    return volume


@pytest.mark.parametrize(
    ("affine", "corner"),
    [
        (LPS, (0, 0, 7)),  # voxel order L, P, S: the right-anterior corner is i=0, j=0
        (np.diag([2.0, 1.0, 3.0, 1.0]), (9, 11, 7)),  # R, A, S: it is i=9, j=11
    ],
)
def test_views_put_patient_right_left_and_anterior_superior_up(
    affine: np.ndarray, corner: tuple[int, int, int]
) -> None:
    volume = marker_volume(corner)  # the patient's far right, anterior, superior voxel
    # cuts count along R, A, S: the marker is at the last index of each
    axial = display_slice(volume, affine, "axial", 7)
    coronal = display_slice(volume, affine, "coronal", 11)
    sagittal = display_slice(volume, affine, "sagittal", 9)
    assert axial.shape == (12, 10)  # rows anterior->posterior, columns right->left
    assert tuple(np.argwhere(axial)[0]) == (0, 0)  # anterior top, patient right on the left
    assert coronal.shape == (8, 10)
    assert tuple(np.argwhere(coronal)[0]) == (0, 0)  # superior top, right on the left
    assert sagittal.shape == (8, 12)
    assert tuple(np.argwhere(sagittal)[0]) == (0, 0)  # superior top, anterior on the left
    assert not display_slice(volume, affine, "axial", 6).any()


def test_display_slice_reads_lazy_nifti_data(tmp_path: Path) -> None:
    volume = marker_volume()
    nib.save(nib.Nifti1Image(volume, LPS), tmp_path / "m.nii.gz")
    lazy = nib.load(tmp_path / "m.nii.gz")
    for view in ("sagittal", "coronal", "axial"):
        for cut in (0, 3):
            expected = display_slice(volume, LPS, view, cut)
            assert np.array_equal(display_slice(lazy.dataobj, LPS, view, cut), expected)
    with pytest.raises(ValueError, match="view must be"):
        display_slice(volume, LPS, "oblique", 0)


def test_colours_are_distinct() -> None:
    colours = label_colours(117)
    assert len({tuple(c) for c in colours}) == 117


def small_archive(tmp_path: Path) -> Path:
    space = space_from_affine(LPS, (10, 12, 8))
    right, left = np.zeros((10, 12, 8), np.uint8), np.zeros((10, 12, 8), np.uint8)
    right[1:4, 3:8, 2:6] = 1  # patient's right (low i in LPS)
    left[6:9, 3:8, 2:6] = 1
    path = tmp_path / "two.mska"
    with MaskArchive(path, "w") as archive:
        archive.add_mask(SegmentationMask(right, {"liver": 1}, space), "liver")
        archive.add_mask(SegmentationMask(left, {"spleen": 1}, space), "spleen")
    return path


def test_picture_shows_each_mask_in_its_colour_on_its_side(tmp_path: Path) -> None:
    result = render_preview(small_archive(tmp_path), tmp_path / "p.png")
    assert result.shown == ["liver", "spleen"]
    assert result.hidden == []
    picture = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    liver, spleen = (tuple(int(v) for v in c) for c in label_colours(2))
    liver_x = np.argwhere((picture == liver).all(axis=2))[:, 1]
    spleen_x = np.argwhere((picture == spleen).all(axis=2))[:, 1]
    assert liver_x.size and spleen_x.size
    # the first panel is sagittal (one side only); in the coronal and axial panels the
    # liver (patient right) is drawn left of the spleen; legend swatches sit at one x
    assert np.median(liver_x) < np.median(spleen_x)


def test_picture_over_the_ct_and_refusals(tmp_path: Path, mask_sample: MaskSample) -> None:
    archive = tmp_path / "organs.mska"
    pack(mask_sample.masks_dir, archive, level=3)
    result = render_preview(archive, tmp_path / "ct.png", image=mask_sample.ct_path)
    assert set(result.shown) | set(result.hidden) | set(result.empty) == set(mask_sample.names)
    truth = json.loads(mask_sample.truth_path.read_text(encoding="utf-8"))
    assert sorted(result.empty) == sorted(truth["empty"])
    assert not set(result.empty) & (set(result.shown) | set(result.hidden))
    picture = np.asarray(Image.open(tmp_path / "ct.png").convert("RGB"))
    grey = (picture[..., 0] == picture[..., 1]) & (picture[..., 1] == picture[..., 2])
    assert len(np.unique(picture[grey][:, 0])) > 50  # CT grey levels under the masks
    with pytest.raises(FormatError, match="differs from the archive"):
        render_preview(archive, tmp_path / "x.png", image=small_archive_image(tmp_path))
    with pytest.raises(MaskNotFoundError, match="nope"):
        render_preview(archive, tmp_path / "x.png", names=["nope"])


def small_archive_image(tmp_path: Path) -> Path:
    path = tmp_path / "other.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.int16), np.eye(4)), path)
    return path
