"""MaskArchive: MedMask's API, round trips, groups, crops, locks and 0.1.3 archives."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacetransformer import Space

from medmask import (
    FormatError,
    LabelMapping,
    MaskArchive,
    MaskNotFoundError,
    MedmaskDeprecationWarning,
    SegmentationMask,
    convert_legacy_archive,
)
from medmask.files.reader import ArchiveReader
from medmask.format import mska as fmt
from medmask.model.space import spaces_equal
from medmask.sample import MaskSample

LEGACY = Path(__file__).resolve().parents[1] / "data" / "medmask_0_1_3"
SPACE = Space(shape=(16, 14, 12), origin=(3.0, -4.0, 50.0), spacing=(0.8, 0.8, 2.5))


def ball(
    center: tuple[int, int, int], radius: float, shape: tuple[int, ...] = (16, 14, 12)
) -> np.ndarray:
    grid = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return sum((g - c) ** 2 for g, c in zip(grid, center, strict=True)) <= radius**2  # type: ignore[no-any-return]


def organs() -> dict[str, SegmentationMask]:
    liver = ball((5, 5, 5), 4)
    spleen = ball((11, 9, 6), 3)
    overlap = ball((7, 6, 5), 2.5)  # overlaps liver: stored apart, both kept intact
    labels = np.zeros((16, 14, 12), np.uint16)
    labels[liver], labels[spleen] = 300, 7
    return {
        "liver": SegmentationMask(liver.astype(np.uint8), {"liver": 1}, SPACE),
        "spleen": SegmentationMask(spleen, {"spleen": 1}, SPACE),
        "overlap": SegmentationMask(overlap.astype(np.uint8), {"overlap": 1}, SPACE),
        "labels": SegmentationMask(labels, {"liver": 300, "spleen": 7}, SPACE),
        "empty": SegmentationMask(np.zeros((16, 14, 12), np.uint8), {"kidney_cyst_left": 1}, SPACE),
    }


def test_medmask_usage_as_written(tmp_path: Path) -> None:
    path = str(tmp_path / "organs.mska")
    masks = organs()
    archive = MaskArchive(path, mode="w", space=SPACE)
    archive.add_mask(masks["liver"], "liver")
    with pytest.warns(MedmaskDeprecationWarning, match="use MaskArchive.add_mask"):
        archive.add_segmask(masks["spleen"], "spleen")
    archive.close()
    archive = MaskArchive(path, mode="r")
    m = archive.load_mask("liver")
    assert m == masks["liver"]
    with pytest.warns(MedmaskDeprecationWarning, match="use MaskArchive.load_mask"):
        assert archive.load_segmask("spleen") == masks["spleen"]
    assert archive.all_names() == ["liver", "spleen"]
    assert archive.read_all_mapping() == {
        "liver": LabelMapping({"liver": 1}),
        "spleen": LabelMapping({"spleen": 1}),
    }
    assert set(archive.read_all_masks()) == {"liver", "spleen"}
    assert "liver" in archive
    assert len(archive) == 2
    assert list(archive) == ["liver", "spleen"]
    assert spaces_equal(archive.space, SPACE)


def test_round_trip_of_every_kind(tmp_path: Path) -> None:
    masks = organs()
    with MaskArchive(tmp_path / "a.mska", "w") as archive:
        for name, mask in masks.items():
            archive.add_mask(mask, name)
    with MaskArchive(tmp_path / "a.mska") as archive:
        for name, mask in masks.items():
            again = archive.load_mask(name)
            assert again.dtype == mask.dtype, name
            assert again == mask, name


def test_crops_and_statistics_without_decoding(tmp_path: Path) -> None:
    masks = organs()
    with MaskArchive(tmp_path / "a.mska", "w") as archive:
        for name, mask in masks.items():
            archive.add_mask(mask, name)
    with MaskArchive(tmp_path / "a.mska") as archive:
        stats = archive.statistics()
        for name, mask in masks.items():
            crop, offset = archive.load_crop(name)
            full = np.zeros(mask.shape, mask.dtype)
            if crop.size:
                full[tuple(slice(o, o + n) for o, n in zip(offset, crop.shape, strict=True))] = crop
                assert crop.any(axis=(1, 2))[[0, -1]].all()  # tight box
            assert np.array_equal(full, mask.data)
            count = int(np.count_nonzero(mask.data))
            assert stats[name].voxel_count == count
            assert stats[name].volume_ml == pytest.approx(count * 0.8 * 0.8 * 2.5 / 1000)
        assert stats["labels"].label_counts == {
            300: int(ball((5, 5, 5), 4).sum()),
            7: int(ball((11, 9, 6), 3).sum()),
        }
        assert stats["empty"].bbox is None
        assert archive.load_crop("empty")[0].shape == (0, 0, 0)


def label_map() -> SegmentationMask:
    """Five organs in one uint16 label map (the notebook's "方式二"), one name unused."""
    shape = (40, 36, 30)
    labels = np.zeros(shape, np.uint16)
    mapping = {}
    for i, (center, radius) in enumerate(
        [
            ((10, 10, 8), 7),
            ((28, 12, 10), 6),
            ((20, 26, 18), 8),
            ((30, 28, 22), 5),
            ((8, 28, 24), 4),
        ]
    ):
        labels[ball(center, radius, shape)] = (3, 9, 300, 41, 1000)[i]
        mapping[f"organ_{i}"] = (3, 9, 300, 41, 1000)[i]
    mapping["absent"] = 77
    space = Space(shape=shape, spacing=(1.5, 1.5, 1.5))
    return SegmentationMask(labels, mapping, space)


def test_a_label_map_reads_one_name_without_the_whole_array(tmp_path: Path) -> None:
    combined = label_map()
    reference = np.asarray(combined.data)
    with MaskArchive(tmp_path / "a.mska", "w") as archive:
        archive.add_mask(combined, "all")
    with MaskArchive(tmp_path / "a.mska") as archive:
        assert archive.storage()["all"].codec == "LABEL_LAYERS"
        loaded = archive.load_mask("all")
        assert loaded.shape == reference.shape and loaded.dtype == np.uint16
        for name, label in combined.mapping.items():  # increasing order: each layer once
            assert np.array_equal(loaded.get_mask_by_names(name), reference == label), name
        assert loaded._stored_array is None  # the label array was never built
        for name in reversed(list(combined.mapping)):  # out of order: right, then built once
            label = combined.mapping[name]
            assert np.array_equal(loaded.get_mask_by_names(name), reference == label), name
        for _ in range(3):
            assert np.array_equal(loaded.get_mask_by_names("organ_1"), reference == 9)
        assert loaded._stored_array is not None
        assert np.array_equal(loaded.data, reference)
        fresh = archive.load_mask("all")
        assert np.array_equal(
            fresh.get_mask_by_names(["organ_0", "organ_3"]), np.isin(reference, [3, 41])
        )
        assert fresh == combined
        edited = archive.load_mask("all")
        edited.add_label(ball((20, 5, 5), 3, reference.shape), 5, "new")
        assert np.array_equal(edited.get_mask_by_names("new"), ball((20, 5, 5), 3, reference.shape))
        assert np.array_equal(archive.load_mask("all").data, reference)  # the archive is untouched


def test_label_map_statistics_come_from_the_index(tmp_path: Path) -> None:
    combined = label_map()
    with MaskArchive(tmp_path / "a.mska", "w") as archive:
        archive.add_mask(combined, "all")
    expected = combined.statistics()
    with MaskArchive(tmp_path / "a.mska") as archive:
        assert archive.label_statistics("all") == expected
        boxes = archive.statistics()["all"].label_bboxes
        assert boxes == {s.label: s.bbox for s in expected.values() if s.bbox is not None}
    # damage every voxel byte: statistics still need nothing but the index
    data = bytearray((tmp_path / "a.mska").read_bytes())
    with MaskArchive(tmp_path / "a.mska") as archive:
        entry = archive._entry("all")
    data[entry.offset : entry.offset + entry.length] = bytes(entry.length)
    (tmp_path / "a.mska").write_bytes(bytes(data))
    with MaskArchive(tmp_path / "a.mska") as archive:
        assert archive.label_statistics("all") == expected
        with pytest.raises(FormatError, match=r"a\.mska.*all"):
            archive.load_mask("all")


def test_groups_union_and_residual(tmp_path: Path) -> None:
    masks = organs()
    union = (masks["liver"].data > 0) | (masks["spleen"].data > 0)
    edited = union.copy()
    edited[0, 0, 0] = True  # differs from the union by one voxel
    edited[5, 5, 5] = False
    with MaskArchive(tmp_path / "g.mska", "w", space=SPACE) as archive:
        archive.add_mask(masks["liver"], "liver")
        archive.add_mask(masks["spleen"], "spleen")
        archive.add_group("organs", ["liver", "spleen"])
        archive.add_group(
            "edited",
            ["liver", "spleen"],
            SegmentationMask(edited.astype(np.uint8), {"edited": 1}, SPACE),
        )
        with pytest.raises(ValueError, match="member 'organs' is a group"):
            archive.add_group("nested", ["organs"])
        with pytest.raises(MaskNotFoundError):
            archive.add_group("bad", ["lung"])
        with pytest.raises(ValueError, match="member of group"):
            archive.remove("liver")
    with MaskArchive(tmp_path / "g.mska") as archive:
        assert np.array_equal(archive.load_mask("organs").data, union.astype(np.uint8))
        assert np.array_equal(archive.load_mask("edited").data, edited.astype(np.uint8))
        assert archive.groups() == {"organs": ("liver", "spleen"), "edited": ("liver", "spleen")}
        index = archive._state.entries  # the exact union costs no voxel data
        assert index["organs"].length == 0
        assert index["edited"].length > 0
        assert archive.statistics()["edited"].voxel_count == int(edited.sum())


def test_append_remove_replace_compact(tmp_path: Path) -> None:
    masks = organs()
    path = tmp_path / "c.mska"
    with MaskArchive(path, "w", space=SPACE) as archive:
        archive.add_mask(masks["liver"], "liver")
    with MaskArchive(path, "a") as archive:
        archive.add_mask(masks["spleen"], "spleen")
        with pytest.raises(ValueError, match="already in the archive"):
            archive.add_mask(masks["spleen"], "spleen")
        archive.replace("liver", masks["overlap"])
        archive.remove("spleen")
        archive.add_mask(masks["labels"], "labels")
    before = path.stat().st_size
    with MaskArchive(path, "a") as archive:
        assert archive.all_names() == ["liver", "labels"]
        archive.compact()
        assert archive.load_mask("liver").data.tobytes() == masks["overlap"].data.tobytes()
    assert path.stat().st_size < before
    with MaskArchive(path) as archive:
        assert archive.all_names() == ["liver", "labels"]
        assert archive.load_mask("labels") == masks["labels"]
        assert np.array_equal(archive.load_mask("liver").data, masks["overlap"].data)


def test_geometry_and_mode_errors(tmp_path: Path) -> None:
    masks = organs()
    with MaskArchive(tmp_path / "e.mska", "w", space=SPACE) as archive:
        other = SegmentationMask(np.zeros((3, 3, 3), np.uint8), {"x": 1})
        with pytest.raises(ValueError, match=r"geometry 3x3x3 voxels .* the archive 16x14x12"):
            archive.add_mask(other, "x")
        archive.add_mask(masks["liver"], "liver")
    with MaskArchive(tmp_path / "e.mska") as archive:
        with pytest.raises(ValueError, match="read-only"):
            archive.add_mask(masks["spleen"], "spleen")
        with pytest.raises(MaskNotFoundError, match="lung"):
            archive.load_mask("lung")
    with pytest.raises(FileNotFoundError):
        MaskArchive(tmp_path / "missing.mska")
    with pytest.raises(ValueError, match="mode"):
        MaskArchive(tmp_path / "e.mska", "x")  # type: ignore[arg-type]


LOCK_PROBE = textwrap.dedent(
    """
    import sys
    from medmask import ArchiveLockedError, MaskArchive
    try:
        MaskArchive(sys.argv[1], "a")
    except ArchiveLockedError as err:
        print("locked:", err)
    """
)


def test_one_writer_process_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "l.mska"
    writer = MaskArchive(path, "w", space=SPACE)
    writer.add_mask(organs()["liver"], "liver")
    probe = [sys.executable, "-c", LOCK_PROBE, str(path)]
    result = subprocess.run(probe, capture_output=True, text=True, check=True)
    assert "locked:" in result.stdout and "open for writing in another process" in result.stdout
    with MaskArchive(path) as reader:  # readers need no lock, and see the add at once
        assert reader.all_names() == ["liver"]
    writer.close()
    result = subprocess.run(probe, capture_output=True, text=True, check=True)
    assert result.stdout == ""  # the lock went with the writer


def test_on_a_file_system_without_locks_archives_are_written_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """NFS without its lock service answers a lock with ENOLCK: every write (pack too)
    failed, "open for writing in another process", when no other process was there."""
    import errno
    import fcntl
    import os

    from medmask import MedmaskWarning
    from medmask.cli import main

    def no_locks(descriptor: int, operation: int) -> None:  # (the file system's answer)
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(MedmaskWarning, match=rf"{tmp_path}: its file system does not lock files"):
        writer = MaskArchive(tmp_path / "l.mska", "w", space=SPACE)
    writer.add_mask(organs()["liver"], "liver")
    writer.close()
    with MaskArchive(tmp_path / "l.mska") as reader:
        assert reader.all_names() == ["liver"]
        assert np.array_equal(reader.load_mask("liver").data, organs()["liver"].data)
    masks = tmp_path / "masks"
    masks.mkdir()
    organs()["liver"].to_nifti(masks / "liver.nii.gz")
    capsys.readouterr()
    assert main(["pack", str(masks), "-o", str(tmp_path / "p.mska")]) == 0
    err = capsys.readouterr().err
    assert "does not lock files" in err and "another process" not in err
    assert main(["verify", str(tmp_path / "p.mska")]) == 0


def test_writers_in_one_process_share_the_file(tmp_path: Path) -> None:
    """A notebook cell run twice opens a second writer while the first is still bound."""
    path = tmp_path / "shared.mska"
    masks = organs()
    first = MaskArchive(path, "w", space=SPACE)
    first.add_mask(masks["liver"], "liver")
    second = MaskArchive(path, "a")
    assert second.all_names() == ["liver"]
    second.add_mask(masks["spleen"], "spleen")
    assert first.all_names() == ["liver", "spleen"]  # one file, one state
    again = MaskArchive(path, "w", space=SPACE)  # "w" starts the archive anew, for all
    assert first.all_names() == [] and again.all_names() == []
    again.add_mask(masks["spleen"], "spleen")
    first.close()
    assert first.closed and not again.closed
    again.add_mask(masks["liver"], "liver")  # still open: the file closes with its last writer
    del second
    again.close()
    with MaskArchive(path) as reader:
        assert reader.all_names() == ["spleen", "liver"]
    with MaskArchive(path, "a") as writer:  # and nobody holds the lock any more
        assert len(writer) == 2


READ_NAMES = textwrap.dedent(
    """
    import sys
    from medmask import MaskArchive
    print(",".join(MaskArchive(sys.argv[1]).all_names()))
    """
)


def names_seen_by_another_process(path: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", READ_NAMES, str(path)], capture_output=True, text=True, check=True
    )
    return [n for n in result.stdout.strip().split(",") if n]


def test_every_change_is_committed_when_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "durable.mska"
    masks = organs()
    archive = MaskArchive(path, "w", space=SPACE)  # MedMask users never close archives
    archive.add_mask(masks["liver"], "liver")
    assert names_seen_by_another_process(path) == ["liver"]
    archive.add_group("liver_group", ["liver"])
    archive.remove("liver_group")
    archive.add_mask(masks["labels"], "labels")
    assert names_seen_by_another_process(path) == ["liver", "labels"]
    with MaskArchive(path) as reader:  # another object in this process, too
        assert reader.load_mask("labels") == masks["labels"]
    with archive.batch():  # a batch waits for its end
        archive.add_mask(masks["spleen"], "spleen")
        archive.add_mask(masks["empty"], "empty")
        assert names_seen_by_another_process(path) == ["liver", "labels"]
        assert archive.load_mask("spleen") == masks["spleen"]  # staged, still readable
    assert names_seen_by_another_process(path) == ["liver", "labels", "spleen", "empty"]
    del archive


def test_adds_one_by_one_give_the_archive_of_one_batch(tmp_path: Path) -> None:
    """No index is left behind per commit: the file is the batch's, byte for byte, apart
    from the generation counters in the superblock."""
    masks = organs()
    one_by_one = MaskArchive(tmp_path / "a.mska", "w", space=SPACE)
    for name, mask in masks.items():
        one_by_one.add_mask(mask, name)
    with MaskArchive(tmp_path / "b.mska", "w", space=SPACE) as batch:
        for name, mask in masks.items():
            batch.add_mask(mask, name)
    separate, together = (tmp_path / "a.mska").read_bytes(), (tmp_path / "b.mska").read_bytes()
    assert len(separate) == len(together)
    assert separate[fmt.SLOT_SIZE * 2 :] == together[fmt.SLOT_SIZE * 2 :]
    assert one_by_one.commit is not None and one_by_one.commit.generation == 2 * len(masks) - 1
    one_by_one.close()


OPEN_W_AND_WAIT = textwrap.dedent(
    """
    import sys, time
    from spacetransformer import Space
    from medmask import MaskArchive
    archive = MaskArchive(sys.argv[1], "w", space=Space(shape=(16, 14, 12)))
    print("opened", flush=True)
    time.sleep(60)
    """
)


def test_w_replaces_an_archive_only_when_the_new_one_commits(tmp_path: Path) -> None:
    path = tmp_path / "old.mska"
    masks = organs()
    with MaskArchive(path, "w", space=SPACE) as archive:
        archive.add_mask(masks["liver"], "liver")
        archive.add_mask(masks["spleen"], "spleen")
    before = path.read_bytes()
    # killed after opening "w", before committing anything: the old archive is untouched
    with subprocess.Popen(
        [sys.executable, "-c", OPEN_W_AND_WAIT, str(path)], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None and process.stdout.readline() == "opened\n"
        assert names_seen_by_another_process(path) == ["liver", "spleen"]
        process.kill()
    assert path.read_bytes() == before
    # a writer in this process: the old archive opens as before until the first add
    archive = MaskArchive(path, "w", space=SPACE)
    assert names_seen_by_another_process(path) == ["liver", "spleen"]
    archive.add_mask(masks["overlap"], "overlap")
    assert names_seen_by_another_process(path) == ["overlap"]
    archive.add_mask(masks["empty"], "empty")  # and from then on in place
    archive.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.mska"]  # no .new left
    with MaskArchive(path) as reader:
        assert reader.all_names() == ["overlap", "empty"]
    # "w" closed without a commit (no Space, no mask) leaves the old archive as it was
    MaskArchive(path, "w").close()
    with MaskArchive(path) as reader:
        assert reader.all_names() == ["overlap", "empty"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.mska"]


# Commits until the reader says it has seen enough (an event, not a duration): the reader
# opens the archive while commits land however busy the machine is.
WRITER_UNTIL_TOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from spacetransformer import Space
    from medmask import MaskArchive, SegmentationMask

    space = Space(shape=(20, 20, 20))
    archive = MaskArchive(sys.argv[1], "w", space=space)
    stop, most, i = Path(sys.argv[2]), int(sys.argv[3]), 0
    while not stop.exists():
        if i == most:  # enough masks: wait for the reader's word
            time.sleep(0.01)
            continue
        arr = np.zeros((20, 20, 20), np.uint8)
        arr[i % 15 : i % 15 + 4, 2:9, 3:7] = 1
        archive.add_mask(SegmentationMask(arr, {f"m{i}": 1}, space), f"m{i}")
        i += 1
    archive.close()
    print(i)
    """
)


def test_readers_racing_a_writer_see_whole_commits(tmp_path: Path) -> None:
    """A reader opening while another process commits never gets an error or a torn index
    (it reads the slots again when an index moved under it). The writer commits until the
    reader has opened the archive 20 times: no count of opens depends on scheduling."""
    path, stop = tmp_path / "race.mska", tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER_UNTIL_TOLD, str(path), str(stop), "2000"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    opened = 0
    try:
        while writer.poll() is None:
            try:
                archive = MaskArchive(path)
            except FileNotFoundError:
                continue
            except FormatError as err:  # only before the writer's first commit
                assert not opened and "committed nothing yet" in str(err).replace(
                    "nothing was committed yet", "committed nothing yet"
                ), err
                continue
            with archive:
                names = archive.all_names()
                assert names == [f"m{i}" for i in range(len(names))]
                if names:
                    archive.load_mask(names[-1])
            opened += 1
            if opened == 20:
                stop.touch()
    finally:
        stop.touch()
        written = int(writer.communicate()[0].strip() or -1)
    assert writer.returncode == 0 and opened >= 20
    with MaskArchive(path) as archive:
        assert len(archive) == written > 0


def test_a_reader_that_read_the_head_before_the_first_commit_grew_the_file_reads_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving the racing test met under load, made to happen: the reader reads
    the slots while the file is still empty, then its size after the writer's first
    commit grew it. That read "not a medmask archive (starts with b'')"; the reader now
    sees the file grew under it and reads again."""
    from medmask.files import opened

    path = tmp_path / "first.mska"
    space = Space(shape=(6, 6, 6))
    voxels = np.zeros((6, 6, 6), np.uint8)
    voxels[1:3, 2:4, 1:5] = 1
    with MaskArchive(path, "w", space=space) as archive:
        archive.add_mask(SegmentationMask(voxels, {"a": 1}, space), "a")
    real, torn = opened.os.pread, []

    def pread(fd: int, length: int, offset: int) -> bytes:
        if offset == 0 and length == fmt.DATA_START and not torn:
            torn.append(fd)
            return b""  # the file as it was before the writer's first commit
        return real(fd, length, offset)

    monkeypatch.setattr(opened.os, "pread", pread)
    with MaskArchive(path) as reader:
        assert reader.all_names() == ["a"]
        assert np.array_equal(reader.load_mask("a").data, voxels)
    assert torn  # (the torn read did happen)


def test_on_generated_masks(mask_sample: MaskSample, tmp_path: Path) -> None:
    masks = SegmentationMask.from_nifti_folder(mask_sample.masks_dir)
    with MaskArchive(tmp_path / "all.mska", "w") as archive:
        for name, mask in masks.items():
            archive.add_mask(mask, name)
        archive.add_group("ribs_left", [f"rib_left_{i}" for i in range(1, 13)])
    with MaskArchive(tmp_path / "all.mska") as archive:
        for name, mask in masks.items():
            assert np.array_equal(archive.load_mask(name).data, mask.data), name
        ribs = np.zeros(next(iter(masks.values())).shape, bool)
        for i in range(1, 13):
            ribs |= masks[f"rib_left_{i}"].data > 0
        assert np.array_equal(archive.load_mask("ribs_left").data > 0, ribs)


# -- property ------------------------------------------------------------------------------

shapes = st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9))


@st.composite
def archives(draw: st.DrawFn) -> tuple[Space, dict[str, np.ndarray], dict[str, list[str]]]:
    shape = draw(shapes)
    space = Space(shape=shape, spacing=draw(st.tuples(*(st.floats(0.1, 5) for _ in range(3)))))
    count = draw(st.integers(1, 6))
    masks = {}
    for i in range(count):
        dtype = draw(st.sampled_from([np.bool_, np.uint8, np.uint16, np.uint32]))
        top = 1 if dtype is np.bool_ else draw(st.sampled_from([1, 3, 200]))
        seed = draw(st.integers(0, 2**32 - 1))
        values = np.random.default_rng(seed).integers(0, top + 1, size=shape)
        density = np.random.default_rng(seed + 1).random(shape) < draw(st.floats(0, 1))
        masks[f"m{i}"] = np.where(density, values, 0).astype(dtype)
    binary = [n for n, a in masks.items() if a.max(initial=0) <= 1]
    groups = {}
    if binary:
        groups["g"] = draw(st.lists(st.sampled_from(binary), min_size=1, max_size=3, unique=True))
    return space, masks, groups


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(archives(), st.booleans())
def test_property_round_trip(tmp_path: Path, case: tuple, edit_group: bool) -> None:
    space, arrays, groups = case
    path = tmp_path / "p.mska"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unnamed labels in random arrays are fine here
        masks = {
            n: SegmentationMask(a, {} if a.dtype != np.bool_ else {n: 1}, space)
            for n, a in arrays.items()
        }
    expected_groups = {}
    with MaskArchive(path, "w", space=space, level=1) as archive:
        for name, mask in masks.items():
            archive.add_mask(mask, name)
        for group, members in groups.items():
            union = np.zeros(space.shape, bool)
            for member in members:
                union |= arrays[member] != 0
            if edit_group:
                union = union ^ (np.arange(union.size).reshape(union.shape) % 5 == 0)
                archive.add_group(
                    group, members, SegmentationMask(union.astype(np.uint8), {group: 1}, space)
                )
            else:
                archive.add_group(group, members)
            expected_groups[group] = union
    with MaskArchive(path) as archive:
        for name, mask in masks.items():
            again = archive.load_mask(name)
            assert again.dtype == mask.dtype
            assert np.array_equal(again.data, mask.data)
            assert again.mapping == mask.mapping
        for group, union in expected_groups.items():
            assert np.array_equal(archive.load_mask(group).data != 0, union)
        assert spaces_equal(archive.space, space)


# -- medmask 0.1.3 -------------------------------------------------------------------------


def test_reads_medmask_013_archive(tmp_path: Path) -> None:
    expected = json.loads((LEGACY / "expected.json").read_text(encoding="utf-8"))
    with np.load(LEGACY / "expected.npz") as arrays:
        truth = {
            "liver": arrays["bool_liver"].astype(np.uint8),
            "spleen": (arrays["uint8_labels"] == 2).astype(np.uint8),
            "overlap_ball": arrays["overlap_ball"],
        }
    with MaskArchive(LEGACY / "organs.mska") as archive:
        assert archive.all_names() == expected["archive"]
        assert spaces_equal(archive.space, Space.from_json(json.dumps(expected["space"])))
        for name, array in truth.items():
            assert np.array_equal(archive.load_mask(name).data, array)
            crop, _ = archive.load_crop(name)
            assert int(crop.sum()) == int(array.sum())
        assert archive.statistics()["liver"].voxel_count == int(truth["liver"].sum())
    with pytest.raises(FormatError, match="opens read-only"):
        _append_to_legacy(tmp_path)
    assert convert_legacy_archive(LEGACY / "organs.mska", tmp_path / "new.mska") == 3
    with MaskArchive(tmp_path / "new.mska") as converted:
        for name, array in truth.items():
            assert np.array_equal(converted.load_mask(name).data, array)


def test_the_013_reader_is_read_only_by_type() -> None:
    """MaskArchive(path) of a 0.1.3 file is a reader with MaskArchive's reading API and
    no writing method at all (not one that refuses when called)."""
    with MaskArchive(LEGACY / "organs.mska") as archive:
        assert isinstance(archive, ArchiveReader) and not isinstance(archive, MaskArchive)
        assert archive.format_version == "0.1.3" and archive.mode == "r"
        for method in ("add_mask", "add_segmask", "add_group", "remove", "replace", "compact",
                       "flush", "batch"):  # fmt: skip
            assert not hasattr(archive, method), method
        for method in ("load_mask", "load_crop", "all_names", "read_all_mapping",
                       "read_all_masks", "statistics", "storage", "groups", "meaning"):  # fmt: skip
            assert callable(getattr(archive, method)), method


def _append_to_legacy(tmp_path: Path) -> None:
    copy = tmp_path / "old.mska"
    copy.write_bytes((LEGACY / "organs.mska").read_bytes())
    MaskArchive(copy, "a")


def test_empty_and_uncommitted_files_say_what_they_are(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mska"
    empty.write_bytes(b"")
    with pytest.raises(FormatError, match=r"empty\.mska: the file is empty \(0 bytes\)"):
        MaskArchive(empty)
    started = tmp_path / "started.mska"  # a first commit stopped before its superblock
    with MaskArchive(started, "w", space=SPACE) as archive:
        archive.add_mask(organs()["liver"], "liver")
    data = bytearray(started.read_bytes())
    data[: 2 * fmt.SLOT_SIZE] = bytes(2 * fmt.SLOT_SIZE)
    started.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="created but nothing was committed yet"):
        MaskArchive(started)
    data[5] = 1  # anything else that does not start like an archive
    started.write_bytes(bytes(data[:100]) + b"x" * 300)
    with pytest.raises(FormatError, match="not a medmask archive"):
        MaskArchive(started)


def test_w_replaces_a_medmask_0_1_3_archive_with_this_format(tmp_path: Path) -> None:
    path = tmp_path / "old.mska"
    shutil.copy(LEGACY / "organs.mska", path)
    with MaskArchive(path) as old:
        assert old.format_version == "0.1.3"
        space = old.space
    with MaskArchive(path, "w", space=space) as archive:
        assert archive.format_version == "2.0" and len(archive) == 0
        archive.add_mask(SegmentationMask(np.zeros(space.shape, np.uint8), {"x": 1}, space), "x")
    with MaskArchive(path) as again:
        assert again.format_version == "2.0" and again.all_names() == ["x"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["uint8", "bool", "uint16", "fortran"]),
    st.integers(1, 4),
)
def test_centroids_are_the_mean_voxel_index(
    tmp_path: Path, seed: int, kind: str, labels: int
) -> None:
    """voxel_sums in the index (docs/mask-format.md) give each mask's and each label's
    centroid exactly: the mean of numpy's argwhere of the voxels."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 12)), int(rng.integers(1, 12)), int(rng.integers(1, 9)))
    values = rng.integers(0, labels + 1, shape) * (rng.random(shape) < 0.3)
    if kind == "bool":
        data = values > 0
        mapping = {"m": 1}
    else:
        data = values.astype(np.uint16 if kind == "uint16" else np.uint8)
        data = np.asfortranarray(data) if kind == "fortran" else data
        mapping = {f"l{v}": v for v in range(1, labels + 1)}
    mask = SegmentationMask(data, mapping, Space(shape=shape))
    path = tmp_path / f"c{seed}.mska"
    with MaskArchive(path, "w") as archive:
        archive.add_mask(mask, "m")
    with MaskArchive(path) as archive:
        stats = archive.statistics()["m"]
        entry = archive._entry("m")
    where = np.argwhere(np.asarray(data) != 0)
    if not len(where):
        assert stats.centroid is None and entry.voxel_sums is None
        return
    assert stats.centroid == pytest.approx(tuple(where.mean(axis=0)), abs=1e-12)
    assert entry.voxel_sums == tuple(int(v) for v in where.sum(axis=0))
    present = [v for v in range(1, labels + 1) if (np.asarray(data) == v).any()]
    if len(present) > 1:
        assert entry.label_voxel_sums is not None
        for v in present:
            expected = np.argwhere(np.asarray(data) == v).sum(axis=0)
            assert entry.label_voxel_sums[v] == tuple(int(x) for x in expected)
    else:
        assert entry.label_voxel_sums is None
    path.unlink()


def test_a_group_has_its_centroid_and_an_old_index_has_none(tmp_path: Path) -> None:
    masks = organs()
    with MaskArchive(tmp_path / "g.mska", "w", space=SPACE) as archive:
        archive.add_mask(masks["liver"], "liver")
        archive.add_mask(masks["spleen"], "spleen")
        archive.add_group("both", ["liver", "spleen"])
    union = (np.asarray(masks["liver"].data) > 0) | (np.asarray(masks["spleen"].data) > 0)
    with MaskArchive(tmp_path / "g.mska") as archive:
        centroid = archive.statistics()["both"].centroid
    assert centroid == pytest.approx(tuple(np.argwhere(union).mean(axis=0)))
    # an index written before voxel_sums: no centroid, and nothing else changes
    from medmask.files.index import Entry

    raw = {"name": "liver", "count": 10, "bbox": [[0, 2], [0, 5], [0, 1]]}
    entry = Entry.from_dict(raw, 10**6, "old.mska")
    assert entry.voxel_sums is None and entry.to_dict() == raw
