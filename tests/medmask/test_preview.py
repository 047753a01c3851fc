"""Preview pictures: radiological orientation from any affine, colours, legend, CT under."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image, ImageFont
from spacetransformer import Space

from medmask import (
    FormatError,
    MaskArchive,
    MaskNotFoundError,
    MedmaskError,
    MedmaskWarning,
    SegmentationMask,
)
from medmask.model.space import space_from_affine
from medmask.ops import fonts
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


def test_the_scan_under_the_masks_may_be_its_dicom_series(tmp_path: Path) -> None:
    """``--image`` a DICOM series folder (it took NIfTI only): the picture is the one drawn
    over SimpleITK's reading of the series written as NIfTI, pixel for pixel; a series of
    another grid is refused."""
    sitk = pytest.importorskip("SimpleITK")
    from medmask.exchange.dicom.source import read_series_voxels, read_source_series
    from medmask.sample.ct_series import write_ct_series

    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    space = Space(
        shape=(10, 12, 8), origin=(-20.0, 15.0, 30.0), spacing=(0.9, 0.8, 2.5),
        x_orientation=(c, s, 0.0), y_orientation=(-s, c, 0.0), z_orientation=(0.0, 0.0, 1.0),
    )  # fmt: skip
    hu = np.random.default_rng(5).integers(-1000, 1500, (10, 12, 8)).astype(np.int16)
    write_ct_series(hu, space, tmp_path / "ct")
    archive = tmp_path / "two.mska"
    with MaskArchive(archive, "w") as opened:
        liver = np.zeros((10, 12, 8), np.uint8)
        liver[2:6, 3:9, 2:6] = 1
        opened.add_mask(SegmentationMask(liver, {"liver": 1}, space), "liver")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "ct")))
    scan = reader.Execute()
    sitk.WriteImage(scan, str(tmp_path / "ct.nii.gz"))
    theirs = sitk.GetArrayFromImage(scan).transpose(2, 1, 0)  # (columns, rows, slices), HU
    voxels = read_series_voxels(read_source_series(tmp_path / "ct"))
    assert voxels.shape == theirs.shape and np.array_equal(voxels[...], theirs)
    assert np.array_equal(voxels[:, :, 3], theirs[:, :, 3])  # one file read
    assert np.array_equal(voxels[4], theirs[4]) and np.array_equal(voxels[:, 7], theirs[:, 7])
    render_preview(archive, tmp_path / "dicom.png", image=tmp_path / "ct", window=(0, 2000))
    render_preview(archive, tmp_path / "nifti.png", image=tmp_path / "ct.nii.gz", window=(0, 2000))
    dicom = np.asarray(Image.open(tmp_path / "dicom.png").convert("RGB"))
    assert np.array_equal(dicom, np.asarray(Image.open(tmp_path / "nifti.png").convert("RGB")))
    grey = (dicom[..., 0] == dicom[..., 1]) & (dicom[..., 1] == dicom[..., 2])
    assert len(np.unique(dicom[grey][:, 0])) > 50  # the scan's values, not black
    write_ct_series(np.zeros((10, 12, 7), np.int16), Space(shape=(10, 12, 7)), tmp_path / "x")
    with pytest.raises(FormatError, match=r"x: the series' grid .* differs from the archive"):
        render_preview(archive, tmp_path / "x.png", image=tmp_path / "x")


def small_archive_image(tmp_path: Path) -> Path:
    path = tmp_path / "other.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.int16), np.eye(4)), path)
    return path


def named_archive(tmp_path: Path, names: tuple[str, str]) -> Path:
    """Two masks side by side (the legend in one row), named ``names``."""
    space = space_from_affine(LPS, (10, 12, 8))
    path = tmp_path / "named.mska"
    tmp_path.mkdir(exist_ok=True)
    with MaskArchive(path, "w") as archive:
        for i, name in enumerate(names):
            data = np.zeros((10, 12, 8), np.uint8)
            data[1 + 5 * i : 4 + 5 * i, 3:8, 2:6] = 1
            archive.add_mask(SegmentationMask(data, {name: 1}, space), name)
    return path


def legend_texts(png: Path, count: int) -> list[np.ndarray]:
    """The pixels of each legend entry's text (light grey on the dark ground), cut between
    the colour squares of the legend's row."""
    picture = np.asarray(Image.open(png).convert("RGB")).astype(int)
    row = picture[-30:]  # the legend: one row at the bottom
    colours = [tuple(int(v) for v in c) for c in label_colours(count)]
    squares = [np.argwhere((row == c).all(axis=2))[:, 1] for c in colours]
    assert all(s.size for s in squares)
    ends = [int(s.min()) for s in squares[1:]] + [row.shape[1]]
    texts = [row[:, int(s.max()) + 2 : end, 0] > 120 for s, end in zip(squares, ends, strict=True)]
    return [t[:, : max(1, int(np.flatnonzero(t.any(axis=0)).max(initial=0)) + 1)] for t in texts]


CHINESE = ("肝脏", "脾脏")  # liver, spleen


def cjk_font() -> str | None:
    return next(
        (
            p
            for p in fonts.system_fonts("肝脏脾")
            if fonts.covers(ImageFont.truetype(p, 14), "肝脏脾")
        ),
        None,
    )


@pytest.mark.skipif(
    cjk_font() is None,
    reason="no font with Chinese letters here (Debian: apt-get install fonts-wqy-microhei)",
)
def test_chinese_names_are_drawn_in_a_font_that_has_their_letters(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", MedmaskWarning)
        result = render_preview(named_archive(tmp_path, CHINESE), tmp_path / "p.png")
    assert result.font is not None and not result.numbered
    first, second = legend_texts(tmp_path / "p.png", 2)
    # Pillow's own font draws both names as the same two empty boxes
    assert first.shape != second.shape or not np.array_equal(first, second)
    fc_list = shutil.which("fc-list")
    if fc_list is not None and result.font not in fonts.FONT_FILES:  # fontconfig's reading
        listed = subprocess.run(
            [fc_list, ":charset=809d 810f 813e", "file"], capture_output=True, text=True, check=True
        ).stdout
        assert result.font in listed


def test_names_no_font_here_can_draw_are_numbered_not_boxes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fonts, "system_fonts", lambda letters="": iter(()))  # no CJK fonts
    archive = named_archive(tmp_path, CHINESE)
    with pytest.warns(MedmaskWarning, match="no font here has the letters of 2 mask name"):
        result = render_preview(archive, tmp_path / "p.png")
    assert result.font is None
    assert result.numbered == {"[1]": "肝脏", "[2]": "脾脏"}
    first, second = legend_texts(tmp_path / "p.png", 2)
    assert not np.array_equal(first, second)  # "[1]" and "[2]", told apart
    font = ImageFont.load_default(size=14)
    assert fonts.covers(font, "[1] sagittal 2") and not fonts.covers(font, "肝")
    mixed = named_archive(tmp_path / "m", ("liver", "脾脏"))  # only the one it cannot draw
    with pytest.warns(MedmaskWarning, match="of 1 mask name"):
        assert render_preview(mixed, tmp_path / "m.png").numbered == {"[2]": "脾脏"}
    with pytest.raises(MedmaskError, match=r"nofont\.ttf: not a font file"):
        render_preview(archive, tmp_path / "x.png", font=tmp_path / "nofont.ttf")
