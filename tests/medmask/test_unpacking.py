"""unpack_archive / write_multilabel: exact geometry, label names, overlaps never silent."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medmask import MaskNotFoundError, MedmaskError, MedmaskWarning, read_nifti
from medmask.ops.pack import pack
from medmask.ops.unpack import OverlapError, unpack_archive, write_multilabel
from medmask.sample import MaskSample


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory, mask_sample: MaskSample) -> Path:
    target = tmp_path_factory.mktemp("packed") / "organs.mska"
    pack(mask_sample.masks_dir, target, groups={"ribs_left": "rib_left_*"})
    return target


def test_unpack_gives_back_every_file_exactly(
    tmp_path: Path, packed: Path, mask_sample: MaskSample
) -> None:
    written = unpack_archive(packed, tmp_path)
    assert len(written) == len(mask_sample.names) + 1  # the group too
    for name in mask_sample.names:
        original = nib.load(mask_sample.masks_dir / f"{name}.nii.gz")
        copy = nib.load(tmp_path / f"{name}.nii.gz")
        assert np.array_equal(np.asarray(copy.dataobj), np.asarray(original.dataobj))
        assert np.allclose(copy.affine, original.affine, atol=1e-5)
        assert read_nifti(tmp_path / f"{name}.nii.gz").mapping.to_dict() == {name: 1}
        assert len(copy.header.extensions) == 0  # the file name says it: no label table
        assert int(copy.header["qform_code"]) == int(original.header["qform_code"])
        assert int(copy.header["sform_code"]) == int(original.header["sform_code"])


def test_unpack_selected_names_and_refusals(tmp_path: Path, packed: Path) -> None:
    assert unpack_archive(packed, tmp_path, names=["liver"]) == [tmp_path / "liver.nii.gz"]
    with pytest.raises(MedmaskError, match="exists"):
        unpack_archive(packed, tmp_path, names=["liver", "spleen"])
    assert not (tmp_path / "spleen.nii.gz").exists()  # nothing written before the check
    with pytest.raises(MaskNotFoundError, match="no_such_organ"):
        unpack_archive(packed, tmp_path, names=["no_such_organ"])


def test_multilabel_refuses_overlaps_naming_each_pair(
    tmp_path: Path, packed: Path, mask_sample: MaskSample
) -> None:
    truth = json.loads(mask_sample.truth_path.read_text(encoding="utf-8"))
    with pytest.raises(OverlapError) as caught:
        write_multilabel(packed, tmp_path / "ml.nii.gz")
    found = {frozenset(pair): n for pair, n in caught.value.overlaps.items()}
    assert found == {frozenset(o["names"]): o["voxels"] for o in truth["overlaps"]}
    assert not (tmp_path / "ml.nii.gz").exists()


@pytest.mark.parametrize("policy", ["first", "last"])
def test_multilabel_with_a_winner_keeps_every_other_voxel(
    tmp_path: Path, packed: Path, mask_sample: MaskSample, policy: str
) -> None:
    result = write_multilabel(packed, tmp_path / "ml.nii.gz", overlap=policy)  # type: ignore[arg-type]
    combined = read_nifti(tmp_path / "ml.nii.gz")
    assert combined.mapping.to_dict() == result.mapping
    assert "ribs_left" not in result.mapping  # groups overlap their members by definition
    lost: dict[str, int] = {}
    for (_, loser), voxels in result.overlaps.items():
        lost[loser] = lost.get(loser, 0) + voxels
    order = list(result.mapping)
    for name in mask_sample.names:
        mask = np.asarray(nib.load(mask_sample.masks_dir / f"{name}.nii.gz").dataobj) != 0
        got = combined.data == result.mapping[name]
        assert not (got & ~mask).any()  # nothing painted outside the mask
        assert int(mask.sum() - got.sum()) == lost.get(name, 0)  # and only overlaps lost
    for kept, loser in result.overlaps:
        earlier = order.index(kept) < order.index(loser)
        assert earlier == (policy == "first")


@pytest.mark.parametrize("codes", [(0, 2), (1, 0), (2, 4)])
def test_header_codes_and_names_come_back_as_the_files_had_them(
    tmp_path: Path, codes: tuple[int, int]
) -> None:
    source = tmp_path / "case"
    source.mkdir()
    arr = np.zeros((5, 4, 3), np.uint8)
    arr[1:3, 1:3, 1] = 1
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    affine[:3, 3] = [-20.0, 10.0, 5.0]
    image = nib.Nifti1Image(arr, affine)
    image.set_qform(affine, code=codes[0])
    image.set_sform(affine, code=codes[1])
    nib.save(image, source / "liver.nii.gz")
    pack(source, tmp_path / "a.mska")
    unpack_archive(tmp_path / "a.mska", tmp_path / "out")
    back = nib.load(tmp_path / "out" / "liver.nii.gz")
    assert (int(back.header["qform_code"]), int(back.header["sform_code"])) == codes
    assert np.allclose(back.affine, affine, atol=1e-6)
    assert len(back.header.extensions) == 0
    renamed = tmp_path / "out" / "other.nii.gz"  # a name the file name does not carry
    from medmask import MaskArchive

    with MaskArchive(tmp_path / "a.mska") as archive:
        archive.load_mask("liver").to_nifti(renamed)
    assert len(nib.load(renamed).header.extensions) == 1
    assert read_nifti(renamed).mapping.to_dict() == {"liver": 1}


def one_voxel_archive(path: Path, names: list[str]) -> None:
    """An archive of ``names``, mask ``i`` holding voxel ``i`` alone (4 x 4 x 4)."""
    from spacetransformer import Space

    from medmask import MaskArchive, SegmentationMask

    with MaskArchive(path, "w", space=Space(shape=(4, 4, 4))) as archive:
        for i, name in enumerate(names):
            array = np.zeros((4, 4, 4), np.uint8)
            array.flat[i] = 1
            archive.add_mask(SegmentationMask(array, {name: 1}, Space(shape=(4, 4, 4))), name)


def test_names_that_cannot_be_file_names_are_escaped_and_come_back(tmp_path: Path) -> None:
    names = ["a/b", "..", ".", "肝脏", "CON", "50%", " padded ", "x:y*z?"]
    one_voxel_archive(tmp_path / "a.mska", names)
    out = tmp_path / "deep" / "out"
    written = unpack_archive(tmp_path / "a.mska", out)
    assert {p.name for p in written} == {
        "a%2Fb.nii.gz", "%2E%2E.nii.gz", "%2E.nii.gz", "肝脏.nii.gz", "%43ON.nii.gz",
        "50%25.nii.gz", "%20padded%20.nii.gz", "x%3Ay%2Az%3F.nii.gz",
    }  # fmt: skip
    assert all(p.parent == out for p in written)
    assert sorted(p.name for p in tmp_path.rglob("*.nii.gz")) == sorted(p.name for p in written)
    pack(out, tmp_path / "back.mska")  # the label tables give the names back
    from medmask import MaskArchive as Archive

    with Archive(tmp_path / "back.mska") as back:
        assert sorted(back) == sorted(names)
        for i, name in enumerate(names):
            assert int(np.flatnonzero(np.asarray(back.load_mask(name).data))[0]) == i


def test_names_differing_only_in_case_are_apart_where_case_is_ignored(tmp_path: Path) -> None:
    from spacetransformer import Space

    from medmask import MaskArchive, SegmentationMask

    names = ["Liver", "liver", "LIVER", "Spleen", "kidney", "Kidney_L", "A%", "a%"]
    one_voxel_archive(tmp_path / "a.mska", names)
    written = unpack_archive(tmp_path / "a.mska", tmp_path / "out")
    # one file each on Windows, macOS and a FAT/exFAT USB drive (they compare names
    # without case): before, liver.nii.gz replaced Liver.nii.gz there without a word
    assert len({p.name.lower() for p in written}) == len(names)
    assert {p.name for p in written} >= {"liver.nii.gz", "Spleen.nii.gz", "Kidney_L.nii.gz"}
    for i, path in enumerate(written):  # nibabel's reading: each file its own voxel
        assert int(np.flatnonzero(np.asarray(nib.load(path).dataobj))[0]) == i
    pack(tmp_path / "out", tmp_path / "back.mska")  # the names come back
    with MaskArchive(tmp_path / "back.mska") as back:
        assert sorted(back) == sorted(names)
        for i, name in enumerate(names):
            assert int(np.flatnonzero(np.asarray(back.load_mask(name).data))[0]) == i
    composed = ["caf\u00e9", "cafe\u0301"]  # é as one character, and e + accent
    with MaskArchive(tmp_path / "c.mska", "w", space=Space(shape=(4, 4, 4))) as archive:
        for name in composed:
            array = np.ones((4, 4, 4), np.uint8)
            archive.add_mask(SegmentationMask(array, {name: 1}, Space(shape=(4, 4, 4))), name)
    with pytest.raises(MedmaskError, match="would be one file where file names ignore case"):
        unpack_archive(tmp_path / "c.mska", tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_a_failed_unpack_takes_back_what_it_wrote(tmp_path: Path, packed: Path) -> None:
    out = tmp_path / "new" / "out"
    blocker = "spleen"  # a folder where its file would go: the write fails there
    (out / f"{blocker}.nii.gz").mkdir(parents=True)
    with pytest.raises(OSError, match=r"spleen\.nii\.gz"):  # the error names the file
        unpack_archive(packed, out, overwrite=True)
    assert [p.name for p in out.iterdir()] == [f"{blocker}.nii.gz"]  # nothing else is left
    (out / f"{blocker}.nii.gz").rmdir()
    out.rmdir()
    (tmp_path / "new").rmdir()


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_64_bit_masks_go_back_in_their_own_type(tmp_path: Path, dtype: type) -> None:
    sitk = pytest.importorskip("SimpleITK")
    folder = tmp_path / "in"
    folder.mkdir()
    array = np.zeros((5, 6, 7), dtype)
    array[1:3, 2:4, 3], array[4, 4, 4] = 1, 2
    affine = np.diag([0.5, 0.7, 2.0, 1.0])
    nib.save(nib.Nifti1Image(array, affine, dtype=dtype), folder / "organs.nii.gz")
    with pytest.warns(MedmaskWarning, match=r"labels \[1, 2\] have no name"):
        pack(folder, tmp_path / "a.mska")
    unpack_archive(tmp_path / "a.mska", tmp_path / "out")
    write_multilabel(tmp_path / "a.mska", tmp_path / "multi.nii.gz")
    for path in (tmp_path / "out" / "organs.nii.gz", tmp_path / "multi.nii.gz"):
        image = nib.load(path)
        assert image.get_data_dtype() == np.dtype(dtype)
        assert np.array_equal(np.asarray(image.dataobj), array)
        by_sitk = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).transpose(2, 1, 0)
        assert np.array_equal(by_sitk, array)
    with pytest.warns(MedmaskWarning, match="have no name"):
        mask = read_nifti(folder / "organs.nii.gz")
    image = mask.to_nifti(tmp_path / "api.nii.gz")
    assert image.get_data_dtype() == np.dtype(dtype)


def test_files_recording_no_place_are_said_and_come_back_placed_as_each_reader_placed_them(
    tmp_path: Path,
) -> None:
    """qform and sform codes 0: nibabel and ITK place the voxels differently (nibabel:
    Analyze's flipped, centred grid; ITK: at the origin). Pack says so, once for the
    folder; the unpacked files are placed by each reader as the originals were."""
    sitk = pytest.importorskip("SimpleITK")
    source = tmp_path / "case"
    source.mkdir()
    array = np.zeros((6, 5, 4), np.uint8)
    array[1:3, 2:4, 1] = 1
    affine = np.diag([0.8, 0.9, 2.5, 1.0])
    affine[:3, 3] = [-20.0, 10.0, 5.0]
    for name in ("liver", "spleen"):
        image = nib.Nifti1Image(array, affine)
        image.set_qform(None, code=0)
        image.set_sform(None, code=0)
        nib.save(image, source / f"{name}.nii.gz")
    with pytest.warns(MedmaskWarning, match=r"2 files \(liver.nii.gz, ...\): no qform or sform"):
        pack(source, tmp_path / "a.mska")
    unpack_archive(tmp_path / "a.mska", tmp_path / "out")
    for name in ("liver", "spleen"):
        original, back = source / f"{name}.nii.gz", tmp_path / "out" / f"{name}.nii.gz"
        assert np.allclose(nib.load(back).affine, nib.load(original).affine, atol=1e-6)
        by_itk = [sitk.ReadImage(str(p)) for p in (original, back)]
        for get in ("GetOrigin", "GetSpacing", "GetDirection"):
            assert np.allclose(getattr(by_itk[1], get)(), getattr(by_itk[0], get)(), atol=1e-6)
        assert np.array_equal(sitk.GetArrayFromImage(by_itk[1]), sitk.GetArrayFromImage(by_itk[0]))
    single = tmp_path / "labels.nii.gz"
    (source / "liver.nii.gz").rename(single)
    with pytest.warns(MedmaskWarning, match=r"labels.nii.gz: no qform or sform"):
        pack(single, tmp_path / "b.mska")


def test_names_longer_than_a_file_name_may_be_come_back(tmp_path: Path) -> None:
    """A file name holds 255 bytes: a hundred Chinese letters (300 bytes) or 300 letters
    could not be unpacked ("File name too long"). The file name is the name's start and
    its hash; the file's label table holds the name, and pack gives it back. Two names
    alike for the first 240 bytes stay two files."""
    from medmask import MaskArchive

    names = ["肝脏" * 50, "a" * 300, "a" * 299 + "b", "liver"]
    one_voxel_archive(tmp_path / "a.mska", names)
    written = unpack_archive(tmp_path / "a.mska", tmp_path / "out")
    assert len(written) == 4 and all(len(p.name.encode()) <= 255 for p in written)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in written)
    pack(tmp_path / "out", tmp_path / "b.mska")
    with MaskArchive(tmp_path / "a.mska") as first, MaskArchive(tmp_path / "b.mska") as again:
        assert sorted(again.all_names()) == sorted(names)
        for name in names:
            assert np.array_equal(again.load_mask(name).data, first.load_mask(name).data)
