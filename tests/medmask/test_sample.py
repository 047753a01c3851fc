"""The organ-mask generator: per-organ files, the multi-label file and the truth agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from numpy.typing import NDArray

from medmask.cli import main
from medmask.errors import MedmaskError
from medmask.exchange.nifti_labels import TOTALSEG_ECODE, decode_label_table
from medmask.sample import DECLARED_OVERLAPS, MaskSample, generate_masks


def load(path: Path) -> tuple[NDArray[Any], NDArray[np.float64]]:
    image = nib.load(path)
    return np.asarray(image.dataobj), image.affine


@pytest.fixture(scope="module")
def truth(mask_sample: MaskSample) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(mask_sample.truth_path.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def organs(mask_sample: MaskSample) -> dict[str, NDArray[np.uint8]]:
    return {name: load(mask_sample.masks_dir / f"{name}.nii.gz")[0] for name in mask_sample.names}


def test_totalsegmentator_layout(mask_sample: MaskSample, truth: dict[str, Any]) -> None:
    files = sorted(p.name for p in mask_sample.masks_dir.iterdir())
    assert len(files) == 117
    assert files == sorted(f"{name}.nii.gz" for name in truth["labels"])
    for name in ("liver", "aorta", "rib_left_1", "vertebrae_L3", "urinary_bladder"):
        assert name in truth["labels"]


def test_one_geometry_anisotropic_and_rotated(
    mask_sample: MaskSample, truth: dict[str, Any]
) -> None:
    expected = np.array(truth["affine"])
    for name in mask_sample.names:
        image = nib.load(mask_sample.masks_dir / f"{name}.nii.gz")
        assert image.shape == tuple(truth["shape"])
        assert image.get_data_dtype() == np.uint8
        np.testing.assert_allclose(image.affine, expected, rtol=0, atol=1e-5)
    zooms = np.linalg.norm(expected[:3, :3], axis=0)
    assert len({round(z, 3) for z in zooms}) > 1  # anisotropic
    off_diagonal = expected[:3, :3] - np.diag(np.diag(expected[:3, :3]))
    assert np.abs(off_diagonal).max() > 0.1  # rotated, not axis-aligned


def test_masks_are_binary_and_counted(
    organs: dict[str, NDArray[np.uint8]], truth: dict[str, Any]
) -> None:
    for name, array in organs.items():
        assert set(np.unique(array)) <= {0, 1}
        assert int(array.sum()) == truth["voxel_counts"][name], name


def test_variety_of_structures(organs: dict[str, NDArray[np.uint8]], truth: dict[str, Any]) -> None:
    counts = {name: int(a.sum()) for name, a in organs.items()}
    assert sorted(n for n, c in counts.items() if c == 0) == sorted(truth["empty"])
    assert len(truth["empty"]) >= 5
    assert counts["liver"] > 5_000  # large smooth organ
    assert sum(1 for c in counts.values() if 0 < c < 100) >= 5  # many small structures
    # tubes are thin: the aorta is far longer than wide, a rib arc fills little of its box
    aorta = np.argwhere(organs["aorta"])
    extent = aorta.max(axis=0) - aorta.min(axis=0) + 1
    assert extent.max() >= 4 * extent.min()
    rib = np.argwhere(organs["rib_left_5"])
    box = np.prod(rib.max(axis=0) - rib.min(axis=0) + 1)
    assert 0 < counts["rib_left_5"] < 0.15 * box


def test_only_declared_pairs_overlap(
    organs: dict[str, NDArray[np.uint8]], truth: dict[str, Any]
) -> None:
    stack = sum(a.astype(np.int32) for a in organs.values())
    shared = stack > 1
    assert stack.max() == 2
    declared = np.zeros_like(shared)
    for a, b in DECLARED_OVERLAPS:
        both = (organs[a] & organs[b]).astype(bool)
        entry = next(o for o in truth["overlaps"] if o["names"] == [a, b])
        assert int(both.sum()) == entry["voxels"] > 0
        declared |= both
    assert np.array_equal(shared, declared)


def test_multilabel_agrees_except_on_declared_overlaps(
    mask_sample: MaskSample, organs: dict[str, NDArray[np.uint8]], truth: dict[str, Any]
) -> None:
    multilabel, affine = load(mask_sample.multilabel_path)
    np.testing.assert_allclose(affine, np.array(truth["affine"]), atol=1e-5)
    losers = np.zeros(multilabel.shape, dtype=bool)
    for entry in truth["overlaps"]:
        a, b = entry["names"]
        both = (organs[a] & organs[b]).astype(bool)
        assert np.all(multilabel[both] == truth["labels"][entry["winner"]])
        losers |= both
    for name, array in organs.items():
        label = truth["labels"][name]
        disagree = (multilabel == label) != array.astype(bool)
        assert not np.any(disagree & ~losers), name
    assert int(np.count_nonzero(multilabel)) == int(sum(a.sum() for a in organs.values())) - int(
        losers.sum()
    )


def test_label_names_in_header_extension_and_sidecar(
    mask_sample: MaskSample, truth: dict[str, Any]
) -> None:
    image = nib.load(mask_sample.multilabel_path)
    extensions = [e for e in image.header.extensions if e.get_code() == TOTALSEG_ECODE]
    assert len(extensions) == 1
    names = decode_label_table(extensions[0].get_content())
    assert names == {label: name for name, label in truth["labels"].items()}
    sidecar = json.loads(
        mask_sample.multilabel_path.with_name("multilabel.json").read_text(encoding="utf-8")
    )
    assert {int(k): v for k, v in sidecar.items()} == names


def test_ct_on_the_same_grid(mask_sample: MaskSample, organs: dict[str, NDArray[np.uint8]]) -> None:
    ct, _ = load(mask_sample.ct_path)
    assert ct.dtype == np.int16
    assert ct.shape == organs["liver"].shape
    assert (
        ct[organs["vertebrae_L3"].astype(bool)].mean()
        > ct[organs["liver"].astype(bool)].mean() + 300
    )


def test_seeded(tmp_path: Path, mask_sample: MaskSample) -> None:
    again = generate_masks(tmp_path / "same")
    other = generate_masks(tmp_path / "other", seed=1)
    first = load(mask_sample.multilabel_path)[0]
    assert np.array_equal(first, load(again.multilabel_path)[0])
    assert not np.array_equal(first, load(other.multilabel_path)[0])


def test_shape_knob_and_bad_arguments(tmp_path: Path) -> None:
    sample = generate_masks(tmp_path / "tiny", shape=(40, 32, 24), spacing=(2.0, 2.0, 5.0))
    array, affine = load(sample.multilabel_path)
    assert array.shape == (40, 32, 24)
    np.testing.assert_allclose(np.linalg.norm(affine[:3, :3], axis=0), [2.0, 2.0, 5.0], atol=1e-6)
    with pytest.raises(ValueError, match="scale"):
        generate_masks(tmp_path / "x", scale="huge")
    with pytest.raises(ValueError, match="shape"):
        generate_masks(tmp_path / "y", shape=(4, 4, 4))
    with pytest.raises(MedmaskError, match="already exists"):
        generate_masks(tmp_path / "tiny", shape=(40, 32, 24))


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", str(tmp_path)]) == 0
    assert "117 masks" in capsys.readouterr().out
    assert main(["sample", str(tmp_path)]) == 1
    assert "already exists; --overwrite (overwrite=True) replaces it" in capsys.readouterr().err
    assert main(["sample", str(tmp_path), "--scale", "huge"]) == 2
    assert main(["sample"]) == 2
    assert main(["--version"]) == 0
