"""The archive commit protocol as a plan of writes (docs/mask-format.md, "Commit protocol").

A commit is computed here as a list of file operations and executed by the archive; the
tests replay every prefix of a plan, with the next write torn at every byte, and check
that the file always opens as the old or the new content.

After each commit the file is ``[fixed head][blobs][index]``: the new blobs overwrite
the previous index, so adding masks one at a time leaves no old index behind. To do that
safely the previous index is first copied past the end of the new content and committed
there (a superblock in the other slot), so that at every moment some superblock points
at intact bytes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from .mska import (
    DATA_START,
    GEOMETRY_OFFSET,
    SLOT_OFFSETS,
    SLOT_SIZE,
    Superblock,
    pack_superblock,
)

__all__ = ["Committed", "Operation", "Sync", "Truncate", "Write", "plan_commit"]


@dataclass(frozen=True)
class Write:
    """Write ``data`` at ``offset``."""

    offset: int
    data: bytes


@dataclass(frozen=True)
class Sync:
    """Everything written so far must be on disk before anything after it."""


@dataclass(frozen=True)
class Truncate:
    """Cut the file to ``size`` bytes."""

    size: int


Operation = Write | Sync | Truncate


@dataclass(frozen=True)
class Committed:
    """The archive's state once a plan has run."""

    superblock: Superblock
    slot: int
    index: bytes  # the committed index block, kept to move it aside at the next commit


def plan_commit(
    current: Committed | None,
    base: int,
    blobs: bytes,
    index: bytes,
    geometry: bytes | None = None,
) -> tuple[list[Operation], Committed]:
    """The operations that commit ``blobs`` and ``index`` on top of ``current``.

    Parameters
    ----------
    current : Committed or None
        The archive's last commit; None for a file never committed.
    base : int
        Where the new blobs start: the current index's offset (byte 288 on a new file),
        or later when committed blobs lie past the index (files of other writers).
    blobs : bytes
        New blobs, in the order their index entries place them from ``base`` on.
    index : bytes
        The new index block.
    geometry : bytes, optional
        The geometry block, when it is not on disk yet (the first commit with a Space).

    Returns
    -------
    list of operations, and the state after them.
    """
    if base < (current.superblock.index_offset if current else DATA_START):
        raise ValueError(f"new blobs at {base} would overwrite committed blobs")
    end = base + len(blobs) + len(index)
    generation = current.superblock.generation if current else 0
    slot = 1 - current.slot if current else 0  # where the new superblock goes
    ops: list[Operation] = []
    if current is not None and base < current.superblock.index_offset + len(current.index):
        # Step 1: the current index moves past everything step 2 writes, committed there.
        aside = end
        moved = Superblock(
            generation + 1, aside, len(current.index), aside + len(current.index),
            current.superblock.index_crc,
        )  # fmt: skip
        generation += 1
        # No flush between the two writes: if the superblock lands without the copy, the
        # copy fails its checksum and readers keep the current commit, still intact then.
        ops += [
            Write(aside, current.index),
            Write(SLOT_OFFSETS[slot], pack_superblock(moved)),
            Sync(),
        ]
        slot = current.slot  # its index is about to be overwritten: the new commit goes there
    # Step 2: the new blobs over the old index, the new index after them.
    block = Superblock(generation + 1, base + len(blobs), len(index), end, zlib.crc32(index))
    if geometry is not None:
        ops.append(Write(GEOMETRY_OFFSET, geometry))
    ops += [
        Write(base, blobs),  # two writes: a disk may store the index and not the blobs
        Write(base + len(blobs), index),
        Sync(),
        Write(SLOT_OFFSETS[slot], pack_superblock(block)),
        Sync(),
        Truncate(end),  # the moved index, and leftovers of an interrupted writer
    ]
    # The other slot's commit (step 1's, or an older one) is void now: one live commit.
    ops.append(Write(SLOT_OFFSETS[1 - slot], bytes(SLOT_SIZE)))
    return ops, Committed(block, slot, index)
