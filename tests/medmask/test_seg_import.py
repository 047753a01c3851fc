"""DICOM SEG import: what other writers put in a SEG arrives whole, or is refused clearly.

SEGs here are written by highdicom (and then edited with pydicom where a case needs a
file highdicom would not write); the image series by medmask's sample generator.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from highdicom_segs import write_seg
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian
from spacetransformer import Space

from medmask import MaskArchive, MedmaskWarning, SegmentationMask
from medmask.cli import main
from medmask.errors import GeometryMismatchError
from medmask.exchange.dicom.exchange import export_seg
from medmask.exchange.dicom.source import read_source_series
from medmask.model.geometry import nifti_affine
from medmask.ops.pack import pack
from medmask.sample.ct_series import write_ct_series

SPACE = Space(shape=(6, 5, 4), origin=(-10.0, 5.0, 30.0), spacing=(0.8, 0.9, 2.0))


@dataclass(frozen=True)
class Series:
    folder: Path
    datasets: list[pydicom.Dataset]


def ct(folder: Path, seed: str = "a", patient: str = "P1", space: Space = SPACE) -> Series:
    paths = write_ct_series(
        np.zeros(tuple(space.shape), np.int16), space, folder, seed=seed, patient_id=patient
    )
    return Series(folder, [pydicom.dcmread(p) for p in paths])


def masks() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, tuple(SPACE.shape))
    return {"liver": labels == 1, "spleen": labels == 2}


def descriptions(names: list[str]) -> list[hd.seg.SegmentDescription]:
    return [
        hd.seg.SegmentDescription(
            segment_number=i + 1, segment_label=name,
            segmented_property_category=codes.SCT.Organ, segmented_property_type=codes.SCT.Liver,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for i, name in enumerate(names)
    ]  # fmt: skip


def highdicom_seg(series: Series, path: Path, kind: str = "BINARY") -> Path:
    names = list(masks())
    if kind == "LABELMAP":
        labels = np.zeros(tuple(SPACE.shape), np.uint8)
        for i, name in enumerate(names):
            labels[masks()[name]] = i + 1
        pixels = labels.transpose(2, 1, 0)
    else:
        pixels = np.stack([masks()[n].transpose(2, 1, 0) for n in names], axis=-1)
        pixels = pixels.astype(np.uint8)
    write_seg(series.datasets, pixels, descriptions(names), path, kind)
    return path


def read_back(archive: Path) -> dict[str, np.ndarray]:
    with MaskArchive(archive) as opened:
        return {name: np.asarray(opened.load_mask(name).data) != 0 for name in opened}


def test_a_segmentation_in_two_instances_is_joined_by_segment_number(tmp_path: Path) -> None:
    series = ct(tmp_path / "ct")
    whole = pydicom.dcmread(highdicom_seg(series, tmp_path / "whole.dcm"))
    pixels = whole.pixel_array
    parts = tmp_path / "parts"
    parts.mkdir()
    count = int(whole.NumberOfFrames)
    for i, frames in enumerate((range(0, count, 2), range(1, count, 2))):  # frames split
        part = pydicom.dcmread(tmp_path / "whole.dcm")  # each repeats the Segment Sequence
        part.PerFrameFunctionalGroupsSequence = DicomSequence(
            [whole.PerFrameFunctionalGroupsSequence[j] for j in frames]
        )
        part.NumberOfFrames = len(frames)
        bits = np.packbits(pixels[list(frames)].reshape(-1), bitorder="little").tobytes()
        part.PixelData = bits + (b"\0" if len(bits) % 2 else b"")
        part.SOPInstanceUID = part.file_meta.MediaStorageSOPInstanceUID = hd.UID()
        part.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        part.save_as(parts / f"part{i}.dcm", enforce_file_format=True)
    pack(parts, tmp_path / "a.mska", reference=read_source_series(series.folder))
    got = read_back(tmp_path / "a.mska")
    assert sorted(got) == ["liver", "spleen"]  # not liver + liver_2
    for name, mask in masks().items():
        assert np.array_equal(got[name], mask), name


def test_labelmap_segment_zero_declared_as_a_structure_is_kept(tmp_path: Path) -> None:
    series = ct(tmp_path / "ct")
    path = highdicom_seg(series, tmp_path / "labels.dcm", kind="LABELMAP")
    ds = pydicom.dcmread(path)
    zero = next(item for item in ds.SegmentSequence if int(item.SegmentNumber) == 0)
    assert zero.SegmentedPropertyTypeCodeSequence[0].CodeValue == "125040"  # highdicom's
    zero.SegmentLabel = "body"
    zero.SegmentedPropertyTypeCodeSequence[0].CodeValue = "38266002"
    zero.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator = "SCT"
    zero.SegmentedPropertyTypeCodeSequence[0].CodeMeaning = "Entire body"
    ds.save_as(tmp_path / "declared.dcm")
    pack(tmp_path / "declared.dcm", tmp_path / "a.mska", reference=SPACE)
    got = read_back(tmp_path / "a.mska")
    assert sorted(got) == ["body", "liver", "spleen"]
    assert np.array_equal(got["body"], ~(masks()["liver"] | masks()["spleen"]))
    # highdicom's own Background segment 0 is no mask
    pack(path, tmp_path / "b.mska", reference=SPACE)
    assert sorted(read_back(tmp_path / "b.mska")) == ["liver", "spleen"]


def test_labelmap_values_no_segment_declares_are_reported(tmp_path: Path) -> None:
    series = ct(tmp_path / "ct")
    ds = pydicom.dcmread(highdicom_seg(series, tmp_path / "labels.dcm", kind="LABELMAP"))
    pixels = ds.pixel_array.copy()
    pixels[0, 0, :3] = 7  # three pixels of a value nobody declares
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    ds.save_as(tmp_path / "odd.dcm")
    with pytest.warns(MedmaskWarning, match=r"odd\.dcm: LABELMAP pixel values .* 7 \(3 pixels\)"):
        pack(tmp_path / "odd.dcm", tmp_path / "a.mska", reference=SPACE)


def test_duplicate_labels_are_kept_apart_and_said(tmp_path: Path) -> None:
    series = ct(tmp_path / "ct")
    ds = pydicom.dcmread(highdicom_seg(series, tmp_path / "s.dcm"))
    ds.SegmentSequence[1].SegmentLabel = "liver"
    ds.save_as(tmp_path / "twice.dcm")
    with pytest.warns(MedmaskWarning, match=r"two segments are labelled 'liver'.* 'liver_2'"):
        pack(tmp_path / "twice.dcm", tmp_path / "a.mska", reference=SPACE)
    got = read_back(tmp_path / "a.mska")
    assert np.array_equal(got["liver_2"], masks()["spleen"])


def test_segments_without_a_label_are_named_by_their_description_or_type(
    tmp_path: Path,
) -> None:
    """pydicom-seg (MONAI Label's SEG writer) leaves SegmentLabel out when its template
    names a segment only in SegmentDescription; highdicom then refuses the file. Such a
    segment is named by its description, else by its coded type ("Left Kidney"), said."""
    series = ct(tmp_path / "ct")
    ds = pydicom.dcmread(highdicom_seg(series, tmp_path / "s.dcm"))
    liver, spleen = ds.SegmentSequence
    del liver.SegmentLabel, spleen.SegmentLabel
    liver.SegmentDescription = "Liver (manual)"
    left = pydicom.Dataset()
    left.CodeValue, left.CodingSchemeDesignator, left.CodeMeaning = "7771000", "SCT", "Left"
    kidney = spleen.SegmentedPropertyTypeCodeSequence[0]
    kidney.CodeMeaning = "Kidney"
    kidney.SegmentedPropertyTypeModifierCodeSequence = DicomSequence([left])
    ds.save_as(tmp_path / "unlabelled.dcm")
    with pytest.raises(AttributeError, match="SegmentLabel"):  # (highdicom: not a SEG)
        hd.seg.segread(tmp_path / "unlabelled.dcm")
    with pytest.warns(
        MedmaskWarning,
        match=r"unlabelled.dcm: 2 segment\(s\) without a SegmentLabel .*SegmentDescription "
        r"or the coded type's meaning: 1 'Liver \(manual\)', 2 'Left Kidney'",
    ):
        pack(tmp_path / "unlabelled.dcm", tmp_path / "a.mska", reference=SPACE)
    got = read_back(tmp_path / "a.mska")
    assert list(got) == ["Liver (manual)", "Left Kidney"]
    assert np.array_equal(got["Liver (manual)"], masks()["liver"])
    assert np.array_equal(got["Left Kidney"], masks()["spleen"])


@pytest.mark.parametrize(
    ("term", "encode", "reading"),
    [(None, "gbk", "GB18030"), ("ISO_IR 6", "gbk", "GB18030"), (None, "utf-8", "UTF-8"),
     ("ISO_IR 100", "utf-8", "UTF-8")],
)  # fmt: skip
def test_labels_in_another_character_set_than_declared_are_read_as_they_are(
    tmp_path: Path, term: str | None, encode: str, reading: str
) -> None:
    """A Chinese system's GBK (or UTF-8) labels without SpecificCharacterSet, or UTF-8
    labelled Latin-1: pydicom reads Latin-1 mojibake ("¸ÎÔà"); medmask the names, said."""
    series = ct(tmp_path / "ct")
    ds = pydicom.dcmread(highdicom_seg(series, tmp_path / "s.dcm"))
    for item, name in zip(ds.SegmentSequence, ("肝脏", "脾脏"), strict=True):
        item.SegmentLabel = name.encode(encode)  # the bytes as such a system writes them
    if term is None:
        del ds.SpecificCharacterSet
    else:
        ds.SpecificCharacterSet = term
    ds.save_as(tmp_path / "named.dcm")
    assert pydicom.dcmread(tmp_path / "named.dcm").SegmentSequence[0].SegmentLabel != "肝脏"
    with pytest.warns(
        MedmaskWarning, match=rf"2 segment labels \(肝脏, 脾脏\): .*read as {reading}"
    ):
        pack(tmp_path / "named.dcm", tmp_path / "a.mska", reference=SPACE)
    got = read_back(tmp_path / "a.mska")
    assert np.array_equal(got["肝脏"], masks()["liver"])
    assert np.array_equal(got["脾脏"], masks()["spleen"])


def cli_error(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> str:
    assert main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("medmask: error:") == 1, err
    return err


def test_a_seg_is_only_read_onto_the_series_it_was_drawn_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = ct(tmp_path / "mine")
    other = ct(tmp_path / "other", seed="b", patient="P2")  # same grid, another scan
    seg = highdicom_seg(mine, tmp_path / "s.dcm")
    assert (
        main(["pack", str(seg), "--source", str(mine.folder), "-o", str(tmp_path / "a.mska")]) == 0
    )
    err = cli_error(capsys, "pack", seg, "--source", other.folder, "-o", tmp_path / "b.mska")
    assert "frame of reference" in err
    assert mine.datasets[0].FrameOfReferenceUID in err
    assert other.datasets[0].FrameOfReferenceUID in err
    assert not (tmp_path / "b.mska").exists()
    # same frame of reference, another series of another patient: each named
    ds = pydicom.dcmread(seg)
    ds.FrameOfReferenceUID = other.datasets[0].FrameOfReferenceUID
    ds.save_as(tmp_path / "moved.dcm")
    err = cli_error(
        capsys, "pack", tmp_path / "moved.dcm", "--source", other.folder, "-o", tmp_path / "c.mska"
    )
    assert mine.datasets[0].SeriesInstanceUID in err
    assert other.datasets[0].SeriesInstanceUID in err
    del ds.ReferencedSeriesSequence
    ds.save_as(tmp_path / "unreferenced.dcm")
    err = cli_error(
        capsys,
        "pack",
        tmp_path / "unreferenced.dcm",
        "--source",
        other.folder,
        "-o",
        tmp_path / "d.mska",
    )
    assert "'P1'" in err and "'P2'" in err


def test_a_seg_naming_its_series_in_another_frame_of_reference_is_read_onto_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pydicom-seg (MONAI Label's SEG writer) gives every SEG a new FrameOfReferenceUID
    (its issue #48) while its Referenced Series Sequence and frames name the series: read
    onto that series, with a warning. Without that reference it stays refused."""
    mine = ct(tmp_path / "mine")
    ds = pydicom.dcmread(highdicom_seg(mine, tmp_path / "s.dcm"))
    ds.FrameOfReferenceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "new_frame.dcm")
    argv = ["pack", str(tmp_path / "new_frame.dcm"), "--source", str(mine.folder)]
    assert main([*argv, "-o", str(tmp_path / "a.mska")]) == 0
    err = capsys.readouterr().err
    assert f"new_frame.dcm: the SEG names the series in {mine.folder} in its Referenced " in err
    assert f"({ds.FrameOfReferenceUID}; the series' is " in err
    got = read_back(tmp_path / "a.mska")
    assert all(np.array_equal(got[name], mask) for name, mask in masks().items())
    del ds.ReferencedSeriesSequence
    ds.save_as(tmp_path / "unreferenced.dcm")
    err = cli_error(
        capsys, "pack", tmp_path / "unreferenced.dcm", "--source", mine.folder,
        "-o", tmp_path / "b.mska",
    )  # fmt: skip
    assert f"lies in frame of reference {ds.FrameOfReferenceUID}" in err
    assert not (tmp_path / "b.mska").exists()


def test_a_study_folder_as_source_gives_the_series_the_file_or_archive_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PACS export's study folder holds the scan beside other series: pack reads a SEG
    or RT Structure Set onto the series it names, export-seg and export-rtstruct write onto
    the series the archive records; with none named, the error says how to choose."""
    mine = ct(tmp_path / "study" / "ct")
    ct(tmp_path / "study" / "other", seed="b")  # another series of the same grid and study
    study = str(tmp_path / "study")
    seg = highdicom_seg(mine, tmp_path / "s.dcm")
    assert main(["pack", str(seg), "--source", study, "-o", str(tmp_path / "a.mska")]) == 0
    got = read_back(tmp_path / "a.mska")
    assert all(np.array_equal(got[name], mask) for name, mask in masks().items())
    with MaskArchive(tmp_path / "a.mska") as archive:
        assert archive.image_series is not None
        assert archive.image_series["SeriesInstanceUID"] == mine.datasets[0].SeriesInstanceUID
    capsys.readouterr()
    assert main(["info", str(tmp_path / "a.mska")]) == 0
    assert f"image series: {mine.datasets[0].SeriesInstanceUID}\n" in capsys.readouterr().out
    rs, again = tmp_path / "rs.dcm", tmp_path / "again.dcm"
    assert (
        main(["export-rtstruct", str(tmp_path / "a.mska"), "--source", study, "-o", str(rs)]) == 0
    )
    assert main(["export-seg", str(tmp_path / "a.mska"), "--source", study, "-o", str(again)]) == 0
    seg_refs = pydicom.dcmread(again).ReferencedSeriesSequence[0].ReferencedInstanceSequence
    rt_study = pydicom.dcmread(rs).ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence
    rt_refs = rt_study[0].RTReferencedSeriesSequence[0].ContourImageSequence
    slices = {str(d.SOPInstanceUID) for d in mine.datasets}
    for refs in (seg_refs, rt_refs):
        assert {str(item.ReferencedSOPInstanceUID) for item in refs} == slices
    assert main(["pack", str(rs), "--source", study, "-o", str(tmp_path / "b.mska")]) == 0
    assert read_back(tmp_path / "b.mska").keys() == masks().keys()
    elsewhere = pydicom.dcmread(seg)
    elsewhere.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3.4"
    elsewhere.save_as(tmp_path / "elsewhere.dcm")
    err = cli_error(capsys, "pack", tmp_path / "elsewhere.dcm", "--source", study,
                    "-o", tmp_path / "e.mska")  # fmt: skip
    assert "; elsewhere.dcm was drawn on 1.2.3.4, not among them; choose one with" in err
    pack(seg, tmp_path / "unplaced.mska", reference=SPACE)  # (no series recorded)
    err = cli_error(capsys, "export-seg", tmp_path / "unplaced.mska", "--source", study,
                    "-o", tmp_path / "c.dcm")  # fmt: skip
    assert "holds several series: " in err and "choose one with --series-uid UID" in err
    uid = mine.datasets[0].SeriesInstanceUID
    argv = ["export-seg", str(tmp_path / "unplaced.mska"), "--source", study, "--series-uid", uid]
    assert main([*argv, "-o", str(tmp_path / "c.dcm")]) == 0


def test_an_enhanced_multi_frame_series_is_a_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Enhanced CT/MR/PET (and Legacy Converted Enhanced) keep a series in one multi-frame
    instance, each frame placed by its functional groups: it was "no DICOM image slices".
    Its grid is the single-frame series' grid; export-seg references each frame (highdicom
    finds every source frame's pixels), export-rtstruct each frame's number (dciodvfy
    finds no error), and both read back onto it."""
    c, s = np.cos(np.radians(25)), np.sin(np.radians(25))
    oblique = Space(
        shape=SPACE.shape, origin=(-10.0, 5.0, 30.0), spacing=SPACE.spacing,
        x_orientation=(c, s, 0.0), y_orientation=(-s, c, 0.0), z_orientation=(0.0, 0.0, 1.0),
    )  # fmt: skip
    single = ct(tmp_path / "single", space=oblique)
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        single.datasets, series_instance_uid=hd.UID(), series_number=2,
        sop_instance_uid=hd.UID(), instance_number=1,
    )  # fmt: skip
    (tmp_path / "enhanced").mkdir()
    enhanced.save_as(tmp_path / "enhanced" / "ct.dcm")
    source = read_source_series(tmp_path / "enhanced")
    assert source.instances == (str(enhanced.SOPInstanceUID),)
    assert sorted(source.frame_numbers) == list(range(1, len(single.datasets) + 1))
    assert source.grid.space() == read_source_series(single.folder).grid.space()
    archive = tmp_path / "a.mska"
    pack(highdicom_seg(single, tmp_path / "s.dcm"), archive, reference=oblique)
    seg = tmp_path / "seg.dcm"
    export_seg(archive, tmp_path / "enhanced", seg, transfer_syntax="explicit")
    frames = list(range(1, len(single.datasets) + 1))
    pixels = hd.seg.segread(seg).get_pixels_by_source_frame(
        str(enhanced.SOPInstanceUID), frames, combine_segments=False,
        assert_missing_frames_are_empty=True,
    )  # fmt: skip
    for frame, groups in zip(frames, enhanced.PerFrameFunctionalGroupsSequence, strict=True):
        position = np.array(
            [float(v) for v in groups.PlanePositionSequence[0].ImagePositionPatient]
        )
        k = round(float((position - np.array(oblique.origin)) @ (0, 0, 1)) / oblique.spacing[2])
        for j, mask in enumerate(masks().values()):
            assert np.array_equal(pixels[frame - 1, :, :, j] != 0, mask[:, :, k].T)
    rs = tmp_path / "rs.dcm"
    argv = ["export-rtstruct", str(archive), "--source", str(tmp_path / "enhanced")]
    assert main([*argv, "-o", str(rs)]) == 0
    study = pydicom.dcmread(rs).ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence
    images = study[0].RTReferencedSeriesSequence[0].ContourImageSequence
    assert sorted(int(i.ReferencedFrameNumber) for i in images) == frames
    for written, name in ((seg, "b.mska"), (rs, "c.mska")):
        argv = ["pack", str(written), "--source", str(tmp_path / "enhanced")]
        assert main([*argv, "-o", str(tmp_path / name)]) == 0
        got = read_back(tmp_path / name)
        assert all(np.array_equal(got[n], mask) for n, mask in masks().items())
    if shutil.which("dciodvfy"):
        for written in (seg, rs):
            run = subprocess.run(
                ["dciodvfy", str(written)], capture_output=True, text=True, check=False
            )
            errors = [line for line in (run.stdout + run.stderr).splitlines()
                      if line.startswith("Error")]  # fmt: skip
            assert not errors, errors


def test_masks_on_a_box_of_the_series_voxels_are_exported_onto_the_series(
    tmp_path: Path,
) -> None:
    """An archive whose grid is a box of the series' voxels (pydicom-seg crops its SEGs to
    the masks; Slicer can save a segmentation so) was refused by export-seg and
    export-rtstruct as another grid: the masks are placed where they lie, also with an
    axis reversed; highdicom and pack --source read them there. A box off the voxels or
    beyond the series stays refused."""
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    x, y, z = np.array([c, s, 0.0]), np.array([-s, c, 0.0]), np.array([0.0, 0.0, 1.0])
    whole = Space(
        shape=SPACE.shape, origin=(-10.0, 5.0, 30.0), spacing=SPACE.spacing,
        x_orientation=tuple(x), y_orientation=tuple(y), z_orientation=tuple(z),
    )  # fmt: skip
    series = ct(tmp_path / "ct", space=whole)
    dx, dy, dz = whole.spacing
    corner = np.array(whole.origin) + 1 * dx * x + 1 * dy * y + 1 * dz * z  # voxel (1, 1, 1)
    box = (4, 3, 2)  # voxels 1..4, 1..3, 1..2 of the series' (6, 5, 4)
    far = corner + (box[0] - 1) * dx * x  # the box's last voxel along x: reversed x starts there
    boxes = {
        "same": Space(shape=box, origin=tuple(corner), spacing=whole.spacing,
                      x_orientation=tuple(x), y_orientation=tuple(y), z_orientation=tuple(z)),
        "reversed": Space(shape=box, origin=tuple(far), spacing=whole.spacing,
                          x_orientation=tuple(-x), y_orientation=tuple(y), z_orientation=tuple(z)),
    }  # fmt: skip
    rng = np.random.default_rng(7)
    for kind, space in boxes.items():
        inside = rng.integers(0, 2, box).astype(np.uint8)
        expected = np.zeros(tuple(SPACE.shape), bool)
        placed = inside[::-1] if kind == "reversed" else inside
        expected[1:5, 1:4, 1:3] = placed != 0
        archive = tmp_path / f"{kind}.mska"
        with MaskArchive(archive, "w") as opened:
            opened.add_mask(SegmentationMask(inside, {"lesion": 1}, space), "lesion")
        seg, rs = tmp_path / f"{kind}.dcm", tmp_path / f"{kind}_rs.dcm"
        export_seg(archive, series.folder, seg)
        assert main(["export-rtstruct", str(archive), "--source", str(series.folder),
                     "-o", str(rs)]) == 0  # fmt: skip
        uids = [str(d.SOPInstanceUID) for d in series.datasets]  # slice k of the grid
        pixels = hd.seg.segread(seg).get_pixels_by_source_instance(uids, combine_segments=False)
        assert np.array_equal(pixels[..., 0].transpose(2, 1, 0) != 0, expected)
        for written in (seg, rs):
            back = tmp_path / f"{written.stem}_back.mska"
            pack(written, back, reference=read_source_series(series.folder))
            assert np.array_equal(read_back(back)["lesion"], expected)
    axes = {"x_orientation": tuple(x), "y_orientation": tuple(y), "z_orientation": tuple(z)}
    off = Space(shape=box, origin=tuple(corner + 0.5 * dx * x), spacing=whole.spacing, **axes)
    beyond = Space(shape=(4, 3, 4), origin=tuple(corner), spacing=whole.spacing, **axes)
    for space, why in ((off, "mm apart"), (beyond, "from the series' voxel 1, the series 4")):
        with MaskArchive(tmp_path / "x.mska", "w") as opened:
            voxels = np.ones(tuple(space.shape), np.uint8)
            opened.add_mask(SegmentationMask(voxels, {"lesion": 1}, space), "lesion")
        with pytest.raises(GeometryMismatchError, match=why):
            export_seg(tmp_path / "x.mska", series.folder, tmp_path / "x.dcm", overwrite=True)


@pytest.mark.parametrize(("term", "encode"), [(None, "gbk"), ("ISO_IR 100", "utf-8")])
def test_a_source_names_patient_in_gbk_without_a_character_set_the_seg_keeps_the_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], term: str | None, encode: str
) -> None:
    """A Chinese PACS writes PatientName in GBK without SpecificCharacterSet (or UTF-8
    labelled Latin-1): pydicom reads mojibake ("ÕÅÈý"), which export-seg and
    export-rtstruct wrote into their UTF-8 files as the patient's name. The name is read
    as its bytes are (as dcm-extract does), written whole, and a warning says so."""
    series = ct(tmp_path / "ct")
    for path in sorted((tmp_path / "ct").iterdir()):
        ds = pydicom.dcmread(path)
        ds.PatientName = "张三^".encode(encode)  # the bytes as such a system writes them
        ds.StudyDescription = "胸部CT平扫".encode(encode)
        if term is None:
            del ds.SpecificCharacterSet
        else:
            ds.SpecificCharacterSet = term
        ds.save_as(path)
    assert str(pydicom.dcmread(path).PatientName) != "张三^"  # (pydicom: mojibake)
    archive = tmp_path / "a.mska"
    pack(highdicom_seg(series, tmp_path / "s.dcm"), archive, reference=SPACE)
    seg, rs = tmp_path / "seg.dcm", tmp_path / "rs.dcm"
    with pytest.warns(MedmaskWarning, match=r"PatientName, StudyDescription: .*read as"):
        export_seg(archive, series.folder, seg)
    capsys.readouterr()
    assert main(["export-rtstruct", str(archive), "--source", str(series.folder),
                 "-o", str(rs)]) == 0  # fmt: skip
    assert "ct: PatientName, StudyDescription: " in capsys.readouterr().err
    for written in (seg, rs):
        ds = pydicom.dcmread(written)
        assert ds.SpecificCharacterSet == "ISO_IR 192"
        assert str(ds.PatientName) == "张三^" and ds.StudyDescription == "胸部CT平扫"
    assert str(hd.seg.segread(seg).PatientName) == "张三^"
    # a Patient ID in those bytes, in the series and in a SEG a Chinese tool wrote so:
    # one patient (before, the series' ID read as its bytes and the SEG's as mojibake
    # would have differed)
    for path in sorted((tmp_path / "ct").iterdir()):
        ds = pydicom.dcmread(path)
        ds.PatientID = "住院0042".encode(encode)
        ds.save_as(path)
    theirs = pydicom.dcmread(tmp_path / "s.dcm")
    theirs.PatientID = "住院0042".encode(encode)
    if term is None:
        del theirs.SpecificCharacterSet
    else:
        theirs.SpecificCharacterSet = term
    theirs.save_as(tmp_path / "theirs.dcm")
    with pytest.warns(MedmaskWarning, match="PatientName, PatientID, StudyDescription"):
        pack(
            tmp_path / "theirs.dcm",
            tmp_path / "b.mska",
            reference=read_source_series(series.folder),
        )


def test_a_source_names_patient_in_iso_2022_the_seg_holds_no_escape_sequences(
    tmp_path: Path,
) -> None:
    """GB2312 by ISO 2022 IR 58 ("Zhang^San=ESC $ ) A 张^三"): pydicom 3 leaves the escape
    sequence in the text, and the SEG carried an ESC character in its UTF-8 PatientName
    (pydicom then warns "unknown escape sequence" reading it). It is left out."""
    series = ct(tmp_path / "ct")
    for path in sorted((tmp_path / "ct").iterdir()):
        ds = pydicom.dcmread(path)
        ds.SpecificCharacterSet = ["", "ISO 2022 IR 58"]
        ds.PatientName = b"Zhang^San=\x1b$)A" + "张^三".encode("gb2312")
        ds.save_as(path)
    assert "\x1b" in str(pydicom.dcmread(path).PatientName)  # (pydicom 3 keeps it)
    archive = tmp_path / "a.mska"
    pack(highdicom_seg(series, tmp_path / "s.dcm"), archive, reference=SPACE)
    export_seg(archive, series.folder, tmp_path / "seg.dcm", transfer_syntax="explicit")
    assert str(pydicom.dcmread(tmp_path / "seg.dcm").PatientName) == "Zhang^San=张^三"
    if shutil.which("dciodvfy"):
        run = subprocess.run(["dciodvfy", str(tmp_path / "seg.dcm")], capture_output=True,
                             text=True, check=False)  # fmt: skip
        assert not [line for line in run.stderr.splitlines() if line.startswith("Error")]


def test_nifti_masks_with_source_are_checked_against_the_series_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``pack MASKS/ --source CT`` recorded CT's series as the one the masks were drawn on
    whatever their grid (a catalog then joined them to it), and ``--like`` was ignored.
    Masks on the series' grid (NIfTI's axes the other way round too) are packed with the
    series recorded; masks on another grid are refused, and no archive is written."""
    series = ct(tmp_path / "ct")
    masks_dir = tmp_path / "masks"
    masks_dir.mkdir()
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1.0, SPACE.shape[0] - 1  # voxel i -> n - 1 - i
    for name, mask in masks().items():  # the first axis the other way round, as some write it
        image = nib.Nifti1Image(mask[::-1].astype(np.uint8), nifti_affine(SPACE) @ flip)
        nib.save(image, masks_dir / f"{name}.nii.gz")
    argv = ["pack", str(masks_dir), "--source", str(series.folder)]
    assert main([*argv, "-o", str(tmp_path / "a.mska")]) == 0
    with MaskArchive(tmp_path / "a.mska") as archive:
        assert archive.image_series is not None
        assert archive.image_series["SeriesInstanceUID"] == series.datasets[0].SeriesInstanceUID
    other = tmp_path / "other"
    other.mkdir()
    moved = Space(shape=SPACE.shape, origin=(0.0, 0.0, 0.0), spacing=SPACE.spacing)
    SegmentationMask(masks()["liver"].astype(np.uint8), {"liver": 1}, moved).to_nifti(
        other / "liver.nii.gz"
    )
    capsys.readouterr()
    argv = ["pack", str(other), "--source", str(series.folder)]
    assert main([*argv, "-o", str(tmp_path / "b.mska")]) == 1
    err = capsys.readouterr().err
    assert "masks of these files keep their own grid" in err and "mm apart" in err
    assert not (tmp_path / "b.mska").exists()
    assert main(["pack", str(other), "--like", str(tmp_path / "a.mska"),
                 "-o", str(tmp_path / "c.mska")]) == 1  # fmt: skip
    assert "is not the --like grid" in capsys.readouterr().err


def test_highdicom_finds_the_source_slice_of_every_frame_we_write(tmp_path: Path) -> None:
    series = ct(tmp_path / "ct")
    highdicom_seg(series, tmp_path / "s.dcm")
    pack(tmp_path / "s.dcm", tmp_path / "a.mska", reference=SPACE)
    export_seg(tmp_path / "a.mska", series.folder, tmp_path / "ours.dcm")
    seg = hd.seg.segread(tmp_path / "ours.dcm")
    uids = [str(d.SOPInstanceUID) for d in series.datasets]
    pixels = seg.get_pixels_by_source_instance(uids, combine_segments=False)  # needs the flag
    numbers = {seg.get_segment_description(n).segment_label: n for n in seg.segment_numbers}
    for name, mask in masks().items():
        by_slice = pixels[..., numbers[name] - 1] != 0  # (slice, row, column)
        assert np.array_equal(by_slice, mask.transpose(2, 1, 0)), name


def test_misleading_cases_get_the_real_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # uneven slices (the last one 1 mm further), a SEG on them, read onto its own frames
    series = ct(tmp_path / "ct")
    last = series.datasets[-1]
    last.ImagePositionPatient = [
        *last.ImagePositionPatient[:2],
        float(last.ImagePositionPatient[2]) + 1,
    ]
    names = list(masks())
    pixels = np.stack([masks()[n].transpose(2, 1, 0) for n in names], axis=-1)
    write_seg(series.datasets, pixels.astype(np.uint8), descriptions(names), tmp_path / "gappy.dcm")
    err = cli_error(capsys, "pack", tmp_path / "gappy.dcm", "-o", tmp_path / "a.mska")
    assert "gappy.dcm: its frames' slices are unevenly spaced" in err
    assert "between the grid's voxels" not in err
    # a SEG of another pixel spacing onto a grid of the same axes
    fine = ct(tmp_path / "fine", space=Space(shape=(6, 5, 4), spacing=(0.5, 0.9, 2.0)))
    highdicom_seg(fine, tmp_path / "fine.dcm")
    from medmask.errors import GeometryMismatchError
    from medmask.exchange.dicom.exchange import seg_masks

    with pytest.raises(GeometryMismatchError, match=r"fine\.dcm: its frames' pixel spacing"):
        dict(seg_masks([tmp_path / "fine.dcm"], space=SPACE))
    # a slide-microscopy style SEG: no patient-space positions
    ds = pydicom.dcmread(tmp_path / "fine.dcm")
    for item in ds.PerFrameFunctionalGroupsSequence:
        del item.PlanePositionSequence
    ds.TotalPixelMatrixRows = 5
    ds.save_as(tmp_path / "slide.dcm")
    err = cli_error(capsys, "pack", tmp_path / "slide.dcm", "-o", tmp_path / "c.mska")
    assert "slide.dcm: a segmentation of a slide" in err
    # cut short before SegmentationType
    raw = (tmp_path / "fine.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(raw[: raw.index(b"\x62\x00\x01\x00")])
    err = cli_error(capsys, "pack", tmp_path / "cut.dcm", "-o", tmp_path / "d.mska")
    assert "cut.dcm" in err
    assert "SegmentationType ''" not in err


def test_a_label_map_with_only_background_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    series = ct(tmp_path / "ct")
    ds = pydicom.dcmread(highdicom_seg(series, tmp_path / "labels.dcm", kind="LABELMAP"))
    ds.SegmentSequence = DicomSequence(
        [item for item in ds.SegmentSequence if int(item.SegmentNumber) == 0]
    )
    ds.save_as(tmp_path / "background.dcm")
    err = cli_error(capsys, "pack", tmp_path / "background.dcm", "-o", tmp_path / "a.mska")
    assert "background.dcm: the DICOM SEG declares no segment that holds a mask" in err
    assert "no .nii" not in err


def test_a_seg_is_read_onto_the_grid_of_a_scan_in_nifti(tmp_path: Path) -> None:
    """``--like ct.nii.gz``: the scan's grid (its header; a CT's voxels are no mask, and
    reading them as one refused the scan: "not a mask: the array holds -1024"). The
    masks come out as when read onto the series itself."""
    import nibabel as nib

    from medmask.model.geometry import nifti_affine

    series = ct(tmp_path / "ct")
    seg = highdicom_seg(series, tmp_path / "seg.dcm")
    scan = np.full(tuple(SPACE.shape), -1024, np.int16)
    nib.save(nib.Nifti1Image(scan, nifti_affine(SPACE)), tmp_path / "ct.nii.gz")
    like = ["pack", str(seg), "--like", str(tmp_path / "ct.nii.gz"), "-o"]
    assert main([*like, str(tmp_path / "like.mska")]) == 0
    pack(seg, tmp_path / "source.mska", reference=read_source_series(series.folder))
    onto_scan, onto_series = read_back(tmp_path / "like.mska"), read_back(tmp_path / "source.mska")
    for name, expected in masks().items():
        assert np.array_equal(onto_scan[name], expected)
        assert np.array_equal(onto_series[name], expected)
