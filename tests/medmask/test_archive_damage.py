"""Damaged and interrupted archives: the package's own errors or the last committed content.

Never a crash of another kind, never wrong data.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacetransformer import Space

from medmask import FormatError, MaskArchive, MedmaskError, SegmentationMask, StaleCommitWarning
from medmask.format import mska as fmt
from medmask.format.commit import Committed, Operation, Sync, Truncate, Write, plan_commit

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
    """The content an archive of ``data`` serves (None: refused with the package's error)."""
    return served(tmp_path, data)[0]


def served(tmp_path: Path, data: bytes) -> tuple[dict[str, bytes] | None, int | None]:
    """The content an archive of ``data`` serves, and the generation a warning says was lost."""
    path = tmp_path / "probe.mska"
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StaleCommitWarning)
        try:
            result = content(path)
        except MedmaskError:
            result = None
    lost = [w.message.lost for w in caught if isinstance(w.message, StaleCommitWarning)]
    return result, lost[0] if lost else None


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


def apply(data: bytes, ops: list[Operation], torn: int | None = None) -> bytes:
    """``data`` after ``ops``; with ``torn``, the last op is a write cut after that many bytes."""
    out = bytearray(data)
    for i, op in enumerate(ops):
        if isinstance(op, Write):
            chunk = op.data if torn is None or i < len(ops) - 1 else op.data[:torn]
            if len(out) < op.offset + len(chunk):
                out.extend(bytes(op.offset + len(chunk) - len(out)))
            out[op.offset : op.offset + len(chunk)] = chunk
        elif isinstance(op, Truncate):
            del out[op.size :]
    return bytes(out)


def second_commit_plan(first: bytes, second: bytes) -> list[Operation]:
    """The plan that turns the first commit's file into the second's (as the writer made it)."""
    old, old_slot = fmt.choose_superblock(first[: fmt.DATA_START], len(first), "x")  # type: ignore[misc]
    new, _ = fmt.choose_superblock(second[: fmt.DATA_START], len(second), "x")  # type: ignore[misc]
    current = Committed(
        old, old_slot, first[old.index_offset : old.index_offset + old.index_length]
    )
    blobs = second[old.index_offset : new.index_offset]
    index = second[new.index_offset : new.index_offset + new.index_length]
    ops, _ = plan_commit(current, old.index_offset, blobs, index)
    return ops


def test_a_commit_leaves_one_index_and_no_old_bytes(two_commits: tuple) -> None:
    first, second, _, _ = two_commits
    ops = second_commit_plan(first, second)
    # the plan rebuilds the writer's file exactly, so replaying it tests the writer's commit
    assert apply(first, ops) == second
    new, slot = fmt.choose_superblock(second[: fmt.DATA_START], len(second), "x")  # type: ignore[misc]
    assert new.data_end == len(second) == new.index_offset + new.index_length
    assert fmt.read_slots(second[: fmt.DATA_START], len(second))[1 - slot] is None


def crash_states(data: bytes, ops: list[Operation]) -> list[tuple[str, bytes]]:
    """Every file a crash during ``ops`` can leave: between two flushes, the writes and the
    truncation since the last flush may have reached the disk in any subset, and the last
    of them partly (every few bytes of it)."""
    groups: list[list[Operation]] = [[]]
    for op in ops:
        if isinstance(op, Sync):
            groups.append([])
        else:
            groups[-1].append(op)
    states = []
    done = data
    for number, group in enumerate(groups):
        for size in range(len(group) + 1):
            for subset in itertools.combinations(group, size):
                for cut in _cuts(subset[-1]) if subset else [None]:
                    label = f"group {number}, {[type(op).__name__ for op in subset]}, cut {cut}"
                    states.append((label, apply(done, list(subset), torn=cut)))
        done = apply(done, group)
    return states


def _cuts(op: Operation) -> list[int | None]:
    return [*range(0, len(op.data), 5), None] if isinstance(op, Write) else [None]


def test_every_crash_point_of_a_commit(tmp_path: Path, two_commits: tuple) -> None:
    """A crash anywhere in the second commit: opening gives the first or the second
    state, never an error or a mixture."""
    first, second, first_content, second_content = two_commits
    ops = second_commit_plan(first, second)
    seen = set()
    for label, state in crash_states(first, ops):
        result = outcome(tmp_path, state)
        assert result in (first_content, second_content), label
        seen.add("second" if result == second_content else "first")
    assert seen == {"first", "second"}


def old_protocol_second_commit(first: bytes, second: bytes) -> bytes:
    """The second commit as medmask before durable adds wrote it: blobs and index appended
    after the first commit, a superblock in the other slot, the first commit kept."""
    old, old_slot = fmt.choose_superblock(first[: fmt.DATA_START], len(first), "x")  # type: ignore[misc]
    new, _ = fmt.choose_superblock(second[: fmt.DATA_START], len(second), "x")  # type: ignore[misc]
    entries = fmt.unpack_index(second[new.index_offset : new.data_end], new.index_crc, "x")
    appended = bytearray(first)
    shift = len(first) - old.index_offset  # new blobs move from the old index's place to the end
    for entry in entries:
        if entry.get("offset", 0) >= old.index_offset:
            entry["offset"] += shift
    appended += second[old.index_offset : new.index_offset]
    index = fmt.pack_index(entries)
    block = fmt.Superblock(
        old.generation + 1, len(appended), len(index), len(appended) + len(index),
        zlib.crc32(index),
    )  # fmt: skip
    appended += index
    slot = fmt.SLOT_OFFSETS[1 - old_slot]
    appended[slot : slot + fmt.SLOT_SIZE] = fmt.pack_superblock(block)
    return bytes(appended)


def test_old_two_commit_files_still_read(tmp_path: Path, two_commits: tuple) -> None:
    first, second, _, second_content = two_commits
    assert served(tmp_path, old_protocol_second_commit(first, second)) == (second_content, None)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(0, 10**6), flip=st.one_of(st.none(), st.integers(0, 10**6)))
def test_a_lost_newest_commit_is_never_served_silently(
    tmp_path: Path, two_commits: tuple, cut: int, flip: int | None
) -> None:
    """Files after complete commits, cut short or with a flipped superblock byte: the
    newest content, an error, or the older content with a warning naming both generations."""
    first, second, first_content, second_content = two_commits
    for data in (second, old_protocol_second_commit(first, second)):
        damaged = bytearray(data)
        if flip is None:
            del damaged[cut % len(damaged) :]
        else:
            damaged[flip % (2 * fmt.SLOT_SIZE)] ^= 0x10
        newest = fmt.choose_superblock(data[: fmt.DATA_START], len(data), "x")
        content, lost = served(tmp_path, bytes(damaged))
        if content == first_content and content != second_content:
            assert newest is not None and lost is not None  # (a flip may hit its number)
            assert lost == newest[0].generation or flip is not None
        else:
            assert content in (None, second_content)


def test_the_warning_names_the_file_and_both_generations(
    tmp_path: Path, two_commits: tuple
) -> None:
    first, second, first_content, _ = two_commits
    data = old_protocol_second_commit(first, second)
    path = tmp_path / "cut.mska"
    path.write_bytes(data[:-3])  # the newest index cut short
    with pytest.warns(StaleCommitWarning) as caught:
        archive = MaskArchive(path)
    old = fmt.choose_superblock(first[: fmt.DATA_START], len(first), "x")[0]  # type: ignore[index]
    message = str(caught[0].message)
    assert str(path) in message and f"generation {old.generation + 1}" in message
    assert f"serving generation {old.generation}" in message
    assert {n: archive.load_mask(n).data.tobytes() for n in archive} == first_content
    archive.close()


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
        print(i + 1, flush=True)  # no flush, no close: an add is committed when it returns
    """
)


def expected_mask(i: int) -> np.ndarray:
    arr = np.zeros((40, 40, 40), np.uint8)
    arr[i % 30 : i % 30 + 8, 3:20, (i * 7) % 30 : (i * 7) % 30 + 5] = 1
    return arr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_writer_keeps_every_add_that_returned(tmp_path: Path) -> None:
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
