"""The tables of files other tools wrote, checked by readers we did not write.

- Instance rows against pydicom's reading of the files pydicom ships (every transfer
  syntax and character set of its test data: big endian, deflated, implicit VR, JPEG,
  JPEG 2000, JPEG-LS, RLE, GB18030 ...) and of the third-party files beside the repository
  (highdicom's SEGs, rt-utils' RT Structure Sets and oblique CT, real Philips CT slices).
- The series table's slice geometry against SimpleITK's (GDCM's) reading of the same
  series, in every orientation a scanner writes (axial head or feet first, coronal,
  sagittal, oblique), with the files in any order and with a slice missing.
"""

from __future__ import annotations

import copy
import csv
import random
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom_rows import check_instance_rows

from dcm_extractor.extractor import main
from dcm_extractor.outputs.query import query

sitk = pytest.importorskip("SimpleITK", reason="SimpleITK is in the test extra")
ROOT_UID = "1.2.826.0.1.3680043.8.498.77"  # (pydicom's root, for UIDs of these tests only)


def _extract(cases_root: Path, out: Path) -> None:
    argv = ["-d", str(cases_root), "-o", str(out), "--merge-all", "--series", "--instances"]
    assert main([*argv, "--format", "csv,parquet", "-q", "--log", str(out.parent / "log")]) == 0


def _series_rows(out: Path) -> list[dict[str, str]]:
    with (out / "all_series.csv").open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def _assert_series_are_the_instances_grouped(out: Path) -> None:
    """The series table's counts equal a DuckDB group-by of the instance table (images
    without a SeriesInstanceUID make one series per kind of image: summed here)."""
    sql = "SELECT StudyInstanceUID, SeriesInstanceUID, {} FROM {} GROUP BY ALL ORDER BY ALL"
    counts = "count(*) AS images, sum(NumberOfFrames) AS frames"
    grouped = query(out, sql.format(counts, "instances WHERE IsImage = 'yes'")).to_pylist()
    sums = "sum(ImageCount) AS images, sum(NumberOfFrames) AS frames"
    series = query(out, sql.format(sums, "series")).to_pylist()
    assert len(grouped) > 1 and grouped == series


def test_pydicoms_test_files_give_the_rows_pydicom_reads(tmp_path: Path) -> None:
    bundled = Path(str(get_testdata_file("CT_small.dcm"))).parent
    case = tmp_path / "data" / "pydicom"
    (case / "CT2").mkdir(parents=True)
    for folder in (bundled, bundled.parent / "charset_files"):
        for path in (p for p in folder.iterdir() if p.is_file()):
            shutil.copyfile(path, case / f"{folder.name}__{path.name}")
    for path in (bundled / "dicomdirtests" / "77654033" / "CT2").iterdir():
        shutil.copyfile(path, case / "CT2" / path.name)
    out = tmp_path / "out"
    _extract(case.parent, out)
    rows = check_instance_rows(case.parent, out)
    assert len(rows) > 80
    syntaxes = {r["TransferSyntaxUID"] for r in rows}  # (copies of an image: duplicates)
    assert {
        "1.2.840.10008.1.2",  # implicit VR little endian
        "1.2.840.10008.1.2.1",  # explicit VR little endian
        "1.2.840.10008.1.2.2",  # explicit VR big endian
        "1.2.840.10008.1.2.1.99",  # deflated
        "1.2.840.10008.1.2.4.50",  # JPEG baseline
        "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
        "1.2.840.10008.1.2.5",  # RLE
    } <= syntaxes
    _assert_series_are_the_instances_grouped(out)
    # series without positions (multi-frame ones keep theirs per frame): no geometry
    unplaced = query(
        out,
        "SELECT s.SliceCount, s.ZExtent, s.SliceSpacing, s.EvenlySpaced, s.NumberOfFrames "
        "FROM series s JOIN instances i USING (StudyInstanceUID, SeriesInstanceUID) "
        "WHERE i.IsImage = 'yes' AND s.SeriesInstanceUID <> '' "
        "GROUP BY ALL HAVING max(i.ImagePositionPatient) = ''",
    ).to_pylist()
    assert any(r["NumberOfFrames"] > 1 for r in unplaced)  # (a multi-frame ultrasound)
    assert {
        (r["SliceCount"], r["ZExtent"], r["SliceSpacing"], r["EvenlySpaced"]) for r in unplaced
    } == {(0, None, None, "")}


@pytest.mark.shared_data
def test_third_party_files_give_the_rows_pydicom_reads(tmp_path: Path, shared_data: Path) -> None:
    third = shared_data / "third_party"
    cases = tmp_path / "data"
    for source, case in [
        (shared_data / "ct_sample", "philips_ct"),
        (third / "highdicom", "highdicom"),
        (third / "rt-utils" / "mock_data", "rt_utils/mock"),
        (third / "rt-utils" / "oriented_data", "rt_utils/oriented"),
        (third / "rt-utils" / "one_slice_data", "rt_utils/one_slice"),
    ]:
        (cases / case).mkdir(parents=True)
        for path in (p for p in source.iterdir() if p.is_file()):
            shutil.copyfile(path, cases / case / path.name)
    out = tmp_path / "out"
    _extract(cases, out)
    rows = check_instance_rows(cases, out)
    by_class = {r["SOPClassUID"] for r in rows}
    assert "1.2.840.10008.5.1.4.1.1.66.4" in by_class  # highdicom's SEGs
    assert "1.2.840.10008.5.1.4.1.1.481.3" in by_class  # rt-utils' RT Structure Set
    _assert_series_are_the_instances_grouped(out)
    # the real CT series, as SimpleITK reads it
    (ct,) = [r for r in _series_rows(out) if r["Sources"] == "philips_ct.dir"]
    _assert_geometry_is_simpleitks(ct, cases / "philips_ct")


# ImageOrientationPatient (row, then column direction) as scanners write them
ORIENTATIONS = {
    "axial": (1, 0, 0, 0, 1, 0),
    "axial_feet_first": (-1, 0, 0, 0, 1, 0),
    "coronal": (1, 0, 0, 0, 0, -1),
    "sagittal": (0, 1, 0, 0, 0, -1),
    "oblique": (0.9541666, -0.2080757, 0.2151061, 0.2785886, 0.880128, -0.3843997),  # rt-utils'
}


def _write_series(
    folder: Path, number: int, orientation: tuple[float, ...], step: float, slices: list[int]
) -> None:
    """A series of CT_small's image at ``slices`` steps of ``step`` mm along the normal of
    ``orientation``, written in shuffled order."""
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    row, column = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row, column)
    normal /= np.linalg.norm(normal)
    origin = np.array([-120.5, 33.25, 71.0])
    folder.mkdir(parents=True)
    order = list(slices)
    random.Random(number).shuffle(order)
    for k in order:
        ds = copy.deepcopy(template)
        ds.SeriesInstanceUID = f"{ROOT_UID}.{number}"
        ds.SOPInstanceUID = f"{ROOT_UID}.{number}.{k + 1}"
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [f"{v:.7g}" for v in orientation]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in origin + k * step * normal]
        ds.save_as(folder / f"IM{k:04d}.dcm", enforce_file_format=True)


def _assert_geometry_is_simpleitks(row: dict[str, str], folder: Path) -> None:
    """SliceCount, ZExtent and (evenly spaced) SliceSpacing as SimpleITK's series reader
    gives them: its number of slices, and its slice spacing (GDCM's distance between
    slices, or the mean of uneven ones) times their number less one."""
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(folder), row["SeriesInstanceUID"])
    reader.SetFileNames(names)
    image = reader.Execute()
    count, spacing = image.GetSize()[2], image.GetSpacing()[2]
    assert int(row["SliceCount"]) == count == int(row["ImageCount"])
    assert float(row["ZExtent"]) == pytest.approx(spacing * (count - 1), abs=2e-3)
    if row["EvenlySpaced"] == "yes":
        assert float(row["SliceSpacing"]) == pytest.approx(spacing, abs=1e-3)


@pytest.mark.parametrize("step", [2.5, 0.7])
def test_slice_geometry_is_simpleitks_in_every_orientation(tmp_path: Path, step: float) -> None:
    cases = tmp_path / "data"
    plans = {}
    for number, (name, orientation) in enumerate(ORIENTATIONS.items(), start=1):
        for gap in (False, True):  # every slice, or one missing inside
            slices = [k for k in range(9) if not (gap and k == 3)]
            case = f"{name}_gap" if gap else name
            _write_series(cases / case, 2 * number + gap, orientation, step, slices)
            plans[f"{case}.dir"] = (cases / case, gap)
    out = tmp_path / "out"
    _extract(cases, out)
    rows = {r["Sources"]: r for r in _series_rows(out)}
    assert set(rows) == set(plans)
    for source, (folder, gap) in plans.items():
        row = rows[source]
        assert row["EvenlySpaced"] == ("no" if gap else "yes"), source
        assert float(row["SliceSpacing"]) == pytest.approx(step, abs=1e-3), source
        _assert_geometry_is_simpleitks(row, folder)


ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"


def _write_enhanced(
    path: Path, number: int, orientation: tuple[float, ...], step: float, slices: list[int]
) -> None:
    """The series :func:`_write_series` writes, as one Enhanced CT object: its frames in
    shuffled order, each frame's position in its Plane Position Sequence, the orientation
    shared (no ImagePositionPatient or ImageOrientationPatient of the object's own)."""
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    row, column = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row, column)
    normal /= np.linalg.norm(normal)
    origin = np.array([-120.5, 33.25, 71.0])
    order = list(slices)
    random.Random(number).shuffle(order)
    ds = copy.deepcopy(template)
    del ds.ImagePositionPatient, ds.ImageOrientationPatient
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ENHANCED_CT
    ds.SeriesInstanceUID = f"{ROOT_UID}.{number}"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{ROOT_UID}.{number}.1"
    ds.NumberOfFrames = len(order)
    frames = []
    for k in order:
        position, item = pydicom.Dataset(), pydicom.Dataset()
        position.ImagePositionPatient = [f"{v:.6f}" for v in origin + k * step * normal]
        item.PlanePositionSequence = [position]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    plane, shared = pydicom.Dataset(), pydicom.Dataset()
    plane.ImageOrientationPatient = [f"{v:.7g}" for v in orientation]
    shared.PlaneOrientationSequence = [plane]
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PixelData = template.PixelData * len(order)
    path.parent.mkdir(parents=True)
    ds.save_as(path, enforce_file_format=True)


def test_an_enhanced_objects_frames_give_its_series_geometry(tmp_path: Path) -> None:
    """Each series of the orientation test written again as one Enhanced CT object (frames
    shuffled, one missing or not): its row has the geometry of the single-frame series,
    which SimpleITK's reading confirms. One object of 160 frames keeps its per-frame
    groups past the 16 KiB the scan reads first. Its instance row keeps no position of
    its own, as pydicom reads it."""
    cases = tmp_path / "data"
    pairs = {}
    plans = [(name, o, 2.5, 9, gap) for name, o in ORIENTATIONS.items() for gap in (False, True)]
    plans.append(("long", ORIENTATIONS["oblique"], 0.7, 160, False))
    for number, (name, orientation, step, count, gap) in enumerate(plans, start=1):
        slices = [k for k in range(count) if not (gap and k == 3)]
        case = f"{name}_gap" if gap else name
        _write_series(cases / case, 2 * number, orientation, step, slices)
        enhanced = cases / f"{case}_enhanced" / "enhanced.dcm"
        _write_enhanced(enhanced, 2 * number + 1, orientation, step, slices)
        pairs[f"{case}.dir"] = (f"{case}_enhanced.dir", cases / case, len(slices))
    assert (cases / "long_enhanced" / "enhanced.dcm").read_bytes().find(b"\xe0\x7f\x10\x00") > (
        16 * 1024
    )  # (the pixel data's tag: the header is longer than the first read)
    out = tmp_path / "out"
    _extract(cases, out)
    rows = {r["Sources"]: r for r in _series_rows(out)}
    assert len(rows) == 2 * len(pairs)
    geometry = ("SliceCount", "ZExtent", "SliceSpacing", "EvenlySpaced")
    for source, (enhanced_source, folder, frames) in pairs.items():
        single, enhanced = rows[source], rows[enhanced_source]
        _assert_geometry_is_simpleitks(single, folder)
        assert {k: enhanced[k] for k in geometry} == {k: single[k] for k in geometry}, source
        assert int(enhanced["SliceCount"]) == frames == int(enhanced["NumberOfFrames"])
        assert enhanced["ImageCount"] == "1"
    instances = query(
        out, f"SELECT * FROM instances WHERE SOPClassUID = '{ENHANCED_CT}'"
    ).to_pylist()
    assert len(instances) == len(pairs)
    assert all(r["IsImage"] == "yes" and r["ImagePositionPatient"] == "" for r in instances)
