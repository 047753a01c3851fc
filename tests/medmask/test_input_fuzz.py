"""Damaged inputs of every kind ``medmask pack`` reads: one clear error each, never a crash.

For NIfTI (.nii and .nii.gz), 3D Slicer's .seg.nrrd and DICOM SEG: every truncation of
the header (and of the whole file at steps), and seeded random byte flips. Each run of
``medmask pack`` either packs (a flip can leave a valid file) or exits 1 with exactly one
``medmask: error:`` line that names the file, no traceback and no archive left behind.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from highdicom_segs import descriptions, write_seg
from pydicom.sr.codedict import codes
from spacetransformer import Space

from medmask import MaskArchive, SegmentationMask
from medmask.cli import main
from medmask.sample.ct_series import write_ct_series

SPACE = Space(shape=(6, 5, 4), origin=(-10.0, 5.0, 30.0), spacing=(0.8, 0.9, 2.0))
FLIPS = 150


def mask_array() -> np.ndarray:
    array = np.zeros(tuple(SPACE.shape), np.uint8)
    array[1:4, 2:4, 1:3] = 1
    return array


def check_pack(path: Path, out: Path, capsys: pytest.CaptureFixture[str], what: str) -> bool:
    """Pack ``path``; True if it packed, else assert the one clean error line."""
    code = main(["--quiet", "pack", str(path), "-o", str(out), "--overwrite"])
    captured = capsys.readouterr()
    if code == 0:
        return True
    errors = [line for line in captured.err.splitlines() if line.startswith("medmask: error:")]
    assert code == 1, f"{what}: exit {code}\n{captured.err}"
    assert "Traceback" not in captured.err, f"{what}:\n{captured.err}"
    assert len(errors) == 1, f"{what}: {captured.err}"
    assert path.name in errors[0], f"{what}: the error does not name the file: {errors[0]}"
    assert not out.exists(), f"{what}: an archive was left after the error"
    return False


def damaged(raw: bytes, cuts: range, seed: int) -> list[tuple[str, bytes]]:
    """The whole file first (it must pack: else every damage test would pass by failing),
    then every cut, then seeded flips."""
    out = [("the whole file", raw)] + [(f"cut at {n}", raw[:n]) for n in cuts]
    rng = random.Random(seed)
    for i in range(FLIPS):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(min(len(data), max(cuts.stop, 64)))
            data[at] ^= 1 << rng.randrange(8)
        out.append((f"flip {i}", bytes(data)))
    return out


def run_all(
    samples: list[tuple[str, bytes]], name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> int:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    packed = 0
    for what, data in samples:
        path = folder / name
        path.write_bytes(data)
        done = check_pack(path, tmp_path / "out.mska", capsys, what)
        assert done or what != "the whole file", f"{name}: the undamaged file does not pack"
        packed += done
        (tmp_path / "out.mska").unlink(missing_ok=True)
    return packed


@pytest.mark.slow
def test_damaged_nifti_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = nib.Nifti1Image(mask_array(), np.diag([0.8, 0.9, 2.0, 1.0]))
    nib.save(image, tmp_path / "good.nii")
    raw = (tmp_path / "good.nii").read_bytes()
    packed = run_all(damaged(raw, range(0, 352 + 8), 1), "liver.nii", tmp_path, capsys)
    assert packed < FLIPS  # the header's checks caught most flips
    compressed = gzip.compress(raw, mtime=0)
    samples = damaged(compressed, range(0, len(compressed), 3), 2)
    run_all(samples, "liver.nii.gz", tmp_path, capsys)


@pytest.mark.slow
def test_damaged_seg_nrrd_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with MaskArchive(tmp_path / "a.mska", "w") as archive:
        archive.add_mask(SegmentationMask(mask_array(), {"liver": 1}, SPACE), "liver")
    assert (
        main(["export-slicer", str(tmp_path / "a.mska"), "-o", str(tmp_path / "g.seg.nrrd")]) == 0
    )
    raw = (tmp_path / "g.seg.nrrd").read_bytes()
    header_end = raw.index(b"\n\n") + 2
    run_all(damaged(raw, range(0, len(raw) + 1), 3), "x.seg.nrrd", tmp_path, capsys)
    assert header_end < len(raw)
    (tmp_path / "empty.seg.nrrd").write_bytes(b"")  # the issue's `: > e.seg.nrrd`
    assert not check_pack(tmp_path / "empty.seg.nrrd", tmp_path / "e.mska", capsys, "empty")


@pytest.mark.slow
def test_damaged_dicom_seg_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = write_ct_series(np.zeros(tuple(SPACE.shape), np.int16), SPACE, tmp_path / "ct")
    source = [pydicom.dcmread(p) for p in paths]
    liver = descriptions(["liver"], codes.SCT.Liver)
    write_seg(source, mask_array().transpose(2, 1, 0), liver, tmp_path / "good.dcm")
    raw = (tmp_path / "good.dcm").read_bytes()
    run_all(damaged(raw, range(132, len(raw), 5), 4), "seg.dcm", tmp_path, capsys)


def test_voxels_that_are_not_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An RGB NIfTI (a screenshot's colours, not labels) in a folder of masks or alone:
    one error naming the file and its voxel type (it was a traceback in a folder)."""
    folder = tmp_path / "case"
    folder.mkdir()
    rgb = np.zeros(tuple(SPACE.shape), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), folder / "liver.nii.gz")
    for path in (folder, folder / "liver.nii.gz"):
        assert not check_pack(path, tmp_path / "out.mska", capsys, str(path))
        assert main(["pack", str(path), "-o", str(tmp_path / "o.mska")]) == 1
        assert "liver.nii.gz: voxel type [('R', 'u1')" in capsys.readouterr().err
