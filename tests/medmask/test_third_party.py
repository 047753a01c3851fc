"""Files other tools wrote (``../shared/data/third_party``) through medmask and back.

highdicom's SEGs over pydicom's CT2 series, rt-utils' oblique CT slices, slicerio's
.seg.nrrd as 3D Slicer writes it: packed, unpacked or exported by the medmask command
line, then read by the tool that wrote them (or SimpleITK), voxel positions compared in
millimetres. Skipped when the shared data is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from highdicom_segs import descriptions, write_seg

from medmask import MaskArchive
from medmask.cli import main

sitk = pytest.importorskip("SimpleITK", reason="SimpleITK is in the test extra")
slicerio = pytest.importorskip("slicerio", reason="slicerio is in the test extra")

pytestmark = pytest.mark.shared_data


def cli(*argv: str | Path) -> None:
    assert main([str(a) for a in argv]) == 0, argv


def world(matrix: np.ndarray, indices: np.ndarray) -> np.ndarray:
    points = np.asarray(indices, np.float64) @ np.asarray(matrix)[:3, :3].T + matrix[:3, 3]
    return points[np.lexsort(np.round(points, 3).T[::-1])]


def same_places(a: np.ndarray, b: np.ndarray, what: str) -> None:
    assert a.shape == b.shape, f"{what}: {len(a)} voxels, expected {len(b)}"
    assert len(a), f"{what}: no voxels to compare"
    worst = float(np.abs(a - b).max())
    assert worst < 1e-3, f"{what}: voxels up to {worst:.3f} mm from where they were"


def sitk_world(path: Path, label: int | None = None) -> np.ndarray:
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image)
    chosen = array != 0 if label is None else array == label
    matrix = np.eye(4)
    matrix[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return world(matrix, np.argwhere(chosen)[:, ::-1])


def highdicom_world(path: Path, threshold: float = 0.5) -> dict[str, np.ndarray]:
    seg = hd.seg.segread(path)
    out = {}
    for number in seg.segment_numbers:
        label = seg.get_segment_description(number).segment_label
        volume = seg.get_volume(segment_numbers=[number], combine_segments=False)
        chosen = volume.array[..., 0] >= threshold
        out[label] = world(np.asarray(volume.affine), np.argwhere(chosen))
    return out


@pytest.fixture
def ct2(tmp_path: Path) -> Path:
    """pydicom's CT2 series (the source of highdicom's test SEGs), copied into a folder."""
    first = Path(pydicom.data.get_testdata_file("dicomdirtests/77654033/CT2/17136"))
    folder = tmp_path / "ct2"
    shutil.copytree(first.parent, folder)
    return folder


SEGS = [
    "seg_image_ct_binary.dcm",
    "seg_image_ct_binary_overlap.dcm",
    "seg_image_ct_binary_fractional.dcm",
    "seg_image_ct_true_fractional.dcm",
]


@pytest.mark.parametrize("name", SEGS)
def test_highdicom_segs_through_pack_unpack_and_export(
    shared_data: Path, ct2: Path, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seg = shared_data / "third_party" / "highdicom" / name
    expected = highdicom_world(seg)
    # CT2's slices lie at -99.48, 103.02, 104.27, 105.52 mm: no regular grid, said so
    assert main(["pack", str(seg), "--source", str(ct2), "-o", str(tmp_path / "x.mska")]) == 1
    assert "is not one regular grid of voxels" in capsys.readouterr().err
    # the SEG's frames (the last three slices) are one: read onto them
    cli("pack", seg, "-o", tmp_path / "a.mska")
    cli("unpack", tmp_path / "a.mska", "-o", tmp_path / "out")
    for label, points in expected.items():
        same_places(sitk_world(tmp_path / "out" / f"{label}.nii.gz"), points, f"{name}: {label}")
    cli("export-slicer", tmp_path / "a.mska", "-o", tmp_path / "a.seg.nrrd")
    read = slicerio.read_segmentation(str(tmp_path / "a.seg.nrrd"))
    for segment in read["segments"]:
        voxels = np.asarray(read["voxels"])
        layer = voxels if voxels.ndim == 3 else voxels[segment["layer"]]  # layers first
        got = world(read["ijkToLPS"], np.argwhere(layer == segment["labelValue"]))
        same_places(got, expected[segment["name"]], f"{name} in slicerio")
    if min(float(p[:, 2].min()) for p in expected.values()) < 0:
        return  # frames on the far first slice too: no regular series to export onto
    regular = tmp_path / "regular"  # the series without its far first slice
    shutil.copytree(ct2, regular)
    (regular / "17106").unlink()
    cli("export-seg", tmp_path / "a.mska", "--source", regular, "-o", tmp_path / "back.dcm")
    back = highdicom_world(tmp_path / "back.dcm")
    assert sorted(back) == sorted(expected)
    for label, points in expected.items():
        same_places(back[label], points, f"{name} exported: {label}")
    theirs, ours = hd.seg.segread(seg), hd.seg.segread(tmp_path / "back.dcm")
    for number in theirs.segment_numbers:
        a = theirs.get_segment_description(number)
        b = next(
            ours.get_segment_description(n)
            for n in ours.segment_numbers
            if ours.get_segment_description(n).segment_label == a.segment_label
        )
        assert b.segmented_property_type == a.segmented_property_type
        assert b.segmented_property_category == a.segmented_property_category
        assert b.algorithm_type == a.algorithm_type


def test_highdicom_single_frame_seg_onto_its_image(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "third_party" / "highdicom"
    source = tmp_path / "ct"
    source.mkdir()
    shutil.copy(folder / "ct_image.dcm", source)
    seg = folder / "seg_image_ct_binary_single_frame.dcm"
    cli("pack", seg, "--source", source, "-o", tmp_path / "a.mska")
    cli("unpack", tmp_path / "a.mska", "-o", tmp_path / "out")
    ds = pydicom.dcmread(seg)
    frame = ds.pixel_array.reshape(int(ds.Rows), int(ds.Columns)) != 0
    image = pydicom.dcmread(folder / "ct_image.dcm")
    row, column = (np.array(image.ImageOrientationPatient[i : i + 3], float) for i in (0, 3))
    dr, dc = (float(v) for v in image.PixelSpacing)
    r, c = np.nonzero(frame)
    expected = (
        np.array(image.ImagePositionPatient, float)
        + np.outer(c * dc, row)
        + np.outer(r * dr, column)
    )  # PS3.3 C.7.6.2.1.1, from pydicom's reading of the CT header
    expected = expected[np.lexsort(np.round(expected, 3).T[::-1])]
    same_places(sitk_world(tmp_path / "out" / "first segment.nii.gz"), expected, "single frame")


def test_rt_utils_oblique_slices_both_ways(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "oriented"
    folder.mkdir()
    frame_of_reference = hd.UID()  # these slices have none, a study each and no thickness:
    # highdicom needs all three; their geometry stays as rt-utils wrote it
    series = []
    for path in sorted((shared_data / "third_party" / "rt-utils" / "oriented_data").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.FrameOfReferenceUID = frame_of_reference
        ds.StudyInstanceUID = series[0].StudyInstanceUID if series else ds.StudyInstanceUID
        ds.SliceThickness = "4.5"  # and a slice thickness (its slices are 4.5 mm apart)
        ds.save_as(folder / path.name)
        series.append(ds)
    rng = np.random.default_rng(30)
    pixels = rng.random((len(series), int(series[0].Rows), int(series[0].Columns))) > 0.7
    write_seg(series, pixels.astype(np.uint8), descriptions(["lesion"]), tmp_path / "s.dcm")
    expected = highdicom_world(tmp_path / "s.dcm")["lesion"]
    cli("pack", tmp_path / "s.dcm", "--source", folder, "-o", tmp_path / "a.mska")
    cli("unpack", tmp_path / "a.mska", "-o", tmp_path / "out")
    same_places(sitk_world(tmp_path / "out" / "lesion.nii.gz"), expected, "oblique, NIfTI")
    cli("export-slicer", tmp_path / "a.mska", "-o", tmp_path / "s.seg.nrrd")
    read = slicerio.read_segmentation(str(tmp_path / "s.seg.nrrd"))
    same_places(world(read["ijkToLPS"], np.argwhere(read["voxels"] == 1)), expected, "slicerio")
    cli("export-seg", tmp_path / "a.mska", "--source", folder, "-o", tmp_path / "back.dcm")
    same_places(highdicom_world(tmp_path / "back.dcm")["lesion"], expected, "oblique, SEG")


def test_slicerio_segmentation_through_pack_unpack_and_export(
    shared_data: Path, tmp_path: Path
) -> None:
    source = shared_data / "third_party" / "slicerio" / "Segmentation.seg.nrrd"
    theirs = slicerio.read_segmentation(str(source))
    voxels = np.asarray(theirs["voxels"])
    cli("pack", source, "-o", tmp_path / "a.mska")
    cli("unpack", tmp_path / "a.mska", "-o", tmp_path / "out")
    cli("export-slicer", tmp_path / "a.mska", "-o", tmp_path / "back.seg.nrrd")
    ours = slicerio.read_segmentation(str(tmp_path / "back.seg.nrrd"))
    with MaskArchive(tmp_path / "a.mska") as archive:
        assert sorted(archive) == sorted(s["name"] for s in theirs["segments"])
    for segment in theirs["segments"]:
        layer = voxels if voxels.ndim == 3 else voxels[segment.get("layer", 0)]
        expected = world(theirs["ijkToLPS"], np.argwhere(layer == segment["labelValue"]))
        name = segment["name"]
        same_places(sitk_world(tmp_path / "out" / f"{name}.nii.gz"), expected, f"NIfTI {name}")
        mine = slicerio.segment_from_name(ours, name)
        back = np.asarray(ours["voxels"])
        back = back if back.ndim == 3 else back[mine.get("layer", 0)]
        got = world(ours["ijkToLPS"], np.argwhere(back == mine["labelValue"]))
        same_places(got, expected, f".seg.nrrd {name}")
        assert np.allclose(mine["color"], segment["color"], atol=0.5 / 255)
        assert mine["terminology"] == segment["terminology"]
