"""pack / pack_many: NIfTI folders and multi-label files into archives, streamed, atomic."""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medmask import FormatError, MaskArchive, MedmaskError, MedmaskWarning
from medmask.ops.pack import (
    PackFailure,
    PackResult,
    archive_name_for,
    natural_key,
    pack,
    pack_many,
    parse_group,
    parse_groups,
)
from medmask.ops.unpack import unpack_archive, write_multilabel
from medmask.sample import MaskSample


def nifti_data(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def test_gbk_file_names_that_are_utf8_by_chance_name_their_masks(
    tmp_path: Path, mask_sample: MaskSample
) -> None:
    """A Windows copy of masks named by organ in GBK: 脾 (spleen, C6 A2) and 胃 (stomach,
    CE B8) are valid UTF-8 too, for Ƣ and θ, and the masks were so named. A UTF-8 name
    that is GBK too (fémur: "f茅mur") stays UTF-8."""
    import os

    folder = tmp_path / "masks"
    folder.mkdir()
    for raw, organ in (("脾".encode("gbk"), "spleen"), ("胃".encode("gbk"), "stomach"),
                       ("fémur".encode(), "liver")):  # fmt: skip
        target = os.fsdecode(os.fsencode(folder) + b"/" + raw + b".nii.gz")
        shutil.copy(mask_sample.masks_dir / f"{organ}.nii.gz", target)
    pack(folder, tmp_path / "a.mska")
    assert sorted(MaskArchive(tmp_path / "a.mska").all_names()) == sorted(["脾", "胃", "fémur"])


def test_folder_round_trip_is_exact(tmp_path: Path, mask_sample: MaskSample) -> None:
    result = pack(mask_sample.masks_dir, tmp_path / "organs.mska")
    truth = json.loads(mask_sample.truth_path.read_text(encoding="utf-8"))
    assert sorted(result.masks) == sorted(truth["labels"])
    assert sorted(result.empty) == sorted(truth["empty"])
    assert result.archive_bytes == (tmp_path / "organs.mska").stat().st_size
    with MaskArchive(tmp_path / "organs.mska") as archive:
        for name in result.masks:
            stored = archive.load_mask(name).data
            assert np.array_equal(stored, nifti_data(mask_sample.masks_dir / f"{name}.nii.gz"))


def test_groups_are_the_union_of_their_glob(tmp_path: Path, mask_sample: MaskSample) -> None:
    result = pack(mask_sample.masks_dir, tmp_path / "a.mska", groups={"ribs_left": "rib_left_*"})
    assert result.groups["ribs_left"] == [f"rib_left_{i}" for i in range(1, 13)]
    union = sum(nifti_data(mask_sample.masks_dir / f"rib_left_{i}.nii.gz") for i in range(1, 13))
    with MaskArchive(tmp_path / "a.mska") as archive:
        assert archive.groups()["ribs_left"] == tuple(result.groups["ribs_left"])
        assert np.array_equal(archive.load_mask("ribs_left").data != 0, union != 0)


def test_multilabel_file_becomes_one_mask_per_label(
    tmp_path: Path, mask_sample: MaskSample
) -> None:
    result = pack(mask_sample.multilabel_path, tmp_path / "ml.mska")
    labels = nifti_data(mask_sample.multilabel_path)
    assert result.masks == list(mask_sample.names)  # label order
    with MaskArchive(tmp_path / "ml.mska") as archive:
        for label, name in enumerate(mask_sample.names, start=1):
            mask = archive.load_mask(name)
            assert mask.mapping.to_dict() == {name: 1}
            assert np.array_equal(mask.data, (labels == label).astype(np.uint8))


def test_failures_leave_no_archive(tmp_path: Path, mask_sample: MaskSample) -> None:
    source = tmp_path / "case"
    shutil.copytree(mask_sample.masks_dir, source)
    (source / "spleen.nii.gz").write_bytes(b"not gzip at all")
    with pytest.raises(FormatError, match=r"spleen\.nii\.gz"):
        pack(source, tmp_path / "out.mska")
    assert list(tmp_path.glob("*.mska")) == []
    assert list(tmp_path.glob(".*partial")) == []
    with pytest.raises(MedmaskError, match="no mask name matches"):
        pack(mask_sample.masks_dir, tmp_path / "out.mska", groups={"x": "nothing_*"})
    assert not (tmp_path / "out.mska").exists()


def test_mixed_geometry_is_refused_naming_the_file(tmp_path: Path, mask_sample: MaskSample) -> None:
    source = tmp_path / "case"
    shutil.copytree(mask_sample.masks_dir, source)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), source / "zz_odd.nii.gz")
    with pytest.raises(FormatError, match=r"zz_odd\.nii\.gz: geometry differs"):
        pack(source, tmp_path / "out.mska")


def test_other_files_are_reported_not_dropped_silently(
    tmp_path: Path, mask_sample: MaskSample
) -> None:
    source = tmp_path / "case"
    shutil.copytree(mask_sample.masks_dir, source)
    (source / "README.txt").write_text("notes", encoding="utf-8")
    (source / "sub").mkdir()
    (source / "spleen_2.nii.gz").symlink_to(tmp_path / "gone" / "spleen.nii.gz")
    result = pack(source, tmp_path / "out.mska")
    assert dict(result.skipped) == {
        "README.txt": "not a NIfTI mask (file)",
        "sub": "not a NIfTI mask (folder)",
        # (a mask lost with its link: said as that, not as "not a NIfTI mask")
        "spleen_2.nii.gz": f"a link to nothing ({tmp_path / 'gone' / 'spleen.nii.gz'}): not read",
    }


def test_existing_archive_needs_overwrite(tmp_path: Path, mask_sample: MaskSample) -> None:
    target = tmp_path / "out.mska"
    target.write_bytes(b"keep me")
    with pytest.raises(MedmaskError, match="exists"):
        pack(mask_sample.masks_dir, target)
    assert target.read_bytes() == b"keep me"
    pack(mask_sample.masks_dir, target, overwrite=True)
    assert MaskArchive(target).all_names()


def test_pack_many_in_parallel_equals_serial_and_isolates_failures(
    tmp_path: Path, mask_sample: MaskSample
) -> None:
    bad = tmp_path / "bad_case"
    bad.mkdir()
    (bad / "liver.nii.gz").write_bytes(b"\x1f\x8b broken")
    sources = [mask_sample.masks_dir, mask_sample.multilabel_path, bad]
    serial = pack_many(sources, tmp_path / "serial", level=3)
    seen: list[object] = []
    parallel = pack_many(sources, tmp_path / "parallel", level=3, workers=2, on_done=seen.append)
    assert len(seen) == 3
    for one, two in zip(serial, parallel, strict=True):
        assert type(one) is type(two)
        if isinstance(one, PackResult) and isinstance(two, PackResult):
            assert one.target.read_bytes() == two.target.read_bytes()  # deterministic
    failure = parallel[2]
    assert isinstance(failure, PackFailure)
    assert "liver.nii.gz" in failure.reason
    assert not (tmp_path / "parallel" / "bad_case.mska").exists()


def test_pack_many_refuses_two_sources_with_one_archive_name(tmp_path: Path) -> None:
    (tmp_path / "a" / "case").mkdir(parents=True)
    (tmp_path / "b" / "case").mkdir(parents=True)
    with pytest.raises(MedmaskError, match=r"both be packed into case\.mska"):
        pack_many([tmp_path / "a" / "case", tmp_path / "b" / "case"], tmp_path / "out")


def test_archive_names_follow_the_case(tmp_path: Path) -> None:
    (tmp_path / "s0001" / "segmentations").mkdir(parents=True)
    (tmp_path / "flat_case").mkdir()
    (tmp_path / "labels.nii.gz").write_bytes(b"")
    assert archive_name_for(tmp_path / "s0001" / "segmentations") == "s0001.mska"
    assert archive_name_for(tmp_path / "flat_case") == "flat_case.mska"
    assert archive_name_for(tmp_path / "labels.nii.gz") == "labels.mska"


def test_group_syntax_and_natural_order() -> None:
    assert parse_group("ribs_left=rib_left_*") == ("ribs_left", "rib_left_*")
    for bad in ("ribs_left", "=rib_*", "ribs="):
        with pytest.raises(ValueError, match="NAME=GLOB"):
            parse_group(bad)
    names = ["rib_10", "rib_2", "rib_1", "aorta"]
    assert sorted(names, key=natural_key) == ["aorta", "rib_1", "rib_2", "rib_10"]
    assert parse_groups(["ribs=rib_*", "kidneys=kidney_*"]) == {
        "ribs": "rib_*", "kidneys": "kidney_*"
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"group 'ribs' is given twice \('rib_\*', 'rib_l\*'\)"):
        parse_groups(["ribs=rib_*", "ribs=rib_l*"])  # (before, the later replaced it silently)


LABEL_DTYPES = [np.uint8, np.uint16, np.uint32, np.int8, np.int16, np.int32, np.float32, np.float64]


@settings(max_examples=25, deadline=None)
@given(
    dtype=st.sampled_from(LABEL_DTYPES),
    labels=st.sets(st.integers(1, 127), min_size=2, max_size=5),  # (one label: a binary file)
    seed=st.integers(0, 2**16),
)
def test_label_maps_come_back_with_their_values_and_dtype(
    tmp_path_factory: pytest.TempPathFactory, dtype: type, labels: set[int], seed: int
) -> None:
    """A label map packed and written back as one file: the same values (not renumbered)
    in the same type."""
    folder = tmp_path_factory.mktemp("labels")
    rng = np.random.default_rng(seed)
    arr = np.zeros((9, 8, 7), dtype)
    spots = rng.choice(arr.size, size=3 * len(labels), replace=False).reshape(len(labels), 3)
    for label, where in zip(sorted(labels), spots, strict=True):
        arr.flat[where] = label
    nib.save(nib.Nifti1Image(arr, np.diag([1.5, 1.5, 2.0, 1.0])), folder / "labels.nii.gz")
    with pytest.warns(MedmaskWarning, match="no name"):
        pack(folder / "labels.nii.gz", folder / "labels.mska")
    result = write_multilabel(folder / "labels.mska", folder / "back.nii.gz")
    back = nib.load(folder / "back.nii.gz")
    assert back.get_data_dtype() == np.dtype(dtype)
    assert np.array_equal(np.asarray(back.dataobj), arr)
    assert result.mapping == {f"idx_{label}": label for label in sorted(labels)}
    unpack_archive(folder / "labels.mska", folder / "parts")  # one file per label, same type
    for label in labels:
        part = nib.load(folder / "parts" / f"idx_{label}.nii.gz")
        assert part.get_data_dtype() == np.dtype(dtype)
        assert np.array_equal(np.asarray(part.dataobj), (arr == label).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int16, np.uint8])
def test_binary_masks_of_any_type_come_back_in_it(tmp_path: Path, dtype: type) -> None:
    source = tmp_path / "masks"
    source.mkdir()
    arr = np.zeros((6, 5, 4), dtype)
    arr[1:3, 1:4, 2] = 1
    nib.save(nib.Nifti1Image(arr, np.eye(4)), source / "liver.nii.gz")
    pack(source, tmp_path / "a.mska")
    unpack_archive(tmp_path / "a.mska", tmp_path / "out")
    back = nib.load(tmp_path / "out" / "liver.nii.gz")
    assert back.get_data_dtype() == np.dtype(dtype)
    assert np.array_equal(np.asarray(back.dataobj), arr)


def test_float_noise_in_geometry_is_reported_and_strict_refuses(tmp_path: Path) -> None:
    source = tmp_path / "case"
    source.mkdir()
    arr = np.zeros((6, 5, 4), np.uint8)
    arr[1:3, 1:3, 1:3] = 1
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    for name, shift in (("a", 0.0), ("b", 1.5e-4), ("c", 0.0)):
        moved = affine.copy()
        moved[0, 3] += shift
        nib.save(nib.Nifti1Image(arr, moved), source / f"{name}.nii.gz")
    with pytest.warns(MedmaskWarning, match=r"1 of 3 files differ .* up to 0\.00015 mm \(b\.nii"):
        result = pack(source, tmp_path / "a.mska")
    assert [name for name, _ in result.drift] == ["b.nii.gz"]
    with pytest.raises(FormatError, match=r"b\.nii\.gz: geometry differs .* \(strict geometry\)"):
        pack(source, tmp_path / "s.mska", strict_geometry=True)
    assert not (tmp_path / "s.mska").exists()
    moved = affine.copy()
    moved[0, 3] += 0.01  # beyond float noise: a different grid
    nib.save(nib.Nifti1Image(arr, moved), source / "c.nii.gz")
    with pytest.raises(FormatError, match=r"c\.nii\.gz: geometry differs from a\.nii\.gz \(by up"):
        pack(source, tmp_path / "d.mska")


def save_turned(array: np.ndarray, affine: np.ndarray, ornt: np.ndarray, path: Path) -> None:
    """``array`` on ``affine``'s grid saved in the axis order ``ornt`` (nibabel's own
    orientation tools: the same voxel centres, the array and affine turned)."""
    turned = nib.orientations.apply_orientation(array, ornt)
    turned_affine = affine @ nib.orientations.inv_ornt_aff(ornt, array.shape)
    nib.save(nib.Nifti1Image(turned, turned_affine), path)


AXIS_ORDERS = [
    (perm, signs)
    for perm in itertools.permutations(range(3))
    for signs in itertools.product((1, -1), repeat=3)
]


@pytest.mark.parametrize(("perm", "signs"), AXIS_ORDERS)
def test_a_mask_in_another_axis_order_on_the_same_grid_is_turned_onto_it(
    tmp_path: Path, perm: tuple[int, ...], signs: tuple[int, ...]
) -> None:
    source = tmp_path / "case"
    source.mkdir()
    shape = (7, 6, 5)
    rng = np.random.default_rng(sum(perm) * 8 + sum(signs))
    # an oblique grid (a rotation about z), as a scanner writes it
    angle = np.deg2rad(20)
    affine = np.eye(4)
    affine[:3, :3] = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    ) @ np.diag([0.7, 0.9, 2.5])
    affine[:3, 3] = [-40.0, 12.5, 80.0]
    first = (rng.random(shape) > 0.7).astype(np.uint8)
    other = (rng.random(shape) > 0.6).astype(np.uint8)
    nib.save(nib.Nifti1Image(first, affine), source / "a.nii.gz")
    # the other mask, written in another axis order by nibabel's own orientation tools
    ornt = np.array([[p, s] for p, s in zip(perm, signs, strict=True)], float)
    save_turned(other, affine, ornt, source / "b.nii.gz")
    same = perm == (0, 1, 2) and signs == (1, 1, 1)
    with contextlib.ExitStack() as stack:
        if not same:
            stack.enter_context(pytest.warns(MedmaskWarning, match=r"b\.nii\.gz: the voxels lie"))
        pack(source, tmp_path / "a.mska")
    written = unpack_archive(tmp_path / "a.mska", tmp_path / "out")
    for path, original in zip(written, (source / "a.nii.gz", source / "b.nii.gz"), strict=True):
        # nibabel's reading of both files: the same voxels at the same world positions
        back, truth = nib.load(path), nib.load(original)
        at = nib.affines.apply_affine
        found = at(back.affine, np.argwhere(np.asarray(back.dataobj)))
        expected = at(truth.affine, np.argwhere(np.asarray(truth.dataobj)))
        order = np.lexsort(np.round(found, 3).T)
        assert np.allclose(found[order], expected[np.lexsort(np.round(expected, 3).T)], atol=1e-3)
        assert np.allclose(back.affine, affine, atol=1e-4)  # the first file's grid
    if not same:
        with pytest.raises(FormatError, match=r"b\.nii\.gz: geometry differs.*strict"):
            pack(source, tmp_path / "s.mska", strict_geometry=True)


def test_what_reading_changed_is_said_also_for_worker_processes(tmp_path: Path) -> None:
    shape, affine = (6, 5, 4), np.diag([1.5, 1.5, 2.0, 1.0])
    arr = np.zeros(shape, np.uint8)
    arr[1:3, 1:4, 1:3] = 1
    ornt = np.array([[1, -1], [0, 1], [2, 1]], float)  # another axis order, same grid
    for case in ("p1", "p2"):
        (tmp_path / case).mkdir()
        nib.save(nib.Nifti1Image(arr, affine), tmp_path / case / "a.nii.gz")
        save_turned(arr, affine, ornt, tmp_path / case / "b.nii.gz")
    with pytest.warns(MedmaskWarning, match="b.nii.gz: the voxels lie") as said:
        results = pack_many([tmp_path / "p1", tmp_path / "p2"], tmp_path / "out", workers=2)
    assert all(isinstance(r, PackResult) and len(r.notes) == 1 for r in results)
    assert sum("the voxels lie" in str(w.message) for w in said) == 2  # one a case


def test_a_mirrored_grid_is_not_turned(tmp_path: Path) -> None:
    source = tmp_path / "case"
    source.mkdir()
    arr = np.zeros((6, 5, 4), np.uint8)
    arr[1:3, 1:3, 1:3] = 1
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    nib.save(nib.Nifti1Image(arr, affine), source / "a.nii.gz")
    mirrored = affine.copy()
    mirrored[0, 0] = -1.5  # the x axis reversed about the same origin: other voxel centres
    nib.save(nib.Nifti1Image(arr, mirrored), source / "b.nii.gz")
    with pytest.raises(FormatError, match=r"b\.nii\.gz: geometry differs from a\.nii\.gz"):
        pack(source, tmp_path / "a.mska")


@pytest.mark.shared_data
def test_s0000_geometry_noise_is_reported(shared_data: Path, tmp_path: Path) -> None:
    with pytest.warns(MedmaskWarning, match=r"25 of 117 files differ from the first one's"):
        result = pack(shared_data / "totalseg_s0000", tmp_path / "s0000.mska")
    assert len(result.drift) == 25 and max(d for _, d in result.drift) < 2e-4


def test_a_totalsegmentator_case_folder_packs_its_masks_not_its_image(
    tmp_path: Path, mask_sample: MaskSample, capsys: pytest.CaptureFixture[str]
) -> None:
    """TotalSegmentator's data set lays a case out as <case>/ct.nii.gz beside
    <case>/segmentations/. Packing the case folder packs its masks (it read the CT as a
    cohort of one multi-label file and failed on it), and says where they were; a scan
    among the masks of a folder is named as a likely image."""
    from medmask.cli import main
    from medmask.ops.cohort import detect_cohort

    case = tmp_path / "s0001"
    shutil.copytree(mask_sample.masks_dir, case / "segmentations")
    scan = np.random.default_rng(1).normal(0, 300, (12, 10, 8)).astype(np.int16)
    nib.save(nib.Nifti1Image(scan, np.eye(4)), case / "ct.nii.gz")
    assert detect_cohort(case) is None
    assert main(["pack", str(case), "-o", str(tmp_path / "case.mska")]) == 0
    assert f"of NIfTI (in {case / 'segmentations'})" in capsys.readouterr().out
    pack(case / "segmentations", tmp_path / "direct.mska")
    assert (tmp_path / "case.mska").read_bytes() == (tmp_path / "direct.mska").read_bytes()
    pack_many([case], tmp_path / "many")  # (named after the case, as a cohort's are)
    packed = (tmp_path / "many" / "s0001.mska").read_bytes()
    assert packed == (tmp_path / "direct.mska").read_bytes()
    mixed = tmp_path / "mixed"
    shutil.copytree(mask_sample.masks_dir, mixed)
    shutil.copy(case / "ct.nii.gz", mixed / "image.nii.gz")
    with pytest.raises(FormatError, match=r"image.nii.gz: not a mask: .*a scan's image rather"):
        pack(mixed, tmp_path / "mixed.mska")


def test_a_json_sidecar_of_metadata_is_no_label_table(
    tmp_path: Path, mask_sample: MaskSample
) -> None:
    """BIDS keeps metadata beside each mask (``<stem>.json``: Type, RawSources ...). Such
    a sidecar names no labels: the masks are named by their files, with a warning (pack
    failed: "label sidecar is not a name/label JSON object"), and a folder of them is
    one case, not a cohort of label files."""
    from medmask.exchange.nifti import holds_label_map
    from medmask.ops.cohort import detect_cohort

    folder = tmp_path / "sub-01"
    folder.mkdir()
    for organ in ("liver", "spleen"):
        stem = f"sub-01_label-{organ}_mask"
        shutil.copy(mask_sample.masks_dir / f"{organ}.nii.gz", folder / f"{stem}.nii.gz")
        meta = {"Type": organ, "RawSources": ["sub-01_ct.nii.gz"], "Description": "manual"}
        (folder / f"{stem}.json").write_text(json.dumps(meta), encoding="utf-8")
    assert not holds_label_map(folder / "sub-01_label-liver_mask.nii.gz")
    assert detect_cohort(folder) is None
    with pytest.warns(MedmaskWarning, match=r"mask.json: holds no label names \(Type, Raw"):
        result = pack(folder, tmp_path / "a.mska")
    assert result.masks == ["sub-01_label-liver_mask", "sub-01_label-spleen_mask"]
    with MaskArchive(tmp_path / "a.mska") as archive:
        for organ in ("liver", "spleen"):
            data = archive.load_mask(f"sub-01_label-{organ}_mask").data
            assert np.array_equal(data, nifti_data(mask_sample.masks_dir / f"{organ}.nii.gz"))


def test_an_output_ending_in_a_slash_is_a_folder(
    tmp_path: Path, mask_sample: MaskSample, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-o out/`` with one SRC: out/<SRC>.mska, as with several (the slash was lost on
    the way, and a file named ``out`` was written)."""
    from medmask.cli import main

    assert main(["pack", str(mask_sample.masks_dir), "-o", f"{tmp_path / 'out'}/"]) == 0
    name = archive_name_for(mask_sample.masks_dir)
    assert (tmp_path / "out").is_dir() and (tmp_path / "out" / name).is_file()
    assert "1 packed, 0 failed" in capsys.readouterr().out


def test_an_archive_of_masks_is_named_with_what_to_do(
    tmp_path: Path, mask_sample: MaskSample
) -> None:
    """TotalSegmentator's and nnU-Net's results travel as zip or tar.gz files: given one,
    pack said only "not a folder of masks"; it now says what the file is and to unpack it."""
    import tarfile
    import zipfile

    files = sorted(mask_sample.masks_dir.glob("*.nii.gz"))[:2]
    with zipfile.ZipFile(tmp_path / "segmentations.zip", "w") as archive:
        for file in files:
            archive.write(file, file.name)
    with tarfile.open(tmp_path / "segmentations.tar.gz", "w:gz") as archive:
        for file in files:
            archive.add(file, file.name)
    with tarfile.open(tmp_path / "segmentations.tar", "w") as archive:
        archive.add(files[0], files[0].name)
    for name, kind in (("segmentations.zip", "a zip archive"),
                       ("segmentations.tar.gz", "a gzip file"),
                       ("segmentations.tar", "a tar archive")):  # fmt: skip
        with pytest.raises(MedmaskError, match=rf"{name}: .*: it is {kind}.*; unpack it"):
            pack(tmp_path / name, tmp_path / "a.mska")
    (tmp_path / "notes.txt").write_text("liver, spleen", encoding="utf-8")
    with pytest.raises(MedmaskError) as refused:
        pack(tmp_path / "notes.txt", tmp_path / "a.mska")
    assert "unpack" not in str(refused.value)
