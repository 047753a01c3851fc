"""3D Slicer .seg.nrrd export and import: overlaps as layers, Slicer's fields, LPS and RAS."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nrrd
import numpy as np
import pytest

from medmask import FormatError, MaskArchive, MedmaskError, MedmaskWarning, SegmentationMask
from medmask.cli import main
from medmask.exchange.slicer import export_seg_nrrd, read_seg_nrrd
from medmask.model.space import spaces_close
from medmask.ops.pack import pack
from medmask.sample import generate_masks


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("slicer")
    sample = generate_masks(folder / "sample", scale="small")
    path = folder / "sample.mska"
    pack(sample.masks_dir, path)
    return path


def test_every_mask_and_overlap_comes_back(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "organs.seg.nrrd"
    result = export_seg_nrrd(archive, out)
    with MaskArchive(archive) as opened:
        originals = {name: np.asarray(opened.load_mask(name).data) for name in opened}
        space = opened.space
    assert space is not None
    overlapping = any(
        (a & b).any()
        for i, a in enumerate(m != 0 for m in originals.values())
        for j, b in enumerate(m != 0 for m in originals.values())
        if i < j
    )
    assert overlapping and result.layers > 1  # the sample declares overlaps
    back = dict(read_seg_nrrd(out))
    assert list(back) == list(originals)  # every mask, empty ones included, in order
    for name, mask in back.items():
        assert np.array_equal(np.asarray(mask.data), originals[name]), name
        assert spaces_close(mask.space, space)


def test_the_header_is_what_slicer_reads(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "organs.seg.nrrd"
    export_seg_nrrd(archive, out, names=["liver", "spleen", "brain"])
    data, header = nrrd.read(str(out))
    assert header["space"] == "left-posterior-superior"
    assert header["Segmentation_MasterRepresentation"] == "Binary labelmap"
    with MaskArchive(archive) as opened:
        stats = opened.statistics()
    for i, name in enumerate(["liver", "spleen", "brain"]):
        assert header[f"Segment{i}_Name"] == name
        box = stats[name].bbox
        expected = "0 -1 0 -1 0 -1" if box is None else " ".join(f"{a} {b - 1}" for a, b in box)
        assert header[f"Segment{i}_Extent"] == expected  # inclusive, as Slicer writes it
        layer = data if data.ndim == 3 else data[int(header[f"Segment{i}_Layer"])]
        assert (
            int((layer == int(header[f"Segment{i}_LabelValue"])).sum()) == stats[name].voxel_count
        )


def test_a_ras_file_with_one_layer_as_slicer_writes_it(tmp_path: Path) -> None:
    labels = np.zeros((20, 18, 16), np.uint8)
    labels[2:8, 3:9, 4:10] = 1
    labels[10:15, 3:9, 4:10] = 2
    header = {
        "space": "right-anterior-superior",
        "space directions": np.diag([-0.8, -0.8, 2.0]),  # RAS: LPS axes +x, +y
        "space origin": np.array([-10.0, -20.0, 30.0]),
        "kinds": ["domain", "domain", "domain"],
        "Segment0_Name": "kidney_left",
        "Segment0_LabelValue": "1",
        "Segment0_Layer": "0",
        "Segment1_Name": "kidney_right",
        "Segment1_LabelValue": "2",
        "Segment1_Layer": "0",
    }
    path = tmp_path / "two.seg.nrrd"
    nrrd.write(str(path), labels, header)
    back = dict(read_seg_nrrd(path))
    assert np.array_equal(np.asarray(back["kidney_right"].data), (labels == 2).astype(np.uint8))
    space = back["kidney_left"].space
    assert np.allclose(space.origin, (10.0, 20.0, 30.0))
    assert np.allclose(space.x_orientation, (1, 0, 0)) and np.allclose(space.spacing, (0.8, 0.8, 2))
    archive = tmp_path / "two.mska"
    assert main(["pack", str(path), "-o", str(archive)]) == 0
    with MaskArchive(archive) as opened:
        assert sorted(opened) == ["kidney_left", "kidney_right"]


def test_files_that_are_not_segmentations(tmp_path: Path) -> None:
    junk = tmp_path / "junk.seg.nrrd"
    junk.write_bytes(b"not a nrrd")
    with pytest.raises(FormatError, match=r"junk\.seg\.nrrd: not a NRRD file \(it begins"):
        list(read_seg_nrrd(junk))
    plain = tmp_path / "plain.seg.nrrd"
    nrrd.write(
        str(plain),
        np.zeros((4, 4, 4), np.uint8),
        {"space directions": np.eye(3), "space": "left-posterior-superior"},
    )
    with pytest.raises(FormatError, match="no SegmentN_Name"):
        list(read_seg_nrrd(plain))


def test_the_command_line_round_trip(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "organs.seg.nrrd"
    assert main(["export-slicer", str(archive), "-o", str(out)]) == 0
    assert "segments in" in capsys.readouterr().out
    back = tmp_path / "back.mska"
    assert main(["pack", str(out), "-o", str(back)]) == 0
    with MaskArchive(archive) as a, MaskArchive(back) as b:
        assert list(a) == list(b)
        for name in a:
            assert a.load_mask(name) == SegmentationMask(
                np.asarray(b.load_mask(name).data), {name: 1}, b.space
            )
    assert main(["export-slicer", str(archive), "-o", str(tmp_path / "x.nrrd")]) == 2


def test_two_segments_of_one_name_are_kept_apart_and_said(tmp_path: Path) -> None:
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[0, 0, 0], labels[1, 1, 1] = 1, 2
    header = {"space": "left-posterior-superior", "space directions": np.eye(3)}
    for i in range(2):
        header |= {f"Segment{i}_Name": "lesion", f"Segment{i}_LabelValue": str(i + 1)}
    nrrd.write(str(tmp_path / "two.seg.nrrd"), labels, header)
    with pytest.warns(MedmaskWarning, match=r"two segments are named 'lesion'.*'lesion_2'"):
        read = dict(read_seg_nrrd(tmp_path / "two.seg.nrrd"))
    assert sorted(read) == ["lesion", "lesion_2"]
    assert int(np.asarray(read["lesion_2"].data)[1, 1, 1]) == 1


def test_a_name_a_nrrd_header_cannot_hold_is_a_clear_error(tmp_path: Path) -> None:
    from spacetransformer import Space

    space = Space(shape=(3, 3, 3))
    with MaskArchive(tmp_path / "a.mska", "w", space=space) as archive:
        archive.add_mask(SegmentationMask(np.ones((3, 3, 3), np.uint8), {"a\nb": 1}, space), "a\nb")
    with pytest.raises(MedmaskError, match=r"x\.seg\.nrrd: cannot be written: .* line break"):
        export_seg_nrrd(tmp_path / "a.mska", tmp_path / "x.seg.nrrd")
    assert not (tmp_path / "x.seg.nrrd").exists()


def test_plain_nrrd_label_maps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A .nrrd that is not a .seg.nrrd is a label map: named as a NIfTI file's labels
    are (one value: the file's stem; else idx_<label> with a warning); what is not one,
    and image formats pack does not read, get one error naming the file."""
    lps = {"space": "left-posterior-superior", "space directions": np.diag([0.5, 0.5, 2.0])}
    one = np.zeros((6, 5, 4), np.uint8)
    one[1:3, 2:4, 1:3] = 1
    nrrd.write(str(tmp_path / "liver.nrrd"), one, lps)
    result = pack(tmp_path / "liver.nrrd", tmp_path / "a.mska")
    assert (result.kind, result.masks) == ("nrrd-labels", ["liver"])
    with MaskArchive(tmp_path / "a.mska") as archive:
        assert np.array_equal(np.asarray(archive.load_mask("liver").data), one)
    two = one.astype(np.int16) * 7
    two[4, 4, 3] = 3
    nrrd.write(str(tmp_path / "organs.nrrd"), two, lps)
    with pytest.warns(MedmaskWarning, match=r"labels \[3, 7\] have no name"):
        result = pack(tmp_path / "organs.nrrd", tmp_path / "b.mska")
    assert result.masks == ["idx_3", "idx_7"]
    nrrd.write(str(tmp_path / "four.nrrd"), one[None], {"space dimension": 3})
    assert main(["pack", str(tmp_path / "four.nrrd"), "-o", str(tmp_path / "c.mska")]) == 1
    assert "four.nrrd: a label map must be 3-D, got (1, 6, 5, 4)" in capsys.readouterr().err
    (tmp_path / "scan.mha").write_bytes(b"ObjectType = Image\nNDims = 3\n")
    assert main(["pack", str(tmp_path / "scan.mha"), "-o", str(tmp_path / "d.mska")]) == 1
    err = capsys.readouterr().err
    assert "scan.mha: not a folder of masks" in err and "convert it to .nii.gz first" in err
    assert not (tmp_path / "c.mska").exists() and not (tmp_path / "d.mska").exists()


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ({}, "no space directions: placed at the origin, axes along LPS; no space named"),
        ({"spacings": [0.5, 0.75, 2.0]}, "no space directions"),
        (
            {"space dimension": 3, "space directions": np.diag([0.5, 0.75, 2.0]),
             "space origin": np.array([1.0, 2.0, 3.0])},
            "(no space named: read as left-posterior-superior, as ITK",
        ),
    ],
)  # fmt: skip
def test_nrrd_files_that_do_not_say_where_they_lie(
    tmp_path: Path, header: dict[str, object], missing: str
) -> None:
    """Placed as ITK (SimpleITK, 3D Slicer) places them, with a warning saying what the
    file does not record (they were refused as having no space directions)."""
    sitk = pytest.importorskip("SimpleITK")
    labels = np.zeros((6, 5, 4), np.uint8)
    labels[1:3, 2:4, 1:3] = 1
    path = tmp_path / "liver.nrrd"
    nrrd.write(str(path), labels, header)
    with pytest.warns(MedmaskWarning, match=f"liver.nrrd: .*{re.escape(missing)}"):
        pack(path, tmp_path / "a.mska")
    by_itk = sitk.ReadImage(str(path))
    with MaskArchive(tmp_path / "a.mska") as archive:
        space = archive.load_mask("liver").space
    assert np.allclose(space.origin, by_itk.GetOrigin())
    assert np.allclose(space.spacing, by_itk.GetSpacing())
    columns = np.array([space.x_orientation, space.y_orientation, space.z_orientation]).T
    assert np.allclose(columns.ravel(), by_itk.GetDirection())


def test_a_segmentation_saved_without_seg_in_its_name_is_one(archive: Path, tmp_path: Path) -> None:
    """A Slicer segmentation named ``.nrrd`` (renamed, or saved so): its header's segment
    fields make it one - segment names and layers kept - not a 4-D label map refused."""
    export_seg_nrrd(archive, tmp_path / "organs.seg.nrrd")
    shutil.copy(tmp_path / "organs.seg.nrrd", tmp_path / "organs.nrrd")
    named = pack(tmp_path / "organs.seg.nrrd", tmp_path / "a.mska")
    renamed = pack(tmp_path / "organs.nrrd", tmp_path / "b.mska")
    assert renamed.kind == "slicer" and renamed.masks == named.masks
    assert (tmp_path / "a.mska").read_bytes() == (tmp_path / "b.mska").read_bytes()


def test_a_label_map_slicer_exported_is_named_by_its_colour_table(tmp_path: Path) -> None:
    """3D Slicer's "Export to files" writes a label map and, beside it,
    ``<name>_ColorTable.ctbl`` (``index name R G B A``, spaces in names as ``_``): its
    labels were idx_1, idx_2 ... They take the colour table's names; Background (0) is no
    mask, and a colour the map does not use is none either."""
    labels = np.zeros((10, 8, 6), np.uint8)
    labels[1:4, 2:5, 1:3], labels[6:9, 1:3, 3:5] = 1, 3
    lps = {"space": "left-posterior-superior", "space directions": np.diag([0.8, 0.8, 2.0])}
    nrrd.write(str(tmp_path / "Segmentation-label.nrrd"), labels, lps)
    (tmp_path / "Segmentation-label_ColorTable.ctbl").write_text(
        "# Color table file /tmp/Segmentation-label_ColorTable.ctbl\n"
        "# 4 values\n"
        "0 Background 0 0 0 0\n"
        "1 artery 216 101 79 255\n"
        "2 bone 241 214 145 255\n"
        "3 connective_tissue 111 184 210 255\n",
        encoding="utf-8",
    )
    result = pack(tmp_path / "Segmentation-label.nrrd", tmp_path / "a.mska")
    assert result.masks == ["artery", "connective_tissue"]
    with MaskArchive(tmp_path / "a.mska") as archive:
        for name, label in (("artery", 1), ("connective_tissue", 3)):
            assert np.array_equal(np.asarray(archive.load_mask(name).data) != 0, labels == label)
        colours = {name: archive.meaning(name).colour for name in archive}  # (kept, as Slicer's)
    assert colours == {"artery": (216, 101, 79), "connective_tissue": (111, 184, 210)}


def test_a_librarys_deprecation_is_not_shown_to_the_user(
    archive: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On Python 3.12+ pynrrd's writer warns that utcnow() is deprecated; the command line
    showed every warning, so each export-slicer printed "medmask: warning: datetime...".
    The writer here warns as it does there: developers' warnings stay unshown (as Python
    shows them), medmask's own still show."""
    import warnings

    from medmask.exchange import slicer

    real_write = slicer.nrrd.write

    def write_as_on_312(*args: object, **kwargs: object) -> None:
        warnings.warn("datetime.datetime.utcnow() is deprecated", DeprecationWarning, 2)
        warnings.warn("unclosed file", ResourceWarning, 2)
        real_write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(slicer.nrrd, "write", write_as_on_312)
    assert main(["export-slicer", str(archive), "-o", str(tmp_path / "o.seg.nrrd")]) == 0
    assert capsys.readouterr().err == ""
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[0, 0, 0], labels[1, 1, 1] = 1, 2
    header = {"space": "left-posterior-superior", "space directions": np.eye(3)}
    for i in range(2):
        header |= {f"Segment{i}_Name": "lesion", f"Segment{i}_LabelValue": str(i + 1)}
    real_write(str(tmp_path / "two.seg.nrrd"), labels, header)
    assert main(["pack", str(tmp_path / "two.seg.nrrd"), "-o", str(tmp_path / "t.mska")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("medmask: warning: ") and "two segments are named 'lesion'" in err
