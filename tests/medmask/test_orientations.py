"""Geometry in every orientation, through every path, judged by readers we did not write.

Each grid is defined by its voxel-to-LPS matrix, written out by hand in
medmask.sample.grids (never computed by medmask.model.geometry). Masks go in through
files other libraries write (nibabel, pynrrd, highdicom), through the medmask command
line, and out again; SimpleITK, slicerio and highdicom read what comes out. The test:
every voxel of every mask lies at the same world position (mm) before and after. A
round trip through our own reader and writer would hide a conversion both share
(spacetransformer's RAS<->LPS, issue 26), so no comparison here uses medmask's geometry
code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import nibabel as nib
import nrrd
import numpy as np
import pydicom
import pytest
from highdicom_segs import descriptions, write_seg
from spacetransformer import Space

from medmask.cli import main
from medmask.sample.ct_series import write_ct_series
from medmask.sample.grids import ORIENTATIONS

sitk = pytest.importorskip("SimpleITK", reason="SimpleITK is in the test extra")
slicerio = pytest.importorskip("slicerio", reason="slicerio is in the test extra")

RAS = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS <-> RAS: the first two world coordinates change sign


SHAPE = (7, 9, 6)
SPACING = np.array([0.8, 1.25, 2.5])
ORIGIN = np.array([-31.5, 12.25, 40.0])


@dataclass(frozen=True)
class Grid:
    name: str
    lps: np.ndarray  # 4x4 voxel -> LPS

    @property
    def space(self) -> Space:
        """The grid as a Space, built from the numbers (not through medmask.model.geometry)."""
        d = self.lps[:3, :3] / SPACING
        return Space(
            shape=SHAPE, origin=tuple(ORIGIN), spacing=tuple(SPACING),
            x_orientation=tuple(d[:, 0]), y_orientation=tuple(d[:, 1]),
            z_orientation=tuple(d[:, 2]),
        )  # fmt: skip


@pytest.fixture(params=sorted(ORIENTATIONS))
def grid(request: pytest.FixtureRequest) -> Grid:
    matrix = np.eye(4)
    matrix[:3, :3] = ORIENTATIONS[request.param] * SPACING
    matrix[:3, 3] = ORIGIN
    return Grid(request.param, matrix)


def masks() -> dict[str, np.ndarray]:
    """Three non-overlapping asymmetric masks (every axis and direction tells)."""
    rng = np.random.default_rng(26)
    labels = rng.integers(0, 4, SHAPE)
    labels[0, 0, 0], labels[6, 0, 0], labels[0, 8, 0], labels[0, 0, 5] = 1, 2, 3, 1
    return {
        name: (labels == i + 1).astype(np.uint8)
        for i, name in enumerate(("liver", "肝脏", "spleen"))
    }


def world(matrix: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Rows of world positions, sorted, of voxel indices (n, 3) under a 4x4 matrix."""
    points = indices @ matrix[:3, :3].T + matrix[:3, 3]
    return points[np.lexsort(np.round(points, 3).T[::-1])]


def same_places(a: np.ndarray, b: np.ndarray, what: str) -> None:
    assert a.shape == b.shape, f"{what}: {len(a)} voxels, expected {len(b)}"
    worst = float(np.abs(a - b).max()) if len(a) else 0.0
    assert worst < 1e-3, f"{what}: voxels up to {worst:.2f} mm from where they were"


def sitk_world(path: Path, label: int | None = None) -> np.ndarray:
    """World positions (LPS) of the nonzero (or ``label``) voxels, as SimpleITK reads them."""
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image)  # axes k, j, i
    chosen = array != 0 if label is None else array == label
    index = np.argwhere(chosen)[:, ::-1].astype(np.float64)
    matrix = np.eye(4)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    matrix[:3, :3] = direction * np.array(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return world(matrix, index)


def truth(grid: Grid, mask: np.ndarray) -> np.ndarray:
    return world(grid.lps, np.argwhere(mask).astype(np.float64))


def write_nifti_folder(grid: Grid, folder: Path) -> None:
    folder.mkdir()
    for name, mask in masks().items():
        nib.save(nib.Nifti1Image(mask, RAS @ grid.lps), folder / f"{name}.nii.gz")


def cli(*argv: str | Path) -> None:
    assert main([str(a) for a in argv]) == 0, argv


def test_nifti_to_archive_to_nifti(grid: Grid, tmp_path: Path) -> None:
    write_nifti_folder(grid, tmp_path / "in")
    cli("pack", tmp_path / "in", "-o", tmp_path / "a.mska")
    cli("unpack", tmp_path / "a.mska", "-o", tmp_path / "out")
    for name, mask in masks().items():
        expected = truth(grid, mask)
        same_places(sitk_world(tmp_path / "in" / f"{name}.nii.gz"), expected, "SimpleITK, input")
        same_places(sitk_world(tmp_path / "out" / f"{name}.nii.gz"), expected, name)


def test_label_map_to_archive_to_label_map(grid: Grid, tmp_path: Path) -> None:
    labels = np.zeros(SHAPE, np.uint8)
    for i, mask in enumerate(masks().values()):
        labels[mask != 0] = i + 1
    nib.save(nib.Nifti1Image(labels, RAS @ grid.lps), tmp_path / "labels.nii.gz")
    cli("pack", tmp_path / "labels.nii.gz", "-o", tmp_path / "a.mska")
    cli("unpack", tmp_path / "a.mska", "--multilabel", tmp_path / "out.nii.gz")
    written = nib.load(tmp_path / "out.nii.gz")
    values = np.asarray(written.dataobj)
    for i, mask in enumerate(masks().values()):
        label = int(values[tuple(np.argwhere(mask)[0])])
        assert label != 0
        same_places(sitk_world(tmp_path / "out.nii.gz", label), truth(grid, mask), f"label {i}")


def test_nifti_to_archive_to_seg_nrrd(grid: Grid, tmp_path: Path) -> None:
    write_nifti_folder(grid, tmp_path / "in")
    cli("pack", tmp_path / "in", "-o", tmp_path / "a.mska")
    out = tmp_path / "out.seg.nrrd"
    cli("export-slicer", tmp_path / "a.mska", "-o", out)
    read = slicerio.read_segmentation(str(out))  # pynrrd inside: names lose non-ASCII text
    header = sitk.ReadImage(str(out))  # teem: the header's bytes as UTF-8
    names = [header.GetMetaData(f"Segment{i}_Name") for i in range(len(read["segments"]))]
    assert sorted(names) == sorted(masks())
    for name, mask in masks().items():
        segment = read["segments"][names.index(name)]
        voxels = read["voxels"] == segment["labelValue"]
        got = world(np.asarray(read["ijkToLPS"]), np.argwhere(voxels).astype(np.float64))
        same_places(got, truth(grid, mask), f"slicerio, {name}")
        same_places(sitk_world(out, segment["labelValue"]), truth(grid, mask), f"SimpleITK, {name}")


ASCII_NAMES = ("liver", "kidney", "spleen")


NRRD_WORLDS = {  # NRRD's patient spaces, as the signs taking LPS to each
    "left-posterior-superior": np.eye(4),
    "right-anterior-superior": RAS,
    "left-anterior-superior": np.diag([1.0, -1.0, 1.0, 1.0]),
}


@pytest.mark.parametrize("world_name", sorted(NRRD_WORLDS))
def test_seg_nrrd_to_archive_to_nifti(grid: Grid, tmp_path: Path, world_name: str) -> None:
    labels = np.zeros(SHAPE, np.uint8)
    header: dict[str, object] = {}
    for i, mask in enumerate(masks().values()):
        labels[mask != 0] = i + 1
        header[f"Segment{i}_Name"] = ASCII_NAMES[i]  # Unicode names: test_slicer.py
        header[f"Segment{i}_ID"] = f"Segment_{i + 1}"
        header[f"Segment{i}_LabelValue"] = str(i + 1)
        header[f"Segment{i}_Layer"] = "0"
    matrix = NRRD_WORLDS[world_name] @ grid.lps
    header.update(
        {
            "space": world_name,
            "space directions": matrix[:3, :3].T,
            "space origin": matrix[:3, 3],
            "kinds": ["domain"] * 3,
        }
    )
    source = tmp_path / "in.seg.nrrd"
    nrrd.write(str(source), labels, header, index_order="F")
    for i, mask in enumerate(masks().values()):  # what SimpleITK makes of the input
        same_places(sitk_world(source, i + 1), truth(grid, mask), f"SimpleITK, input label {i}")
    cli("pack", source, "-o", tmp_path / "a.mska")
    cli("unpack", tmp_path / "a.mska", "-o", tmp_path / "out")
    for name, mask in zip(ASCII_NAMES, masks().values(), strict=True):
        same_places(sitk_world(tmp_path / "out" / f"{name}.nii.gz"), truth(grid, mask), name)


def test_nrrd_label_map_to_archive_to_nifti(grid: Grid, tmp_path: Path) -> None:
    """A plain NRRD label map as SimpleITK (ITK's NRRD writer, as Slicer's label map
    volumes and MITK's segmentations are written) writes it, in every orientation, its
    labels named by a JSON sidecar."""
    labels = np.zeros(SHAPE, np.uint8)
    for i, mask in enumerate(masks().values()):
        labels[mask != 0] = i + 1
    image = sitk.GetImageFromArray(labels.transpose(2, 1, 0))  # SimpleITK's axes: k, j, i
    image.SetSpacing(tuple(SPACING))
    image.SetOrigin(tuple(ORIGIN))
    image.SetDirection(tuple((grid.lps[:3, :3] / SPACING).ravel()))
    source = tmp_path / "labels.nrrd"
    sitk.WriteImage(image, str(source))
    (tmp_path / "labels.json").write_text(
        '{"1": "liver", "2": "kidney", "3": "spleen"}', encoding="utf-8"
    )
    for i, mask in enumerate(masks().values()):  # (the file holds what was meant)
        same_places(sitk_world(source, i + 1), truth(grid, mask), f"SimpleITK, input label {i}")
    cli("pack", source, "-o", tmp_path / "a.mska")
    cli("unpack", tmp_path / "a.mska", "-o", tmp_path / "out")
    for name, mask in zip(ASCII_NAMES, masks().values(), strict=True):
        same_places(sitk_world(tmp_path / "out" / f"{name}.nii.gz"), truth(grid, mask), name)


def ct_series(grid: Grid, folder: Path) -> list[Path]:
    volume = np.zeros(SHAPE, np.int16)
    return write_ct_series(volume, grid.space, folder, seed=f"orientation-{grid.name}")


def highdicom_world(path: Path) -> dict[str, np.ndarray]:
    """Per segment label: the world positions of its voxels as highdicom reads the SEG."""
    seg = hd.seg.segread(path)
    out = {}
    for number in seg.segment_numbers:
        label = seg.get_segment_description(number).segment_label
        volume = seg.get_volume(segment_numbers=[number], combine_segments=False)
        index = np.argwhere(volume.array[..., 0] != 0).astype(np.float64)
        out[label] = world(np.asarray(volume.affine), index)
    return out


def test_nifti_to_archive_to_dicom_seg(grid: Grid, tmp_path: Path) -> None:
    write_nifti_folder(grid, tmp_path / "in")
    ct_series(grid, tmp_path / "ct")
    cli("pack", tmp_path / "in", "-o", tmp_path / "a.mska")
    cli("export-seg", tmp_path / "a.mska", "--source", tmp_path / "ct", "-o", tmp_path / "s.dcm")
    read = highdicom_world(tmp_path / "s.dcm")
    for name, mask in masks().items():
        same_places(read[name], truth(grid, mask), f"highdicom, {name}")


def test_dicom_seg_of_highdicom_to_archive_to_nifti(grid: Grid, tmp_path: Path) -> None:
    paths = ct_series(grid, tmp_path / "ct")
    series = [pydicom.dcmread(p) for p in paths]
    names = list(masks())
    stacked = np.stack([masks()[n].transpose(2, 1, 0) for n in names], axis=-1)  # k, row, col
    write_seg(series, stacked, descriptions(names), tmp_path / "s.dcm")
    read = highdicom_world(tmp_path / "s.dcm")
    cli("pack", tmp_path / "s.dcm", "--source", tmp_path / "ct", "-o", tmp_path / "a.mska")
    cli("unpack", tmp_path / "a.mska", "-o", tmp_path / "out")
    for name, mask in masks().items():
        same_places(read[name], truth(grid, mask), f"highdicom, input {name}")
        same_places(sitk_world(tmp_path / "out" / f"{name}.nii.gz"), read[name], name)
    # without --source: onto the SEG's own frames, the same places
    cli("pack", tmp_path / "s.dcm", "-o", tmp_path / "own.mska")
    cli("unpack", tmp_path / "own.mska", "-o", tmp_path / "own")
    for name in names:
        same_places(sitk_world(tmp_path / "own" / f"{name}.nii.gz"), read[name], f"own {name}")


def test_nifti_to_archive_to_rtstruct_and_back(grid: Grid, tmp_path: Path) -> None:
    """RTSTRUCT contours on the series' own planes: OpenCV, in world space, finds every
    voxel centre of each mask inside its ROI's contours and no other; packed back (our
    reader) and unpacked, SimpleITK finds every voxel where it was."""
    from contour_world import inside, roi_contours

    write_nifti_folder(grid, tmp_path / "in")
    ct_series(grid, tmp_path / "ct")
    cli("pack", tmp_path / "in", "-o", tmp_path / "a.mska")
    rs = tmp_path / "rs.dcm"
    cli("export-rtstruct", tmp_path / "a.mska", "--source", tmp_path / "ct", "-o", rs)
    contours = roi_contours(rs)
    every = np.argwhere(np.ones(SHAPE, bool)).astype(np.float64)
    centres = every @ grid.lps[:3, :3].T + grid.lps[:3, 3]
    for name, mask in masks().items():
        assert np.array_equal(inside(contours[name], centres), mask.reshape(-1) != 0), name
    cli("pack", rs, "-o", tmp_path / "b.mska", "--source", tmp_path / "ct")
    cli("unpack", tmp_path / "b.mska", "-o", tmp_path / "out")
    for name, mask in masks().items():
        same_places(sitk_world(tmp_path / "out" / f"{name}.nii.gz"), truth(grid, mask), name)
