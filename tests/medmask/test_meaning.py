"""Names and meaning survive: Unicode names, coded concepts, colours and algorithms.

Files come from writers we did not write (highdicom, SimpleITK/teem, 3D Slicer via
slicerio's test data when present) and what medmask writes is read by them again.
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from highdicom_segs import write_seg
from pydicom.sr.coding import Code as DicomCode
from spacetransformer import Space

from medmask import MaskArchive, MedmaskWarning, SegmentationMask
from medmask.cli import main
from medmask.exchange.slicer import parse_terminology
from medmask.model.meaning import Code, SegmentMeaning
from medmask.sample.ct_series import write_ct_series

sitk = pytest.importorskip("SimpleITK", reason="SimpleITK is in the test extra")

SPACE = Space(shape=(6, 5, 4), origin=(-10.0, 5.0, 30.0), spacing=(0.8, 0.9, 2.0))
LIVER = DicomCode("10200004", "SCT", "Liver")
ARTERY = DicomCode("51114001", "SCT", "Artery")
ORGAN = DicomCode("113343008", "SCT", "Organ")
TISSUE = DicomCode("85756007", "SCT", "Tissue")


def cli(*argv: str | Path) -> None:
    assert main([str(a) for a in argv]) == 0, argv


def two_masks() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, tuple(SPACE.shape))
    return {"Hepar 肝脏": labels == 1, "Arteria": labels == 2}


def test_coded_concepts_colours_and_algorithm_of_a_seg_come_back(tmp_path: Path) -> None:
    paths = write_ct_series(np.zeros(tuple(SPACE.shape), np.int16), SPACE, tmp_path / "ct")
    series = [pydicom.dcmread(p) for p in paths]
    masks = two_masks()
    family = DicomCode("123109", "DCM", "Manual Processing")  # any family: it must come back
    described = [
        hd.seg.SegmentDescription(
            segment_number=1, segment_label="Hepar 肝脏", segmented_property_category=ORGAN,
            segmented_property_type=LIVER,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name="TotalSegmentator", version="2.4.0", family=family
            ),
        ),
        hd.seg.SegmentDescription(
            segment_number=2, segment_label="Arteria", segmented_property_category=TISSUE,
            segmented_property_type=ARTERY,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        ),
    ]  # fmt: skip
    described[0].RecommendedDisplayCIELabValue = [40000, 40000, 20000]
    pixels = np.stack([m.transpose(2, 1, 0) for m in masks.values()], axis=-1).astype(np.uint8)
    write_seg(series, pixels, described, tmp_path / "in.dcm")
    cli("pack", tmp_path / "in.dcm", "--source", tmp_path / "ct", "-o", tmp_path / "a.mska")
    with MaskArchive(tmp_path / "a.mska") as archive:
        liver = archive.meaning("Hepar 肝脏")
        assert liver is not None
        assert liver.type == Code("10200004", "SCT", "Liver")
        assert liver.category == Code("113343008", "SCT", "Organ")
        assert (liver.algorithm_type, liver.algorithm_name) == ("AUTOMATIC", "TotalSegmentator")
        assert liver.algorithm_version == "2.4.0"
    cli("export-seg", tmp_path / "a.mska", "--source", tmp_path / "ct", "-o", tmp_path / "out.dcm")
    ours = hd.seg.segread(tmp_path / "out.dcm")
    theirs = hd.seg.segread(tmp_path / "in.dcm")
    for number in (1, 2):
        a, b = theirs.get_segment_description(number), ours.get_segment_description(number)
        assert b.segment_label == a.segment_label
        assert b.segmented_property_type == a.segmented_property_type
        assert b.segmented_property_category == a.segmented_property_category
        assert b.algorithm_type == a.algorithm_type
        if a.algorithm_identification:
            assert b.algorithm_identification[0].AlgorithmName == "TotalSegmentator"
            assert b.algorithm_identification[0].AlgorithmVersion == "2.4.0"
            assert (
                b.algorithm_identification[0].AlgorithmFamilyCodeSequence[0].CodeValue == "123109"
            )
        else:
            assert not b.get("SegmentationAlgorithmIdentificationSequence")
    lab = [int(v) for v in ours.get_segment_description(1).RecommendedDisplayCIELabValue]
    assert max(abs(x - y) for x, y in zip(lab, [40000, 40000, 20000], strict=True)) < 400
    volume = ours.get_volume(combine_segments=False)
    assert int(volume.array.sum()) == sum(int(m.sum()) for m in masks.values())


def test_names_are_looked_up_without_regard_to_case(tmp_path: Path) -> None:
    paths = write_ct_series(np.zeros(tuple(SPACE.shape), np.int16), SPACE, tmp_path / "ct")
    assert paths
    array = np.zeros(tuple(SPACE.shape), np.uint8)
    array[1, 1, 1] = 1
    with MaskArchive(tmp_path / "a.mska", "w") as archive:
        archive.add_mask(SegmentationMask(array, {"Liver": 1}, SPACE), "Liver")
        archive.add_mask(SegmentationMask(array, {"Kidney Left": 1}, SPACE), "Kidney Left")
    cli("export-seg", tmp_path / "a.mska", "--source", tmp_path / "ct", "-o", tmp_path / "s.dcm")
    ds = pydicom.dcmread(tmp_path / "s.dcm")
    types = {s.SegmentLabel: s.SegmentedPropertyTypeCodeSequence[0] for s in ds.SegmentSequence}
    assert types["Liver"].CodeValue == "10200004"
    assert types["Kidney Left"].CodeValue == "64033007"
    assert types["Kidney Left"].SegmentedPropertyTypeModifierCodeSequence[0].CodeMeaning == "Left"


def write_sitk_segmentation(path: Path, names: list[str], tags: list[str]) -> np.ndarray:
    """A .seg.nrrd written by SimpleITK (teem): names and tags in UTF-8 as Slicer keeps them."""
    labels = np.zeros((4, 5, 6), np.uint8)  # k, j, i
    for i in range(len(names)):
        labels[i, i, : i + 2] = i + 1
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing((0.8, 0.9, 2.0))
    for i, (name, tag) in enumerate(zip(names, tags, strict=True)):
        image.SetMetaData(f"Segment{i}_Name", name)
        image.SetMetaData(f"Segment{i}_ID", f"Segment_{i + 1}")
        image.SetMetaData(f"Segment{i}_LabelValue", str(i + 1))
        image.SetMetaData(f"Segment{i}_Layer", "0")
        image.SetMetaData(f"Segment{i}_Color", f"0.{i + 2} 0.5 0.25")
        image.SetMetaData(f"Segment{i}_Tags", tag)
    sitk.WriteImage(image, str(path), useCompression=True)
    return labels


RIB = (
    "Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical "
    "Structure~SCT^113197003^Rib~^^~Anatomic codes - DICOM master list~^^~^^"
)


def test_unicode_names_colours_and_terminology_of_a_slicer_file_come_back(tmp_path: Path) -> None:
    names = ["右肺", "Rippen äöü 肋骨"]
    tags = [f"Segmentation.Status:inprogress|TerminologyEntry:{RIB}|", ""]
    write_sitk_segmentation(tmp_path / "in.seg.nrrd", names, tags)
    cli("pack", tmp_path / "in.seg.nrrd", "-o", tmp_path / "a.mska")
    with MaskArchive(tmp_path / "a.mska") as archive:
        assert sorted(archive) == sorted(names)
        rib = archive.meaning("右肺")
        assert rib is not None and rib.type == Code("113197003", "SCT", "Rib")
        assert rib.colour == (51, 128, 64)
    cli("export-slicer", tmp_path / "a.mska", "-o", tmp_path / "out.seg.nrrd")
    out = sitk.ReadImage(str(tmp_path / "out.seg.nrrd"))
    written = {
        out.GetMetaData(f"Segment{i}_Name"): i for i in range(2)
    }  # teem reads the bytes: UTF-8 as written
    assert sorted(written) == sorted(names)
    first = written["右肺"]
    assert f"TerminologyEntry:{RIB}|" in out.GetMetaData(f"Segment{first}_Tags")
    colour = [float(v) for v in out.GetMetaData(f"Segment{first}_Color").split()]
    assert np.allclose(colour, [0.2, 0.5, 0.25], atol=0.5 / 255)
    # the unpacked NIfTI files carry the names too
    cli("unpack", tmp_path / "a.mska", "-o", tmp_path / "nifti")
    assert sorted(p.name for p in (tmp_path / "nifti").iterdir()) == sorted(
        f"{n}.nii.gz" for n in names
    )


def test_a_header_that_is_not_utf8_is_read_and_said(tmp_path: Path) -> None:
    write_sitk_segmentation(tmp_path / "in.seg.nrrd", ["lung"], [""])
    raw = (tmp_path / "in.seg.nrrd").read_bytes()
    gbk = raw.replace(b"Segment0_Name:=lung", "Segment0_Name:=右肺".encode("gb18030"))
    (tmp_path / "gbk.seg.nrrd").write_bytes(gbk)
    from medmask.ops.pack import pack

    with pytest.warns(MedmaskWarning, match=r"gbk\.seg\.nrrd: the NRRD header is not UTF-8"):
        pack(tmp_path / "gbk.seg.nrrd", tmp_path / "a.mska")
    with MaskArchive(tmp_path / "a.mska") as archive:
        assert list(archive) == ["右肺"]


def test_slicer_terminology_entries_parse_into_codes() -> None:
    codes = parse_terminology(RIB)
    assert codes == {
        "category": Code("123037004", "SCT", "Anatomical Structure"),
        "type": Code("113197003", "SCT", "Rib"),
    }
    assert parse_terminology("ctx~^^~SCT^1^X~^^~a~^^~^^") == {}  # a type without category
    meaning = SegmentMeaning(**codes, colour=(1, 2, 3))  # type: ignore[arg-type]
    assert SegmentMeaning.from_dict(meaning.to_dict()) == meaning
    with pytest.raises(ValueError, match="colour"):
        SegmentMeaning(colour=(1, 2, 300))
