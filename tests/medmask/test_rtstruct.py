"""RT Structure Sets: ours read by OpenCV (world space), dciodvfy and rt-utils; files other
tools wrote (pydicom's, rt-utils') read by medmask and compared with their own reading."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from contour_world import inside, roi_contours
from pydicom.data import get_testdata_file
from spacetransformer import Space

from medmask import MaskArchive, MedmaskError, SegmentationMask
from medmask.cli import main
from medmask.errors import FormatError
from medmask.exchange.dicom.rtstruct import read_rtstruct
from medmask.exchange.dicom.source import read_source_series
from medmask.sample.ct_series import write_ct_series
from medmask.sample.grids import contour_shapes

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
SHAPE = (40, 40, 6)


def oblique_space() -> Space:
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    return Space(
        shape=SHAPE, origin=(-20.0, 15.0, 30.0), spacing=(0.9, 0.9, 2.0),
        x_orientation=(c, s, 0.0), y_orientation=(-s, c, 0.0), z_orientation=(0.0, 0.0, 1.0),
    )  # fmt: skip


def shapes() -> dict[str, np.ndarray]:
    """Rings, a vertebra with its canal, an island inside a hole, pixels touching at a
    corner, one empty mask."""
    return contour_shapes(SHAPE)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rt")
    space = oblique_space()
    write_ct_series(np.zeros(SHAPE, np.int16), space, folder / "ct")
    with MaskArchive(folder / "shapes.mska", "w") as archive:
        for name, mask in shapes().items():
            archive.add_mask(SegmentationMask(mask.astype(np.uint8), {name: 1}, space), name)
    return folder


def test_holes_islands_and_corners_go_out_and_back_exactly(case: Path, tmp_path: Path) -> None:
    rs = tmp_path / "rs.dcm"
    argv = ["export-rtstruct", str(case / "shapes.mska"), "--source", str(case / "ct")]
    assert main([*argv, "-o", str(rs)]) == 0
    ds = pydicom.dcmread(rs)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3"
    assert [r.ROIName for r in ds.StructureSetROISequence] == list(shapes())
    nothing = ds.ROIContourSequence[-1]
    assert "ContourSequence" not in nothing  # looked for, not found: an ROI, no contours
    for roi in ds.ROIContourSequence:
        for contour in roi.get("ContourSequence", []):
            assert int(contour.NumberOfContourPoints) >= 4
            assert contour.ContourGeometricType == "CLOSED_PLANAR"
            assert contour.ContourImageSequence[0].ReferencedSOPInstanceUID
    # OpenCV, in world space, finds each mask's voxel centres inside its contours
    space = oblique_space()
    matrix = np.column_stack([space.x_orientation, space.y_orientation, space.z_orientation])
    every = np.argwhere(np.ones(SHAPE, bool)).astype(np.float64)
    centres = every * np.asarray(space.spacing) @ matrix.T + np.asarray(space.origin)
    contours = roi_contours(rs)
    for name, mask in shapes().items():
        assert np.array_equal(inside(contours[name], centres), mask.reshape(-1)), name
    inset_rs = tmp_path / "inset.dcm"  # --contours inset: the same centres inside
    assert main([*argv, "-o", str(inset_rs), "--contours", "inset"]) == 0
    contours = roi_contours(inset_rs)
    for name, mask in shapes().items():
        assert np.array_equal(inside(contours[name], centres), mask.reshape(-1)), name
    # and back, by the command line, onto the series and onto the archive's grid
    for how in (["--source", str(case / "ct")], ["--like", str(case / "shapes.mska")]):
        back = tmp_path / f"back{len(how[1])}.mska"
        assert main(["pack", str(rs), "-o", str(back), *how]) == 0
        colours = {
            str(r.ROIName): tuple(int(v) for v in roi.ROIDisplayColor)
            for r, roi in zip(ds.StructureSetROISequence, ds.ROIContourSequence, strict=True)
        }
        with MaskArchive(back) as opened:
            assert sorted(opened) == sorted(shapes())
            for name, mask in shapes().items():
                assert np.array_equal(np.asarray(opened.load_mask(name).data) != 0, mask), name
                assert opened.meaning(name).colour == colours[name]  # colours kept


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) is absent")
def test_dciodvfy_finds_no_errors(case: Path, tmp_path: Path) -> None:
    rs = tmp_path / "rs.dcm"
    argv = ["export-rtstruct", str(case / "shapes.mska"), "--source", str(case / "ct")]
    assert main([*argv, "-o", str(rs)]) == 0
    result = subprocess.run(["dciodvfy", str(rs)], capture_output=True, text=True, check=False)
    report = result.stdout + result.stderr
    assert "RTStructureSet" in report
    assert not [line for line in report.splitlines() if line.startswith("Error")], report


def test_contours_need_a_grid_and_the_right_frame_of_reference(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rs = tmp_path / "rs.dcm"
    argv = ["export-rtstruct", str(case / "shapes.mska"), "--source", str(case / "ct")]
    assert main([*argv, "-o", str(rs)]) == 0
    capsys.readouterr()
    assert main(["pack", str(rs), "-o", str(tmp_path / "x.mska")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give the image series" in err
    other = tmp_path / "other_ct"
    write_ct_series(np.zeros(SHAPE, np.int16), oblique_space(), other, seed="another study")
    series = read_source_series(other)
    with pytest.raises(FormatError, match="frame of reference"):
        read_rtstruct(rs, series.grid.space(), frame_of_reference=series.frame_of_reference_uid)


def test_pydicoms_rtstruct_file(tmp_path: Path) -> None:
    """pydicom's own rtstruct.dcm (no preamble; a body outline and two POINT ROIs):
    the outline filled as OpenCV finds the centres inside it, the points reported."""
    path = Path(get_testdata_file("rtstruct.dcm"))  # type: ignore[arg-type]
    contours = roi_contours(path)["patient"]
    planes = sorted({round(float(c[0, 2]), 3) for c in contours})
    low = np.min([c.min(axis=0) for c in contours], axis=0) - 15  # centres off the edges
    space = Space(
        shape=(60, 60, len(planes)), origin=(float(low[0]), float(low[1]), planes[0]),
        spacing=(10.0, 10.0, (planes[-1] - planes[0]) / max(1, len(planes) - 1) or 1.0),
    )  # fmt: skip
    notes: list[str] = []
    rois = {r.name: r for r in read_rtstruct(path, space, notes=notes)}
    assert sorted(rois) == ["Isocenter 1", "Isocenter 2", "patient"]
    assert sum("POINT contour has no area" in n for n in notes) == 2
    assert not rois["Isocenter 1"].voxels.any()
    every = np.argwhere(np.ones(space.shape, bool)).astype(np.float64)
    centres = every * np.asarray(space.spacing) + np.asarray(space.origin)
    expected = inside(contours, centres).reshape(space.shape)
    assert expected.any()
    assert np.array_equal(rois["patient"].voxels, expected)


@pytest.mark.skipif(
    not (SHARED / "third_party" / "rt-utils").is_dir(), reason="needs ../shared/data"
)
def test_rt_utils_mock_data_against_rt_utils_own_masks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """rt-utils' test data: its structure set names its CT series but another frame of
    reference (older rt-utils wrote a new one): read onto that series with a warning; it
    gives rt-utils' own masks but for pixels within a pixel of the contour (rt-utils rounds
    points to whole pixels and fills the boundary in). Naming another series too, it is
    refused."""
    rt_utils = pytest.importorskip("rt_utils", reason="rt-utils is in the test extra")
    folder = SHARED / "third_party" / "rt-utils" / "mock_data"
    ct = tmp_path / "ct"
    ct.mkdir()
    for name in ("ct_1.dcm", "ct_2.dcm"):
        shutil.copy(folder / name, ct / name)
    series = read_source_series(ct)
    assert main(["pack", str(folder / "rt.dcm"), "-o", str(tmp_path / "x.mska"),
                 "--source", str(ct)]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert f"rt.dcm: the structure set names the series {series.series_instance_uid} but " in err
    assert f"the series' is {series.frame_of_reference_uid}" in err
    ours = {r.name: r.voxels for r in read_rtstruct(folder / "rt.dcm", series.grid.space())}
    with MaskArchive(tmp_path / "x.mska") as archive:
        assert np.array_equal(np.asarray(archive.load_mask("ROI-1").data) != 0, ours["ROI-1"])
    elsewhere = pydicom.dcmread(folder / "rt.dcm")
    frame = elsewhere.ReferencedFrameOfReferenceSequence[0]
    frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3"
    elsewhere.save_as(tmp_path / "elsewhere.dcm")
    assert main(["pack", str(tmp_path / "elsewhere.dcm"), "-o", str(tmp_path / "y.mska"),
                 "--source", str(ct)]) == 1  # fmt: skip
    assert "lies in frame of reference" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = rt_utils.RTStructBuilder.create_from(
            dicom_series_path=str(ct), rt_struct_path=str(folder / "rt.dcm")
        )
    mask = theirs.get_roi_mask_by_name("ROI-1")  # (columns, rows, slices) for this square CT
    assert mask.shape == ours["ROI-1"].shape
    differ = np.argwhere(mask != ours["ROI-1"])
    contours = roi_contours(folder / "rt.dcm")["ROI-1"]
    grid = series.grid
    rows, columns = grid.pixel_spacing
    for c, r, s in differ:
        centre = (
            grid.positions[s] + c * columns * grid.row_direction + r * rows * grid.column_direction
        )
        nearest = min(
            float(np.min(np.linalg.norm(contour - centre, axis=1))) for contour in contours
        )
        edge_distance = min(_segment_distance(centre, contour) for contour in contours)
        assert edge_distance <= 1.5 * max(rows, columns), (c, r, s, nearest)
    assert ours["ROI-1"].sum() > 0.8 * mask.sum()


def _segment_distance(point: np.ndarray, contour: np.ndarray) -> float:
    a, b = contour, np.roll(contour, -1, axis=0)
    ab = b - a
    length = np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12)  # repeated points: no length
    t = np.clip(np.einsum("ij,ij->i", point - a, ab) / length, 0, 1)
    return float(np.min(np.linalg.norm(a + t[:, None] * ab - point, axis=1)))


def test_roi_names_in_gbk_without_a_character_set_are_read_as_gbk(
    case: Path, tmp_path: Path
) -> None:
    """Chinese planning systems write GBK ROI names without SpecificCharacterSet: pydicom
    reads Latin-1 mojibake ("¸ÎÔà"); medmask the names, and says so."""
    rs = tmp_path / "rs.dcm"
    assert main(["export-rtstruct", str(case / "shapes.mska"), "--source", str(case / "ct"),
                 "-o", str(rs)]) == 0  # fmt: skip
    ds = pydicom.dcmread(rs)
    names = [str(r.ROIName) for r in ds.StructureSetROISequence]
    # (脾 and 胃 in GBK are valid UTF-8 too, for Ƣ and θ: read as UTF-8 before)
    chinese = ["脾", "胃", *(f"器官{i}" for i in range(len(names)))][: len(names)]
    for r, name in zip(ds.StructureSetROISequence, chinese, strict=True):
        r.ROIName = name.encode("gbk")
    del ds.SpecificCharacterSet
    ds.save_as(tmp_path / "gbk.dcm")
    assert len(names) >= 2
    assert str(pydicom.dcmread(tmp_path / "gbk.dcm").StructureSetROISequence[0].ROIName) != "脾"
    notes: list[str] = []
    rois = read_rtstruct(tmp_path / "gbk.dcm", oblique_space(), notes=notes)
    assert [roi.name for roi in rois] == chinese
    assert notes == [
        f"gbk.dcm: {len(names)} ROI names ({', '.join(chinese)}): "
        "no SpecificCharacterSet, not ASCII: read as GB18030"
    ]
    for roi, mask in zip(rois, shapes().values(), strict=True):  # the same voxels
        assert np.array_equal(roi.voxels, mask)


def test_rois_with_an_empty_name_are_named_by_their_description_or_number(
    case: Path, tmp_path: Path
) -> None:
    """ROIName may be empty (type 2): such an ROI is named by its ROIDescription, else
    ``roi_<number>``, and the notes say which were."""
    rs = tmp_path / "rs.dcm"
    assert main(["export-rtstruct", str(case / "shapes.mska"), "--source", str(case / "ct"),
                 "-o", str(rs)]) == 0  # fmt: skip
    ds = pydicom.dcmread(rs)
    first, second = ds.StructureSetROISequence[:2]
    first.ROIName, first.ROIDescription = "", "GTV primary"
    second.ROIName = ""
    if "ROIDescription" in second:
        del second.ROIDescription
    ds.save_as(tmp_path / "unnamed.dcm")
    notes: list[str] = []
    rois = read_rtstruct(tmp_path / "unnamed.dcm", oblique_space(), notes=notes)
    names = [roi.name for roi in rois]
    assert names[:2] == ["GTV primary", f"roi_{second.ROINumber}"]
    assert names[2:] == list(shapes())[2:]
    assert notes == [
        f"unnamed.dcm: 2 ROI(s) with an empty ROIName, named by their ROIDescription or "
        f"number: {first.ROINumber} 'GTV primary', {second.ROINumber} 'roi_{second.ROINumber}'"
    ]
    for roi, mask in zip(rois, shapes().values(), strict=True):
        assert np.array_equal(roi.voxels, mask)


def test_an_empty_archive_and_unknown_names_are_clear(case: Path, tmp_path: Path) -> None:
    argv = ["export-rtstruct", str(case / "shapes.mska"), "--source", str(case / "ct")]
    assert main([*argv, "-o", str(tmp_path / "a.dcm"), "-n", "no_such_mask"]) == 1
    with pytest.raises(MedmaskError):
        read_rtstruct(case / "shapes.mska", oblique_space())


def test_rt_utils_and_medmask_read_each_others_files(case: Path, tmp_path: Path) -> None:
    """On a square series (rt-utils lays a mask's first axis along the rows, so only
    square images come out right): medmask reads rt-utils' contours (through the
    boundary pixels' centres, holes as inner contours, float32 coordinates) as exactly
    the masks rt-utils reads back; rt-utils reading our voxel-edge contours rounds their
    corners to whole pixels and fills the boundary in, so it gets each mask grown by up
    to a pixel (docs/rtstruct.md)."""
    rt_utils = pytest.importorskip("rt_utils", reason="rt-utils is in the test extra")
    space = oblique_space()
    series = read_source_series(case / "ct")
    from medmask.exchange.dicom.grid import map_axes

    axes = map_axes(space, series.grid)
    truth = {n: axes.to_series(m) for n, m in shapes().items()}  # (column, row, slice)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        builder = rt_utils.RTStructBuilder.create_new(dicom_series_path=str(case / "ct"))
        for name, mask in truth.items():
            if mask.any():
                builder.add_roi(mask=mask.transpose(1, 0, 2), name=name)  # rows first
        builder.save(str(tmp_path / "theirs.dcm"))
        theirs = rt_utils.RTStructBuilder.create_from(
            dicom_series_path=str(case / "ct"), rt_struct_path=str(tmp_path / "theirs.dcm")
        )
        notes: list[str] = []
        ours = {
            r.name: r.voxels
            for r in read_rtstruct(tmp_path / "theirs.dcm", series.grid.space(), notes=notes)
        }
        # rt-utils writes a single pixel as a 1-point contour and a straight line one pixel
        # wide as a 2-point one: read as the pixels they pass through, and said
        short = [n for n in notes if "of 1 or 2 points" in n]
        assert {n.split("ROI ")[1].split(":")[0] for n in short} == {"'line'", "'pixel'"}
        assert len(notes) == len(short)
        for name, mask in truth.items():
            if not mask.any():
                continue
            read_by_them = theirs.get_roi_mask_by_name(name).transpose(1, 0, 2)
            assert np.array_equal(read_by_them, mask), name  # rt-utils' own round trip
            assert np.array_equal(ours[name], mask), name
        rs = tmp_path / "ours.dcm"
        argv = ["export-rtstruct", str(case / "shapes.mska"), "--source", str(case / "ct")]
        assert main([*argv, "-o", str(rs)]) == 0
        reader = rt_utils.RTStructBuilder.create_from(
            dicom_series_path=str(case / "ct"), rt_struct_path=str(rs)
        )
        for name in ("ring", "ring_with_island", "vertebra", "line", "pixel"):
            grown = reader.get_roi_mask_by_name(name).transpose(1, 0, 2)
            mask = truth[name]
            assert (grown & mask).sum() == mask.sum()  # every voxel, and up to a pixel more
            ring = _dilated(mask) & ~mask
            assert not (grown & ~mask & ~ring).any(), name
        # --contours inset: 0.25 pixel inside the edges, rt-utils' rounding lands on the
        # boundary pixels' centres: it reads every mask exactly, as medmask and OpenCV do
        inset_rs = tmp_path / "inset.dcm"
        assert main([*argv, "-o", str(inset_rs), "--contours", "inset"]) == 0
        reader = rt_utils.RTStructBuilder.create_from(
            dicom_series_path=str(case / "ct"), rt_struct_path=str(inset_rs)
        )
        ours = {r.name: r.voxels for r in read_rtstruct(inset_rs, series.grid.space())}
        for name, mask in truth.items():
            assert np.array_equal(ours[name], mask), name
            if mask.any():
                exact = reader.get_roi_mask_by_name(name).transpose(1, 0, 2)
                assert np.array_equal(exact, mask), name


def _dilated(mask: np.ndarray) -> np.ndarray:
    """The mask grown by one pixel in its slices (8-neighbours)."""
    out = mask.copy()
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            out |= np.roll(np.roll(mask, dx, axis=0), dy, axis=1)
    return out


def test_contour_data_pydicom_converted_already_reads_the_same() -> None:
    from pydicom.dataset import Dataset

    from medmask.exchange.dicom.rtstruct import _raw_points

    item = Dataset()
    item.ContourData = [1.5, -2.25, 3.0, 4.0, 5.0, 6.0]  # converted values, not raw bytes
    assert _raw_points(item) == b"1.5\\-2.25\\3.0\\4.0\\5.0\\6.0"
    single = Dataset()
    single.ContourData = 7.5
    assert _raw_points(single) == b"7.5"
    assert _raw_points(Dataset()) == b""


@pytest.mark.skipif(
    not (SHARED / "third_party" / "rt-utils").is_dir(), reason="needs ../shared/data"
)
@pytest.mark.parametrize("folder_name", ["oriented_data", "one_slice_data"])
def test_contours_on_rt_utils_oblique_and_one_slice_series(
    folder_name: str, tmp_path: Path
) -> None:
    """rt-utils' own test series: oblique (IOP with every component non-zero), 50 x 100
    pixels of 3.5 x 2.5 mm, no frame of reference; and a single slice. A speckled mask
    (pixels touching at corners everywhere) goes out as contours that OpenCV, in world
    space from pydicom's reading of the CT headers, finds around exactly its pixels."""
    ct = tmp_path / "ct"
    ct.mkdir()
    for path in (SHARED / "third_party" / "rt-utils" / folder_name).glob("*.dcm"):
        shutil.copy(path, ct / path.name)
    series = read_source_series(ct)
    datasets = sorted(
        (pydicom.dcmread(p) for p in ct.glob("*.dcm")),
        key=lambda ds: series.sop_instance_uids.index(str(ds.SOPInstanceUID)),
    )
    rows, columns = int(datasets[0].Rows), int(datasets[0].Columns)
    pixels = np.zeros((len(datasets), rows, columns), bool)  # a speckled patch, a block
    pixels[:, 10:22, 30:50] = np.random.default_rng(30).random((len(datasets), 12, 20)) > 0.6
    pixels[:, 30:45, 60:95] = True
    space = series.grid.space()  # axes: column, row, slice
    with MaskArchive(tmp_path / "a.mska", "w") as archive:
        mask = pixels.transpose(2, 1, 0)
        archive.add_mask(SegmentationMask(mask.astype(np.uint8), {"lesion": 1}, space), "lesion")
    rs = tmp_path / "rs.dcm"
    assert main(["export-rtstruct", str(tmp_path / "a.mska"), "--source", str(ct),
                 "-o", str(rs)]) == 0  # fmt: skip
    centres = []
    for ds in datasets:  # PS3.3 C.7.6.2.1.1 from the CT headers as pydicom reads them
        iop = np.asarray(ds.ImageOrientationPatient, float)
        dr, dc = (float(v) for v in ds.PixelSpacing)
        r, c = np.mgrid[:rows, :columns]
        centres.append(
            np.asarray(ds.ImagePositionPatient, float)
            + (c.reshape(-1, 1) * dc) * iop[:3]
            + (r.reshape(-1, 1) * dr) * iop[3:]
        )
    found = inside(roi_contours(rs)["lesion"], np.concatenate(centres))
    assert np.array_equal(found, pixels.reshape(-1))
    back = {r.name: r.voxels for r in read_rtstruct(rs, space)}
    assert np.array_equal(back["lesion"], mask)
    if shutil.which("dciodvfy"):
        result = subprocess.run(["dciodvfy", str(rs)], capture_output=True, text=True, check=False)
        errors = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.startswith("Error")]  # fmt: skip
        assert not errors, errors


def test_names_longer_than_dicom_allows_come_back_whole(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ROIName and SegmentLabel hold 64 characters. A longer mask name is cut there, with
    a warning, and kept whole in ROIDescription / SegmentDescription (pydicom and
    highdicom read both), from which pack takes it back (it came back cut: the RT Structure
    Set kept no whole name, and the SEG's was not read). Two names one once cut are
    refused (a planning system takes ROI names for IDs)."""
    import highdicom as hd

    from medmask.ops.pack import pack

    space = oblique_space()
    long = "left_hepatic_lobe_" + "segment_" * 7 + "肝脏"  # 76 characters
    ring = next(iter(shapes().values())).astype(np.uint8)
    with MaskArchive(tmp_path / "long.mska", "w") as archive:
        archive.add_mask(SegmentationMask(ring, {long: 1}, space), long)
        archive.add_mask(SegmentationMask(ring, {"liver": 1}, space), "liver")
    rs, seg = tmp_path / "rs.dcm", tmp_path / "seg.dcm"
    base = [str(tmp_path / "long.mska"), "--source", str(case / "ct")]
    assert main(["export-rtstruct", *base, "-o", str(rs)]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 mask name(s) longer than the 64 characters a DICOM ROIName" in err
    assert main(["export-seg", *base, "-o", str(seg)]) == 0
    assert "in SegmentDescription, which medmask reads back" in capsys.readouterr().err
    rois = pydicom.dcmread(rs).StructureSetROISequence
    assert [(r.ROIName, r.get("ROIDescription")) for r in rois] == [
        (long[:64], long),
        ("liver", None),
    ]
    described = hd.seg.segread(seg).get_segment_description(1)
    assert (described.segment_label, described.SegmentDescription) == (long[:64], long)
    for source, how in ((rs, {"reference": read_source_series(case / "ct")}), (seg, {})):
        assert pack(source, tmp_path / f"{source.stem}.mska", **how).masks == [long, "liver"]
    with MaskArchive(tmp_path / "twins.mska", "w") as archive:
        for name in (long, long[:64] + "_other"):
            archive.add_mask(SegmentationMask(ring, {name: 1}, space), name)
    for command in ("export-rtstruct", "export-seg"):
        argv = [command, str(tmp_path / "twins.mska"), "--source", str(case / "ct")]
        assert main([*argv, "-o", str(tmp_path / f"{command}.dcm")]) == 1
        assert "are one" in capsys.readouterr().err
        assert not (tmp_path / f"{command}.dcm").exists()
