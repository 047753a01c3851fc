"""The source series reader: its grid equals what pydicom's own value conversion gives,
in any file order and folder layout, and bad slices are named, not guessed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from spacetransformer import Space

from medmask.errors import FormatError
from medmask.exchange.dicom.source import read_source_series
from medmask.sample.ct_series import write_ct_series


def oblique_series(folder: Path, seed: str = "series-a") -> list[Path]:
    angle = np.deg2rad(17.0)
    space = Space(
        origin=(120.25, -80.5, 33.125),
        spacing=(0.7421875, 0.7421875, 2.5),
        shape=(12, 9, 6),
        x_orientation=(np.cos(angle), np.sin(angle), 0.0),
        y_orientation=(-np.sin(angle), np.cos(angle), 0.0),
        z_orientation=(0.0, 0.0, 1.0),
    )
    return write_ct_series(np.zeros(space.shape, np.int16), space, folder, seed=seed)


@pytest.mark.parametrize(
    "syntax", [None, pydicom.uid.ImplicitVRLittleEndian, pydicom.uid.ExplicitVRBigEndian]
)
def test_the_grid_is_pydicoms_reading_in_any_file_order(
    tmp_path: Path, syntax: pydicom.uid.UID | None
) -> None:
    """Values read from the elements' bytes, in every transfer syntax a header can have."""
    files = oblique_series(tmp_path / "made")
    if syntax is not None:
        for path in files:
            ds = pydicom.dcmread(path, stop_before_pixels=True)  # headers are what counts
            ds.file_meta.TransferSyntaxUID = syntax
            pydicom.dcmwrite(
                path,
                ds,
                implicit_vr=syntax.is_implicit_VR,
                little_endian=syntax.is_little_endian,
                force_encoding=True,
            )
    mixed = tmp_path / "mixed"
    for i, path in enumerate(reversed(files)):  # files in reverse, some in a sub-folder
        target = mixed / ("deeper" if i % 2 else "") / f"x{i:02d}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    (mixed / "notes.txt").write_text("not DICOM")
    series = read_source_series(mixed)
    if syntax is not None:  # really written so
        assert pydicom.dcmread(files[0]).original_encoding == (
            syntax.is_implicit_VR,
            syntax.is_little_endian,
        )
    datasets = [pydicom.dcmread(p) for p in files]  # slice order as written
    first = datasets[0]
    assert series.sop_instance_uids == tuple(ds.SOPInstanceUID for ds in datasets)
    assert np.array_equal(
        series.grid.positions,
        np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets]),
    )
    iop = [float(v) for v in first.ImageOrientationPatient]
    assert np.allclose(series.grid.row_direction, iop[:3], atol=1e-12)
    assert np.allclose(series.grid.column_direction, iop[3:], atol=1e-12)
    assert series.grid.pixel_spacing == tuple(float(v) for v in first.PixelSpacing)
    assert (series.grid.rows, series.grid.columns) == (first.Rows, first.Columns)
    assert series.frame_of_reference_uid == first.FrameOfReferenceUID
    assert series.series_instance_uid == first.SeriesInstanceUID
    assert [Path(p).name for p, _ in series.skipped] == ["notes.txt"]


def test_a_slice_whose_position_is_not_numbers_is_named(tmp_path: Path) -> None:
    files = oblique_series(tmp_path / "ct")
    data = bytearray(files[2].read_bytes())  # the value's first characters made letters
    at = data.index(b"\x20\x00\x32\x00DS") + 8  # (0020,0032) DS, explicit VR
    data[at : at + 3] = b"abc"
    files[2].write_bytes(bytes(data))
    with pytest.raises(FormatError, match=rf"{files[2].name}: ImagePositionPatient is 'abc"):
        read_source_series(tmp_path / "ct")


def test_a_source_that_is_no_folder_says_what_it_is(tmp_path: Path) -> None:
    """A mistyped --source said "not a folder of DICOM files", as if the folder were
    there and held none (the message a folder of other files gets)."""
    with pytest.raises(FormatError, match=r"nowhere: no such folder; give the folder of the"):
        read_source_series(tmp_path / "nowhere")
    (tmp_path / "ct.zip").write_bytes(b"PK")
    with pytest.raises(FormatError, match=r"ct\.zip: a file; give the folder of the image"):
        read_source_series(tmp_path / "ct.zip")


def test_two_series_are_named_and_one_can_be_chosen(tmp_path: Path) -> None:
    a = oblique_series(tmp_path / "ct", seed="series-a")
    for i, path in enumerate(oblique_series(tmp_path / "b", seed="series-b")):
        shutil.copy(path, tmp_path / "ct" / f"b{i}.dcm")
    uid = str(pydicom.dcmread(a[0]).SeriesInstanceUID)
    with pytest.raises(FormatError, match=r"holds several series: .*6 slices.*--series-uid UID"):
        read_source_series(tmp_path / "ct")
    chosen = read_source_series(tmp_path / "ct", uid)
    assert chosen.series_instance_uid == uid
    assert len(chosen.skipped) == 6 and all("another series" in why for _, why in chosen.skipped)


def test_a_duplicate_slice_is_refused(tmp_path: Path) -> None:
    files = oblique_series(tmp_path / "ct")
    ds = pydicom.dcmread(files[1])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "ct" / "copy.dcm")
    with pytest.raises(FormatError, match="two slices lie at one position"):
        read_source_series(tmp_path / "ct")
