"""Damaged and interrupted archives: the package's own errors or the last committed content.

Never a crash of another kind, never wrong data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacetransformer import Space

from medmask import FormatError, MaskArchive, MedmaskError, SegmentationMask
from medmask.format import archive as fmt

SPACE = Space(shape=(12, 10, 8), spacing=(1.0, 1.0, 2.0))


def mask(seed: int, dtype: type = np.uint8) -> SegmentationMask:
    rng = np.random.default_rng(seed)
    arr = np.zeros((12, 10, 8), dtype)
    lo = rng.integers(0, 5, size=3)
    arr[lo[0] : lo[0] + 5, lo[1] : lo[1] + 4, lo[2] : lo[2] + 3] = 1
    return SegmentationMask(arr, {f"m{seed}": 1}, SPACE)


def content(path: Path) -> dict[str, bytes]:
    """Every mask's voxels, or the package's error."""
    with MaskArchive(path) as archive:
        return {name: archive.load_mask(name).data.tobytes() for name in archive}


@pytest.fixture
def two_commits(tmp_path: Path) -> tuple[bytes, bytes, dict[str, bytes], dict[str, bytes]]:
    """An archive after a first and a second commit: both states' bytes and contents."""
    path = tmp_path / "two.mska"
    archive = MaskArchive(path, "w", space=SPACE)
    archive.add_mask(mask(1), "m1")
    archive.add_mask(mask(2, np.uint16), "m2")
    archive.flush()
    first = path.read_bytes()
    first_content = content(path)
    archive.add_mask(mask(3), "m3")
    archive.close()
    return first, path.read_bytes(), first_content, content(path)


def outcome(tmp_path: Path, data: bytes) -> dict[str, bytes] | None:
    path = tmp_path / "probe.mska"
    path.write_bytes(data)
    try:
        return content(path)
    except MedmaskError:
        return None


def test_truncation_at_every_section_boundary(tmp_path: Path, two_commits: tuple) -> None:
    _, second, first_content, _ = two_commits
    block, _ = fmt.choose_superblock(second[: fmt.DATA_START], len(second), "x")  # type: ignore[misc]
    boundaries = {
        1,
        8,
        63,
        64,
        127,
        128,
        200,
        287,
        288,
        289,
        block.index_offset,
        block.data_end - 1,
    }
    for cut in sorted(boundaries):
        result = outcome(tmp_path, second[:cut])
        assert result in (None, first_content), cut  # never partial or wrong content


def test_every_flipped_byte(tmp_path: Path, two_commits: tuple) -> None:
    _, second, first_content, second_content = two_commits
    for position in range(len(second)):
        damaged = bytearray(second)
        damaged[position] ^= 0xA5
        result = outcome(tmp_path, bytes(damaged))
        assert result in (None, first_content, second_content), position


def test_offsets_past_the_end_are_refused(tmp_path: Path, two_commits: tuple) -> None:
    _, second, _, _ = two_commits
    block, slot = fmt.choose_superblock(second[: fmt.DATA_START], len(second), "x")  # type: ignore[misc]
    entries = fmt.unpack_index(second[block.index_offset : block.data_end], block.index_crc, "x")
    entries[0]["offset"] = len(second) + 100
    index = fmt.pack_index(entries)
    forged = bytearray(second[: block.index_offset] + index)
    new_block = fmt.Superblock(
        block.generation + 1, block.index_offset, len(index), len(forged), zlib.crc32(index)
    )
    start = fmt.SLOT_OFFSETS[1 - slot]
    forged[start : start + fmt.SLOT_SIZE] = fmt.pack_superblock(new_block)
    path = tmp_path / "forged.mska"
    path.write_bytes(bytes(forged))
    with MaskArchive(path) as archive, pytest.raises(FormatError, match="lies outside"):
        archive.load_mask(archive.all_names()[0])  # checked before any read of that blob


def test_every_crash_point_of_a_commit(tmp_path: Path, two_commits: tuple) -> None:
    """Replay the second commit's writes byte by byte: opening always gives a whole state."""
    first, second, first_content, second_content = two_commits
    old_block, old_slot = fmt.choose_superblock(first[: fmt.DATA_START], len(first), "x")  # type: ignore[misc]
    new_slot = fmt.SLOT_OFFSETS[1 - old_slot]
    # phase 1: blob and index bytes land after the first commit's end; superblocks unchanged
    for length in range(old_block.data_end, len(second) + 1, 3):
        state = first[: old_block.data_end] + second[old_block.data_end : length]
        assert outcome(tmp_path, state) == first_content, length
    # phase 2: the new superblock is torn at every byte
    body = first[: old_block.data_end] + second[old_block.data_end :]
    for torn in range(fmt.SLOT_SIZE + 1):
        state = bytearray(body)
        state[new_slot : new_slot + torn] = second[new_slot : new_slot + torn]
        expected = second_content if torn == fmt.SLOT_SIZE else first_content
        assert outcome(tmp_path, bytes(state)) == expected, torn


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from spacetransformer import Space
    from medmask import MaskArchive, SegmentationMask

    space = Space(shape=(40, 40, 40))
    archive = MaskArchive(sys.argv[1], "w", space=space)
    for i in range(10_000):
        arr = np.zeros((40, 40, 40), np.uint8)
        arr[i % 30 : i % 30 + 8, 3:20, (i * 7) % 30 : (i * 7) % 30 + 5] = 1
        archive.add_mask(SegmentationMask(arr, {f"m{i}": 1}, space), f"m{i}")
        if i % 3 == 2:
            archive.flush()
            print(i + 1, flush=True)
    """
)


def expected_mask(i: int) -> np.ndarray:
    arr = np.zeros((40, 40, 40), np.uint8)
    arr[i % 30 : i % 30 + 8, 3:20, (i * 7) % 30 : (i * 7) % 30 + 5] = 1
    return arr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_writer_leaves_the_last_commit(tmp_path: Path) -> None:
    path = tmp_path / "killed.mska"
    committed = 0
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            committed = int(line)
            if committed >= 30:
                break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    with MaskArchive(path) as archive:
        names = archive.all_names()
        assert len(names) >= committed
        assert names == [f"m{i}" for i in range(len(names))]
        for i, name in enumerate(names):
            assert np.array_equal(archive.load_mask(name).data, expected_mask(i))
    with MaskArchive(path, "a") as archive:  # and a new writer can carry on
        archive.add_mask(
            SegmentationMask(expected_mask(0), {"again": 1}, Space(shape=(40, 40, 40))), "again"
        )
    with MaskArchive(path) as archive:
        assert "again" in archive


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
    insert=st.one_of(
        st.none(), st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=9))
    ),
)
def test_fuzzed_archives_never_crash_the_reader(
    tmp_path: Path, two_commits: tuple, flips: list, cut: int | None, insert: tuple | None
) -> None:
    _, second, first_content, second_content = two_commits
    data = bytearray(second)
    for position, value in flips:
        data[position % len(data)] ^= value
    if insert is not None:
        at = insert[0] % len(data)
        data[at:at] = insert[1]
    if cut is not None:
        del data[cut % (len(data) + 1) :]
    assert outcome(tmp_path, bytes(data)) in (None, first_content, second_content)
