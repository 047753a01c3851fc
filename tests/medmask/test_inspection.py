"""describe_archive / verify_archive: sizes and codecs; every kind of damage named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from medmask import MaskArchive
from medmask.format import mska as fmt
from medmask.ops.inspection import describe_archive, verify_archive
from medmask.ops.pack import pack
from medmask.sample import MaskSample

LEGACY = Path(__file__).resolve().parents[1] / "data" / "medmask_0_1_3" / "organs.mska"


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory, mask_sample: MaskSample) -> Path:
    target = tmp_path_factory.mktemp("packed") / "organs.mska"
    pack(mask_sample.masks_dir, target, groups={"ribs_left": "rib_left_*"})
    return target


def test_info_adds_up(packed: Path, mask_sample: MaskSample) -> None:
    info = describe_archive(packed)
    with MaskArchive(packed) as archive:
        storage = archive.storage()
        stats = archive.statistics()
    assert info.format_version == "2.0"
    assert info.masks == len(mask_sample.names)
    assert info.groups == 1
    assert info.empty == sum(1 for s in stats.values() if s.voxel_count == 0)
    assert info.geometry is not None
    truth = json.loads(mask_sample.truth_path.read_text(encoding="utf-8"))
    assert info.geometry["shape"] == truth["shape"]
    assert sum(info.codecs.values()) == len(storage)
    assert info.file_bytes == packed.stat().st_size
    # the file is the fixed header, the blobs and the one committed index: nothing else
    assert info.file_bytes == fmt.DATA_START + info.data_bytes + info.index_bytes
    assert info.slots == ["slot A: generation 1, ok", "slot B: unused"]
    assert info.trailing_bytes == 0


def test_intact_archives_verify(packed: Path) -> None:
    result = verify_archive(packed)
    assert result.ok, result.damaged
    assert result.checked == len(MaskArchive(packed))
    legacy = verify_archive(LEGACY)
    assert legacy.ok and legacy.checked == 3


def test_a_flipped_blob_byte_names_the_mask(tmp_path: Path, packed: Path) -> None:
    damaged = tmp_path / "d.mska"
    shutil.copy(packed, damaged)
    with MaskArchive(damaged) as archive:
        stats = archive.statistics()
        first = next(n for n in archive if stats[n].voxel_count and n != "ribs_left")
    data = bytearray(damaged.read_bytes())
    data[fmt.DATA_START + 3] ^= 0x40  # inside the first blob written
    damaged.write_bytes(bytes(data))
    result = verify_archive(damaged)
    assert not result.ok
    assert result.damaged[0].startswith(f"{first!r}: ")
    assert "checksum" in result.damaged[0]
    assert result.checked == len(stats)  # the others were still checked


def test_damaged_index_superblock_and_truncation(tmp_path: Path, packed: Path) -> None:
    size = packed.stat().st_size
    cases = {
        "index": lambda d: d.__setitem__(size - 5, d[size - 5] ^ 1),
        "superblock": lambda d: d.__setitem__(20, d[20] ^ 1),
    }
    for kind, damage in cases.items():
        target = tmp_path / f"{kind}.mska"
        data = bytearray(packed.read_bytes())
        damage(data)
        target.write_bytes(bytes(data))
        result = verify_archive(target)
        assert not result.ok, kind
        assert "cannot be opened" in result.damaged[0], kind
    truncated = tmp_path / "cut.mska"
    truncated.write_bytes(packed.read_bytes()[: size // 2])
    assert "cannot be opened" in verify_archive(truncated).damaged[0]
    assert not verify_archive(tmp_path / "missing.mska").ok


def test_an_older_damaged_slot_and_leftover_bytes_are_reported(
    tmp_path: Path, packed: Path, mask_sample: MaskSample
) -> None:
    target = tmp_path / "two.mska"
    shutil.copy(packed, target)
    with MaskArchive(target, "a") as archive:
        archive.remove("ribs_left")  # a second commit (generations 2 and 3), in slot A
    data = bytearray(target.read_bytes())
    slot_a, slot_b = fmt.SLOT_OFFSETS
    data[slot_b : slot_b + fmt.SLOT_SIZE] = data[slot_a : slot_a + fmt.SLOT_SIZE]
    data[slot_b + 44] ^= 1  # a commit in slot B no newer than A, damaged (data_end)
    target.write_bytes(bytes(data) + b"\x00" * 7)  # and bytes an interrupted write left
    result = verify_archive(target)
    assert result.damaged == ["slot B: damaged (superblock checksum mismatch)"]
    assert result.notes == [
        "7 bytes after the last commit (an interrupted write; the next writer drops them)"
    ]
    assert describe_archive(target).generation == 3
