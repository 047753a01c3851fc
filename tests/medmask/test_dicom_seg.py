"""DICOM SEG export and import: read back by highdicom and pydicom, geometry, dciodvfy.

The masks are the generated sample (117 organs, 21 of them empty, overlaps declared),
the source a CT series the sample generator writes for their grid. highdicom is the
reference reader (and, for FRACTIONAL and LABELMAP inputs, the reference writer).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_file_meta_info
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian

from medmask import GeometryMismatchError, MaskArchive, MedmaskError, SegmentationMask
from medmask.cli import main
from medmask.exchange.dicom.exchange import export_seg, seg_masks
from medmask.exchange.dicom.grid import map_axes
from medmask.exchange.dicom.seg_writer import _frame_groups, _FrameEncoder
from medmask.exchange.dicom.source import read_source_series
from medmask.model.space import space_from_affine
from medmask.ops.pack import pack
from medmask.ops.unpack import unpack_archive
from medmask.sample import generate_masks
from medmask.sample.ct_series import write_ct_series


@dataclass(frozen=True)
class Case:
    folder: Path
    archive: Path
    ct: Path
    ct_volume: np.ndarray
    masks: dict[str, np.ndarray]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    folder = tmp_path_factory.mktemp("seg")
    sample = generate_masks(folder / "sample", scale="small")
    ct_image = nib.load(sample.ct_path)
    ct_volume = np.asarray(ct_image.dataobj)
    space = space_from_affine(ct_image.affine, ct_image.shape)
    write_ct_series(ct_volume, space, folder / "ct")
    archive = folder / "sample.mska"
    pack(sample.masks_dir, archive)
    with MaskArchive(archive) as opened:
        masks = {name: np.asarray(opened.load_mask(name).data) != 0 for name in opened}
    return Case(folder, archive, folder / "ct", ct_volume, masks)


def counts_by_highdicom(path: Path) -> dict[str, int]:
    seg = hd.seg.segread(path)
    volume = seg.get_volume(combine_segments=False)
    labels = [seg.get_segment_description(n).segment_label for n in seg.segment_numbers]
    return {label: int(volume.array[..., i].sum()) for i, label in enumerate(labels)}


@pytest.mark.parametrize("syntax", ["deflated", "explicit"])
def test_every_mask_reads_back_with_highdicom_and_pydicom(
    case: Case, tmp_path: Path, syntax: str
) -> None:
    out = tmp_path / "seg.dcm"
    result = export_seg(case.archive, case.ct, out, transfer_syntax=syntax)  # type: ignore[arg-type]
    counts = {n: int(m.sum()) for n, m in case.masks.items()}
    non_empty = {n: c for n, c in counts.items() if c}
    assert sorted(result.empty) == sorted(n for n, c in counts.items() if not c)
    assert result.empty  # the sample has empty masks: segments without frames
    assert counts_by_highdicom(out) == counts  # every mask, the empty ones as 0 voxels
    ds = pydicom.dcmread(out)
    source = pydicom.dcmread(next(case.ct.glob("*.dcm")))
    assert ds.file_meta.TransferSyntaxUID == result.transfer_syntax
    assert ds.StudyInstanceUID == source.StudyInstanceUID
    assert ds.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert ds.PatientID == source.PatientID
    referenced = ds.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == source.SeriesInstanceUID
    assert len(referenced.ReferencedInstanceSequence) == len(list(case.ct.glob("*.dcm")))
    assert int(ds.pixel_array.sum()) == sum(non_empty.values())
    liver = next(s for s in ds.SegmentSequence if s.SegmentLabel == "liver")
    assert liver.SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"
    kidney = next(s for s in ds.SegmentSequence if s.SegmentLabel == "kidney_left")
    modifier = kidney.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence
    assert modifier[0].CodeMeaning == "Left"
    assert liver.SegmentAlgorithmName == "medmask"


def test_seg_to_archive_gives_every_voxel_back(case: Case, tmp_path: Path) -> None:
    seg = tmp_path / "seg.dcm"
    export_seg(case.archive, case.ct, seg)
    with MaskArchive(case.archive) as opened:
        space = opened.space
    assert space is not None
    back = tmp_path / "back.mska"
    pack(seg, back, reference=space)  # onto the archive's own grid
    with MaskArchive(back) as opened:
        for name in opened:
            assert np.array_equal(np.asarray(opened.load_mask(name).data) != 0, case.masks[name])
        assert sorted(opened) == sorted(case.masks)  # empty masks too: looked for, not found
    # and on to NIfTI: the files equal the generator's own, voxels and affine
    unpack_archive(back, tmp_path / "nifti")
    for path in sorted((tmp_path / "nifti").glob("*.nii.gz")):
        original = nib.load(case.folder / "sample" / "segmentations" / path.name)
        written = nib.load(path)
        assert np.array_equal(np.asarray(written.dataobj) != 0, np.asarray(original.dataobj) != 0)
        assert np.allclose(written.affine, original.affine, atol=1e-4)
    # onto the source series' grid, then by the same axis map back to the masks' grid
    source = read_source_series(case.ct)
    axes = map_axes(space, source.grid)
    for name, mask in seg_masks([seg], space=source.grid.space()):
        assert np.array_equal(axes.from_series(np.asarray(mask.data) != 0), case.masks[name])


def test_a_series_with_flipped_axes_gets_the_masks_mirrored_back(
    case: Case, tmp_path: Path
) -> None:
    """Rows stored bottom-up in the series: the SEG follows the series, voxels stay put."""
    with MaskArchive(case.archive) as opened:
        space = opened.space
    assert space is not None
    y = np.asarray(space.y_orientation, dtype=np.float64)
    end = np.asarray(space.origin) + (int(space.shape[1]) - 1) * float(space.spacing[1]) * y
    flipped = type(space)(
        shape=space.shape, origin=tuple(float(v) for v in end), spacing=space.spacing,
        x_orientation=space.x_orientation, y_orientation=tuple(float(v) for v in -y),
        z_orientation=space.z_orientation,
    )  # fmt: skip
    write_ct_series(case.ct_volume[:, ::-1, :].copy(), flipped, tmp_path / "ct")
    seg = tmp_path / "seg.dcm"
    export_seg(case.archive, tmp_path / "ct", seg)
    # the series' slices sort along its own normal, x cross -y: rows and slices both turn
    assert map_axes(space, read_source_series(tmp_path / "ct").grid).flips == (False, True, True)
    back = tmp_path / "back.mska"
    pack(seg, back, reference=space)
    with MaskArchive(back) as opened:
        for name in opened:
            assert np.array_equal(np.asarray(opened.load_mask(name).data) != 0, case.masks[name])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shift": 5.0}, "mm apart"),
        ({"tilt_degrees": 12.0}, "gantry tilt"),
        ({"spacing": 2.0}, "spacing"),
    ],
)
def test_another_grid_is_refused_naming_both(
    case: Case, tmp_path: Path, change: dict[str, float], message: str
) -> None:
    with MaskArchive(case.archive) as opened:
        space = opened.space
    assert space is not None
    other = space
    if "shift" in change:
        origin = tuple(float(v) + change["shift"] for v in space.origin)
        other = type(space)(
            shape=space.shape, origin=origin, spacing=space.spacing,
            x_orientation=space.x_orientation, y_orientation=space.y_orientation,
            z_orientation=space.z_orientation,
        )  # fmt: skip
    if "spacing" in change:
        other = type(space)(
            shape=space.shape, origin=space.origin,
            spacing=(space.spacing[0], space.spacing[1], change["spacing"]),
            x_orientation=space.x_orientation, y_orientation=space.y_orientation,
            z_orientation=space.z_orientation,
        )  # fmt: skip
    tilt = change.get("tilt_degrees", 0.0)
    write_ct_series(case.ct_volume, other, tmp_path / "ct", tilt_degrees=tilt)
    with pytest.raises(GeometryMismatchError, match=message) as caught:
        export_seg(case.archive, tmp_path / "ct", tmp_path / "seg.dcm")
    text = str(caught.value)
    assert "the masks' grid (" in text and "slices of" in text  # both geometries named
    assert not (tmp_path / "seg.dcm").exists()


def test_the_command_line_exports_and_packs(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seg = tmp_path / "seg.dcm"
    assert main(["export-seg", str(case.archive), "--source", str(case.ct), "-o", str(seg)]) == 0
    out, err = capsys.readouterr()
    empty = sum(not m.any() for m in case.masks.values())
    assert f"BINARY SEG, {len(case.masks)} segments, {empty} of them empty" in out and not err
    skipped = tmp_path / "skipped.dcm"
    argv = ["export-seg", str(case.archive), "--source", str(case.ct), "-o", str(skipped)]
    assert main([*argv, "--skip-empty"]) == 0
    out, err = capsys.readouterr()
    assert f"{len(case.masks) - empty} segments," in out
    assert f"{empty} empty masks have no voxels" in err
    back = tmp_path / "back.mska"
    assert main(["pack", str(seg), "-o", str(back), "--source", str(case.ct)]) == 0
    with MaskArchive(back) as opened:
        assert sorted(opened) == sorted(case.masks)
    assert (
        main(
            [
                "export-seg",
                str(case.archive),
                "--source",
                str(tmp_path),
                "-o",
                str(seg),
                "--overwrite",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no DICOM image slices" in err


def test_per_frame_bytes_equal_what_pydicom_builds(case: Case) -> None:
    source = read_source_series(case.ct)
    frames = [(1, 0), (2, 5), (117, len(source.sop_instance_uids) - 1)]
    for (segment, s), raw in zip(frames, _FrameEncoder(source).items(frames), strict=True):
        buffer = DicomBytesIO(raw[8:])  # the item's content, after its tag and length
        buffer.is_little_endian, buffer.is_implicit_VR = True, False
        decoded = read_dataset(buffer, is_implicit_VR=False, is_little_endian=True)
        assert decoded == _frame_groups(source, segment, s)


def shuffled_and_split(path: Path, out: Path) -> list[Path]:
    """The SEG as two instances (segments split), each with its frames in random order."""
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array
    numbers = [int(s.SegmentNumber) for s in ds.SegmentSequence]
    halves = [numbers[: len(numbers) // 2], numbers[len(numbers) // 2 :]]
    paths = []
    for i, keep in enumerate(halves):
        part = pydicom.dcmread(path)
        frames = [
            j for j, item in enumerate(ds.PerFrameFunctionalGroupsSequence)
            if int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber) in keep
        ]  # fmt: skip
        random.Random(i).shuffle(frames)
        part.PerFrameFunctionalGroupsSequence = DicomSequence(
            [ds.PerFrameFunctionalGroupsSequence[j] for j in frames]
        )
        part.SegmentSequence = DicomSequence(
            [s for s in ds.SegmentSequence if int(s.SegmentNumber) in keep]
        )
        part.NumberOfFrames = len(frames)
        bits = np.packbits(pixels[frames].reshape(-1), bitorder="little").tobytes()
        part.PixelData = bits + (b"\0" if len(bits) % 2 else b"")
        part.SOPInstanceUID = pydicom.uid.generate_uid()
        part.file_meta.MediaStorageSOPInstanceUID = part.SOPInstanceUID
        part.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        paths.append(out / f"part{i}.dcm")
        part.save_as(paths[-1], enforce_file_format=True)
    return paths


def test_frames_in_any_order_and_several_instances(case: Case, tmp_path: Path) -> None:
    seg = tmp_path / "seg.dcm"
    export_seg(case.archive, case.ct, seg)
    parts = tmp_path / "parts"
    parts.mkdir()
    shuffled_and_split(seg, parts)
    with MaskArchive(case.archive) as opened:
        space = opened.space
    back = tmp_path / "back.mska"
    pack(parts, back, reference=space)  # a folder of one segmentation's instances
    with MaskArchive(back) as opened:
        assert sorted(opened) == sorted(case.masks)  # empty masks too: looked for, not found
        for name in opened:
            assert np.array_equal(np.asarray(opened.load_mask(name).data) != 0, case.masks[name])


def highdicom_seg(case: Case, kind: str, path: Path, names: list[str]) -> np.ndarray:
    """A FRACTIONAL or LABELMAP SEG of ``names`` by highdicom; returns what it encodes."""
    from pydicom.sr.codedict import codes

    series = sorted(
        (pydicom.dcmread(p) for p in case.ct.glob("*.dcm")), key=lambda d: int(d.InstanceNumber)
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=i + 1, segment_label=name,
            segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for i, name in enumerate(names)
    ]  # fmt: skip
    if kind == "FRACTIONAL":
        rng = np.random.default_rng(0)
        stacked = np.stack([case.masks[n].transpose(2, 1, 0) for n in names], axis=-1)
        pixel_array = np.where(
            stacked, rng.uniform(0.5, 1.0, stacked.shape), rng.uniform(0, 0.49, stacked.shape)
        )
        expected = stacked
    else:  # a label map: later names win where masks overlap
        labels = np.zeros(case.masks[names[0]].shape, np.uint8)
        for i, name in enumerate(names):
            labels[case.masks[name]] = i + 1
        pixel_array = labels.transpose(2, 1, 0)
        expected = np.stack([pixel_array == i + 1 for i in range(len(names))], axis=-1)
    dtype = np.float32 if kind == "FRACTIONAL" else np.uint8
    seg = hd.seg.Segmentation(
        source_images=series, pixel_array=pixel_array.astype(dtype),
        segmentation_type=getattr(hd.seg.SegmentationTypeValues, kind),
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=5,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test",
        manufacturer_model_name="test", software_versions="1", device_serial_number="1",
    )  # fmt: skip
    seg.save_as(path)
    return expected


@pytest.mark.parametrize("kind", ["FRACTIONAL", "LABELMAP"])
def test_fractional_and_labelmap_segs_of_highdicom(case: Case, tmp_path: Path, kind: str) -> None:
    names = ["liver", "spleen", "kidney_left", "stomach"]
    seg = tmp_path / "seg.dcm"
    expected = highdicom_seg(case, kind, seg, names)
    source = read_source_series(case.ct)
    notes: list[str] = []
    read = dict(seg_masks([seg], space=source.grid.space(), notes=notes))
    assert sorted(read) == sorted(names)
    for i, name in enumerate(names):
        assert np.array_equal(
            np.asarray(read[name].data).transpose(2, 1, 0) != 0, expected[..., i]
        ), name
    assert bool(notes) == (kind == "FRACTIONAL")
    if notes:
        assert "thresholded at half" in notes[0]


def test_not_a_seg_and_an_empty_archive_are_clear_errors(case: Case, tmp_path: Path) -> None:
    ct_file = next(case.ct.glob("*.dcm"))
    with pytest.raises(
        MedmaskError, match=r"CT\d+\.dcm: a DICOM file, but not a Segmentation \(SOP class CT Image"
    ):
        pack(ct_file, tmp_path / "x.mska")
    with MaskArchive(case.archive) as opened:
        space = opened.space
    assert space is not None
    nothing = SegmentationMask(
        np.zeros(tuple(int(n) for n in space.shape), np.uint8), {"x": 1}, space
    )
    empty = tmp_path / "empty.mska"
    with MaskArchive(empty, "w") as archive:
        archive.add_mask(nothing, "nothing")
    with pytest.raises(MedmaskError, match="every mask is empty"):
        export_seg(empty, case.ct, tmp_path / "seg.dcm", keep_empty=False)
    for kind in ("binary", "labelmap"):  # by default: one segment, one blank frame
        written = export_seg(empty, case.ct, tmp_path / f"{kind}.dcm", segmentation_type=kind)  # type: ignore[arg-type]
        assert (written.segments, written.empty, written.frames) == (("nothing",), ("nothing",), 1)
        assert counts_by_highdicom(written.path) == {"nothing": 0}


def inflated(path: Path, out: Path) -> Path:
    """A deflated file's bytes inflated: the same data set in Explicit VR Little Endian."""
    raw = path.read_bytes()
    meta = pydicom.dcmread(path, stop_before_pixels=True).file_meta
    meta_end = 132 + 12 + int(meta.FileMetaInformationGroupLength)
    body = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw[meta_end:])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    head = DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    out.write_bytes(head.getvalue() + body)
    return out


@pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) is not installed"
)
@pytest.mark.parametrize("syntax", ["explicit", "deflated"])
def test_dciodvfy_finds_no_errors(case: Case, tmp_path: Path, syntax: str) -> None:
    seg = tmp_path / "seg.dcm"
    export_seg(case.archive, case.ct, seg, transfer_syntax=syntax)  # type: ignore[arg-type]
    if syntax == "deflated":  # Debian's dicom3tools cannot inflate: check the inflated bytes
        seg = inflated(seg, tmp_path / "inflated.dcm")
        assert pydicom.dcmread(seg) == pydicom.dcmread(tmp_path / "seg.dcm")
    result = subprocess.run(["dciodvfy", str(seg)], capture_output=True, text=True, check=False)
    report = result.stdout + result.stderr
    assert "Segmentation" in report
    errors = [line for line in report.splitlines() if line.startswith("Error")]
    assert not errors, report


SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED / "totalseg_s0000").is_dir(), reason="needs ../shared/data")
def test_s0000_onto_a_series_of_its_own_geometry(tmp_path: Path) -> None:
    """TotalSegmentator's s0000 (oblique, 1.5 mm) on a CT series with a real CT's header."""
    masks = SegmentationMask.from_nifti_folder(SHARED / "totalseg_s0000")
    archive = tmp_path / "s0000.mska"
    with MaskArchive(archive, "w") as out:
        for name, mask in masks.items():
            out.add_mask(mask, name)
        space = out.space
    assert space is not None
    templates = sorted((SHARED / "ct_sample").glob("*"))
    template = pydicom.dcmread(templates[0], stop_before_pixels=True) if templates else None
    shape = tuple(int(n) for n in space.shape)
    write_ct_series(np.zeros(shape, np.int16), space, tmp_path / "ct", template=template)
    seg = tmp_path / "s0000_seg.dcm"
    result = export_seg(archive, tmp_path / "ct", seg)
    truth = {n: int(np.count_nonzero(m.data)) for n, m in masks.items()}
    assert counts_by_highdicom(seg) == truth  # 117 segments, 96 of them without frames
    assert len(result.segments) == len(truth) == 117
    assert len(result.empty) == sum(1 for c in truth.values() if not c)
    if template is not None:
        assert pydicom.dcmread(seg).PatientName == template.PatientName
    back = SegmentationMask.from_dicom_seg(seg, space=space)
    assert sorted(back) == sorted(masks)  # 117 in, 117 out
    for name, mask in back.items():  # every voxel, the 21 shared ones included
        assert np.array_equal(np.asarray(mask.data) != 0, np.asarray(masks[name].data) != 0), name


def test_every_writer_chooses_masks_the_same_way(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """unpack, export-seg and export-slicer: a name given twice is written once, an
    unknown name is the same one-line error (files.archive.select_masks)."""
    twice = ["-n", "liver", "-n", "spleen", "-n", "liver"]
    assert main(["unpack", str(case.archive), "-o", str(tmp_path / "nii"), *twice]) == 0
    assert sorted(p.name for p in (tmp_path / "nii").iterdir()) == [
        "liver.nii.gz",
        "spleen.nii.gz",
    ]
    seg = tmp_path / "x.dcm"
    argv = ["export-seg", str(case.archive), "--source", str(case.ct), "-o", str(seg)]
    assert main([*argv, *twice]) == 0
    assert sorted(counts_by_highdicom(seg)) == ["liver", "spleen"]
    nrrd = tmp_path / "x.seg.nrrd"
    assert main(["export-slicer", str(case.archive), "-o", str(nrrd), *twice]) == 0
    import slicerio

    segments = slicerio.read_segmentation(str(nrrd), skip_voxels=True)["segments"]
    assert sorted(s["name"] for s in segments) == ["liver", "spleen"]
    capsys.readouterr()
    errors = []
    for command in (
        ["unpack", str(case.archive), "-o", str(tmp_path / "n2")],
        ["export-seg", str(case.archive), "--source", str(case.ct), "-o", str(tmp_path / "y.dcm")],
        ["export-slicer", str(case.archive), "-o", str(tmp_path / "y.seg.nrrd")],
    ):
        assert main([*command, "-n", "nope"]) == 1
        errors.append(capsys.readouterr().err.strip())
    assert len(set(errors)) == 1 and "no mask named 'nope'" in errors[0], errors


def non_overlapping(masks: dict[str, np.ndarray]) -> list[str]:
    """Names of masks that share no voxel, in name order (first come, first kept)."""
    taken = np.zeros(next(iter(masks.values())).shape, bool)
    names = []
    for name in sorted(masks):
        if not (masks[name] & taken).any():
            names.append(name)
            taken |= masks[name]
    return names


@pytest.mark.parametrize("syntax", ["deflated", "explicit"])
def test_a_labelmap_reads_back_exactly_with_highdicom_and_medmask(
    case: Case, tmp_path: Path, syntax: str
) -> None:
    names = non_overlapping(case.masks)
    assert any(not case.masks[n].any() for n in names)  # empty masks among them
    out = tmp_path / "labelmap.dcm"
    result = export_seg(
        case.archive, case.ct, out, names=names, segmentation_type="labelmap",
        transfer_syntax=syntax,  # type: ignore[arg-type]
    )  # fmt: skip
    assert result.segmentation_type == "LABELMAP" and list(result.segments) == names
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.7"
    assert (ds.SegmentationType, ds.BitsAllocated) == ("LABELMAP", 8)
    touched = {z for m in case.masks.values() for z in np.flatnonzero(m.any(axis=(0, 1)))}
    assert int(ds.NumberOfFrames) == result.frames == len(touched & set(range(64)))
    seg = hd.seg.segread(out)
    assert str(seg.segmentation_type.value) == "LABELMAP"
    volume = seg.get_volume(combine_segments=False)
    by_label = {
        seg.get_segment_description(n).segment_label: volume.array[..., i]
        for i, n in enumerate(seg.segment_numbers)
    }
    assert sorted(by_label) == sorted(names)
    for name in names:  # highdicom's volume: slices of the frames, rows, columns
        assert int(by_label[name].sum()) == int(case.masks[name].sum()), name
    source = read_source_series(case.ct)
    with MaskArchive(case.archive) as opened:
        space = opened.space
    assert space is not None
    axes = map_axes(space, source.grid)
    read = dict(seg_masks([out], space=source.grid.space()))
    assert sorted(read) == sorted(names)
    for name in names:
        back = axes.from_series(np.asarray(read[name].data) != 0)
        assert np.array_equal(back, case.masks[name]), name


def test_a_labelmap_refuses_overlapping_masks_naming_them(case: Case, tmp_path: Path) -> None:
    with MaskArchive(case.archive) as opened:
        space = opened.space
    assert space is not None
    shape = tuple(int(n) for n in space.shape)
    first = np.zeros(shape, np.uint8)
    first[2:6, 2:6, 2:6] = 1
    second = np.zeros(shape, np.uint8)
    second[5:8, 5:8, 5:8] = 1  # one voxel shared: (5, 5, 5)
    archive = tmp_path / "overlap.mska"
    with MaskArchive(archive, "w") as out:
        out.add_mask(SegmentationMask(first, {"first": 1}, space), "first")
        out.add_mask(SegmentationMask(second, {"second": 1}, space), "second")
    with pytest.raises(MedmaskError, match=r"first and second \(1 voxels\).*BINARY SEG"):
        export_seg(archive, case.ct, tmp_path / "x.dcm", segmentation_type="labelmap")
    assert not (tmp_path / "x.dcm").exists()
    argv = ["export-seg", str(archive), "--source", str(case.ct), "-o", str(tmp_path / "y.dcm")]
    assert main([*argv, "--type", "labelmap"]) == 1
    assert main(argv) == 0  # BINARY keeps both
    assert counts_by_highdicom(tmp_path / "y.dcm") == {"first": 64, "second": 27}


@pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) is not installed"
)
def test_dciodvfy_on_a_labelmap(case: Case, tmp_path: Path) -> None:
    """dciodvfy knows the Label Map Segmentation IOD from DICOM 2024c on; an older one
    (Debian's, here) says "Information Object Not found". Then the same data set, labelled
    as a (BINARY-era) Segmentation, must show only the label map's own differences: the
    enumerated value LABELMAP and frames that name no segment - every other module (patient,
    study, series, frame of reference, equipment, image pixel, multi-frame) validates."""
    seg = tmp_path / "labelmap.dcm"
    names = non_overlapping(case.masks)
    export_seg(case.archive, case.ct, seg, names=names, segmentation_type="labelmap",
               transfer_syntax="explicit")  # fmt: skip

    def errors_of(path: Path) -> list[str]:
        argv = ["dciodvfy", str(path)]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        return [line for line in (result.stdout + result.stderr).splitlines()
                if line.startswith("Error")]  # fmt: skip

    errors = errors_of(seg)
    if errors != ["Error - Information Object Not found"]:
        assert not errors  # a dciodvfy that knows LABELMAP: no errors at all
        return
    ds = pydicom.dcmread(seg)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    ds.save_as(tmp_path / "as_binary_era_seg.dcm")
    unexpected = [
        line for line in errors_of(tmp_path / "as_binary_era_seg.dcm")
        if "<LABELMAP> for value 1 of attribute <Segmentation Type>" not in line
        and "Element=<SegmentIdentificationSequence> Module=<SegmentationMacro>" not in line
    ]  # fmt: skip
    assert not unexpected, unexpected
