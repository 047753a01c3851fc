"""The open file behind a :class:`~medmask.files.archive.MaskArchive`: reading, staging, commits.

One :class:`ArchiveFile` per open file. Writers hold an exclusive lock on it; writer
objects opened on one file in one process share a single ArchiveFile (MedMask scripts
open a second writer while the first is still bound, e.g. a notebook cell run twice),
which closes when the last of them does. New blobs are staged in memory and written by
:meth:`ArchiveFile.commit` following the plan of :mod:`medmask.format.commit`.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
import sys
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from spacetransformer import Space

from ..deprecation import user_stacklevel
from ..errors import ArchiveLockedError, FormatError, MedmaskWarning, StaleCommitWarning
from ..format import mska as fmt
from ..format.commit import Committed, Operation, Sync, Truncate, Write, plan_commit
from ..model.space import space_from_dict, space_to_dict
from .atomic import mode_for
from .index import Entry, Index
from .locks import NO_LOCKS, lock_now

__all__ = ["ArchiveFile", "ArchiveMode", "open_archive_file", "open_file"]

ArchiveMode = Literal["r", "w", "a"]

_sync = getattr(os, "fdatasync", os.fsync)  # data and size on disk; mtime may lag
_READ_RETRIES = 5  # a reader racing a writer's commit re-reads the slots this often
_SETTLE_SECONDS = 0.05  # a commit's steps take well under this: a writer would have moved on
_WRITERS: dict[tuple[int, int], ArchiveFile] = {}  # open writers by (device, inode)


@dataclass
class _Replacement:
    """A new archive written beside the one it replaces at its first commit."""

    temp: Path
    old_fd: int  # the archive being replaced, held (and locked) until then
    old_key: tuple[int, int]


@dataclass
class ArchiveFile:
    """Everything an open archive file holds."""

    path: Path
    writable: bool
    fd: int
    level: int
    space: Space | None = None
    entries: Index = field(default_factory=Index)
    committed: Committed | None = None
    base: int = fmt.DATA_START  # where the next commit writes new blobs
    pending: bytearray = field(default_factory=bytearray)  # staged blobs, from `base` on
    geometry_written: bool = False
    dirty: bool = False
    batch_depth: int = 0  # open `with archive:` / `batch()` blocks: commits wait for them
    handles: int = 0
    image_series: dict[str, str] | None = None  # the DICOM series the masks were drawn on
    key: tuple[int, int] | None = None  # (device, inode) of a writer, for the registry
    replacing: _Replacement | None = None  # mode "w" over an archive: built beside it

    # -- reading ---------------------------------------------------------------------------
    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``: from the file, or from the staged blobs."""
        if offset >= self.base and self.pending:
            start = offset - self.base
            return bytes(self.pending[start : start + length])
        data = os.pread(self.fd, length, offset)
        if len(data) != length:
            raise FormatError(f"{self.path}: file ended inside a blob at {offset}+{length}")
        return data

    def load(self, source: str) -> None:
        """Read the newest commit: geometry and index (a new, empty file has neither)."""
        found = self._newest_commit(source)
        if found is None:
            return
        head, block, slot, raw = found
        geometry = fmt.unpack_geometry(head[fmt.GEOMETRY_OFFSET :], source)
        if geometry is not None:
            try:
                self.space = space_from_dict(geometry)
            except ValueError as err:
                raise FormatError(f"{source}: {err}") from err
            self.geometry_written = True
        self.entries = Index(block.data_end, source)
        groups = []
        items, self.image_series = fmt.unpack_index_object(raw, block.index_crc, source)
        for item in items:
            if not isinstance(item.get("name"), str):
                raise FormatError(f"{source}: index entry without a name")
            self.entries.add_raw(item["name"], item)
            if item.get("kind") == "group":
                groups.append(item["name"])
        for name in groups:
            for member in self.entries[name].members:
                target = self.entries.get(member)
                if target is None or target.kind != "mask":
                    raise FormatError(f"{source}: group {name!r} names a missing mask {member!r}")
        self.committed = Committed(block, slot, raw)
        self.base = block.index_offset
        if self.writable:  # blobs past the index (another writer's layout) stay untouched
            ends = [e.offset + e.length for e in self.entries.values() if e.length]
            self.base = max([block.index_offset, *ends])

    def _newest_commit(self, source: str) -> tuple[bytes, fmt.Superblock, int, bytes] | None:
        """Head bytes, superblock, slot and index bytes of the newest intact commit.

        None for a writer on a file never committed. The newest superblock whose index
        matches its checksum wins: an older one only exists while a commit is under way.
        A reader racing another process's commit may find its index moved or the other
        slot half written: it reads the slots again before it believes either.
        """
        for attempt in range(_READ_RETRIES):
            # the slots first, the size after: a writer grows the file before it writes the
            # superblock that covers the new bytes, so this size covers every commit the
            # slots name (read the other way round, a commit landing between the two reads
            # looked like "commit covers 2761 bytes but the file has 2741")
            head = os.pread(self.fd, fmt.DATA_START, 0)
            size = os.fstat(self.fd).st_size
            if len(head) < min(size, fmt.DATA_START) and attempt + 1 < _READ_RETRIES:
                continue  # the file grew between the two reads (a writer's first commit)
            candidates = [] if size == 0 else fmt.commit_candidates(head, size, source)
            if not candidates:
                if self.writable:
                    return None
                if size == 0:
                    raise FormatError(
                        f"{source}: the file is empty (0 bytes): not an archive, or one whose "
                        "writer has committed nothing yet"
                    )
                raise FormatError(
                    f"{source}: the archive was created but nothing was committed yet "
                    "(its writer has added no mask so far, or was killed before the first)"
                )
            served = self._first_intact(candidates)
            lost = self._newer_slot(head, served[0]) if served else None
            if served is not None and lost is None:
                return head, *served  # the usual case: one live commit, intact
            if not self.writable and self._head_moved(head, size):
                continue  # a writer is committing: read again
            if served is None:
                break  # nobody is committing: the newest index is damaged
            assert lost is not None
            warnings.warn(
                StaleCommitWarning(
                    f"{source}: its newest commit (generation {lost[0]}) is damaged or "
                    f"incomplete ({lost[1]}); serving generation {served[0].generation}, the "
                    "newest intact one: changes made after it are missing",
                    source,
                    lost[0],
                    served[0].generation,
                ),
                stacklevel=user_stacklevel(),
            )
            return head, *served
        block, slot = candidates[0]
        return head, block, slot, os.pread(self.fd, block.index_length, block.index_offset)

    def _first_intact(
        self, candidates: list[tuple[fmt.Superblock, int]]
    ) -> tuple[fmt.Superblock, int, bytes] | None:
        """The newest candidate whose index matches its checksum, with the index bytes."""
        for block, slot in candidates:
            raw = os.pread(self.fd, block.index_length, block.index_offset)
            if zlib.crc32(raw) == block.index_crc:
                return block, slot, raw
        return None

    def _head_moved(self, head: bytes, size: int) -> bool:
        """Whether a writer changed the slots since ``head`` was read (after a short wait)."""
        time.sleep(_SETTLE_SECONDS)
        return os.pread(self.fd, fmt.DATA_START, 0) != head or os.fstat(self.fd).st_size != size

    @staticmethod
    def _newer_slot(head: bytes, served: fmt.Superblock) -> tuple[int, str] | None:
        """(generation, why) of a slot numbered above ``served`` that cannot be served."""
        for offset in fmt.SLOT_OFFSETS:
            raw = head[offset : offset + fmt.SLOT_SIZE]
            generation = fmt.slot_generation(raw)
            looks_like_one = sum(a == b for a, b in zip(raw, fmt.MAGIC, strict=False)) >= 6
            if generation > served.generation and looks_like_one:  # (a flip may hit the magic)
                found = fmt.read_slots(head[: fmt.DATA_START], 2**63)[offset // fmt.SLOT_SIZE]
                why = found if isinstance(found, str) else "its data is cut off or damaged"
                return generation, why
        return None

    # -- writing ---------------------------------------------------------------------------
    def enter(self) -> None:
        """A ``with archive:`` or ``batch()`` block starts: commits wait for its end."""
        self.batch_depth += 1

    def leave(self) -> bool:
        """A block ends; whether it was the outermost (commits may run again)."""
        self.batch_depth -= 1
        return self.batch_depth == 0

    def take_space(self, space: Space) -> None:
        """The archive's geometry, until its first commit (then it is on disk)."""
        self.space = space
        self.dirty = self.writable

    def put(self, entry: Entry) -> None:
        """``entry`` into the index, last (a replaced name moves to the end), staged."""
        self.entries.pop(entry.name)
        self.entries[entry.name] = entry
        self.changed()

    def stage(self, blob: bytes) -> int:
        """Keep ``blob`` for the next commit; returns the offset it will have in the file."""
        offset = self.base + len(self.pending)
        self.pending += blob
        self.dirty = True
        return offset

    def changed(self) -> None:
        """Commit now, unless a batch is open (then its end commits)."""
        self.dirty = True
        if self.batch_depth == 0:
            self.commit()

    def commit(self) -> None:
        """Write staged blobs and the index; afterwards a crash keeps them."""
        if not self.dirty or not self.writable:
            return
        geometry = None
        if self.space is not None and not self.geometry_written:
            geometry = fmt.pack_geometry(space_to_dict(self.space))
        index = fmt.pack_index_json(self.entries.stored_json(), self.image_series)
        ops, after = plan_commit(self.committed, self.base, bytes(self.pending), index, geometry)
        try:
            _run(self.fd, ops)
        except OSError as err:
            reason = os.strerror(err.errno) if err.errno else str(err)
            raise OSError(
                err.errno, f"commit failed ({reason}); the archive keeps its previous commit",
                str(self.path),
            ) from err  # fmt: skip
        self.committed, self.base, self.dirty = after, after.superblock.index_offset, False
        self.pending = bytearray()
        self.geometry_written = self.geometry_written or geometry is not None
        if self.replacing is not None:  # the new archive is complete: it takes the name
            self.replacing.temp.replace(self.path)
            _sync_folder(self.path.parent)
            self._drop_replacement()

    def _drop_replacement(self, *, unlink: bool = False) -> None:
        """Let go of the archive being replaced (and the unused new file, with ``unlink``)."""
        replacing, self.replacing = self.replacing, None
        if replacing is None:
            return
        os.close(replacing.old_fd)
        if _WRITERS.get(replacing.old_key) is self:
            del _WRITERS[replacing.old_key]
        if unlink:
            replacing.temp.unlink(missing_ok=True)

    def rewrite(self, items: list[tuple[Entry, bytes]]) -> None:
        """Put a fresh file holding only ``items`` (entries and their blobs) in this one's place.

        The new file is complete before it replaces the old one under its name.
        """
        temp = self.path.with_name(f".{self.path.name}.compact")
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
        temp.chmod(mode_for(self.path))  # the compacted file keeps the archive's mode
        try:
            _lock(fd, temp)
            fresh = ArchiveFile(
                self.path, True, fd, self.level, space=self.space, image_series=self.image_series
            )
            for entry, blob in items:
                offset = fresh.stage(blob) if blob else 0
                fresh.entries[entry.name] = dataclasses.replace(entry, offset=offset)
            fresh.dirty = True
            fresh.commit()
            temp.replace(self.path)
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        os.close(self.fd)
        self._drop_replacement(unlink=True)  # the compacted file has taken the name
        if self.key is not None:
            _WRITERS.pop(self.key, None)
        stat = os.fstat(fd)
        self.key = (stat.st_dev, stat.st_ino)
        _WRITERS[self.key] = self
        self.fd, self.entries, self.committed, self.base = (
            fd, fresh.entries, fresh.committed, fresh.base,
        )  # fmt: skip
        self.pending, self.dirty, self.geometry_written = bytearray(), False, True

    def reset(self) -> None:
        """Start a new archive (mode "w" on a file this process writes already).

        As for any "w", a file with content is replaced only when the new one commits.
        """
        if self.replacing is None and self.key is not None and os.fstat(self.fd).st_size > 0:
            fd, key, temp = _open_beside(self.path)
            self.replacing = _Replacement(temp, self.fd, self.key)
            self.fd, self.key = fd, key
            _WRITERS[key] = self
        else:
            os.ftruncate(self.fd, 0)
        self.space, self.entries, self.committed = None, Index(), None
        self.image_series = None
        self.base, self.pending, self.geometry_written = fmt.DATA_START, bytearray(), False
        self.dirty = False

    def release(self) -> None:
        """One handle fewer; the last one commits and closes the file."""
        self.handles -= 1
        if self.handles > 0 or self.fd < 0:
            return
        try:
            self.commit()
        finally:
            os.close(self.fd)
            self.fd = -1
            self._drop_replacement(unlink=True)  # nothing committed: the old archive stays
            if self.key is not None and _WRITERS.get(self.key) is self:
                del _WRITERS[self.key]


@dataclass(frozen=True)
class CommitText:
    """An archive's newest intact commit, as read for many archives at once: its
    superblock, geometry record (None: never set) and index block's JSON text."""

    superblock: fmt.Superblock
    geometry: dict[str, Any] | None
    index: bytes


_BINARY = getattr(os, "O_BINARY", 0)  # (Windows)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # (POSIX; a regular file ignores it)
_NOT_FILES = {
    stat.S_IFDIR: "is a folder", stat.S_IFIFO: "is a named pipe (FIFO)",
    stat.S_IFSOCK: "is a socket", stat.S_IFCHR: "is a device", stat.S_IFBLK: "is a device",
}  # fmt: skip


def open_file(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open(path, flags)`` of an archive file, refusing what is not a regular file:
    opening a named pipe to read waits for a writer for ever (a catalog of a folder
    holding one hung), a device reads without end.

    Raises
    ------
    FormatError
        ``path`` is a folder, named pipe, socket or device.
    """
    fd = os.open(path, flags | _BINARY | _NONBLOCK, 0o666)
    try:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    if kind != stat.S_IFREG:
        os.close(fd)
        raise FormatError(f"{path}: {_NOT_FILES.get(kind, 'is not a file')}, not an archive file")
    return fd


def read_commit(path: Path) -> CommitText:
    """The newest intact commit of a ``.mska`` archive of this format, found as
    :class:`MaskArchive` finds it (the same slots, checks and retries), without parsing
    the index.

    Raises
    ------
    FormatError
        Not an archive of this format (0.1.3's included), damaged, or never committed.
    """
    fd = open_file(path, os.O_RDONLY)
    try:
        source = str(path)
        found = ArchiveFile(path, False, fd, 0, handles=1)._newest_commit(source)
        if found is None:  # only writers see None
            raise FormatError(f"{source}: nothing was committed yet")
        head, block, _, raw = found
        geometry = fmt.unpack_geometry(head[fmt.GEOMETRY_OFFSET :], source)
        return CommitText(block, geometry, fmt.index_text(raw, block.index_crc, source))
    finally:
        os.close(fd)


def open_archive_file(path: Path, mode: ArchiveMode, level: int) -> tuple[ArchiveFile, bool]:
    """The ArchiveFile for ``path`` and whether it is shared with a writer opened before.

    Raises
    ------
    ArchiveLockedError
        Another process is writing to the file.
    """
    if path.is_dir():  # (O_RDWR of a folder fails EISDIR, said less plainly)
        raise FormatError(f"{path}: is a folder, not an archive file")
    if mode == "r":
        fd = open_file(path, os.O_RDONLY)
        return ArchiveFile(path, False, fd, level, handles=1), False
    fd = open_file(path, os.O_RDWR | os.O_CREAT)
    stat = os.fstat(fd)
    shared = _WRITERS.get((stat.st_dev, stat.st_ino))  # this process writes to it already
    if shared is not None and shared.fd >= 0:
        os.close(fd)
        shared.handles += 1
        return shared, True
    try:
        _lock(fd, path)
    except BaseException:
        os.close(fd)
        raise
    key = (stat.st_dev, stat.st_ino)
    if mode == "w" and stat.st_size > 0:
        return _replacement(path, fd, key, level), False
    if mode == "w":
        os.ftruncate(fd, 0)
    opened = ArchiveFile(path, True, fd, level, handles=1, key=key)
    _WRITERS[key] = opened
    return opened, False


def _replacement(path: Path, old_fd: int, old_key: tuple[int, int], level: int) -> ArchiveFile:
    """Mode "w" over an existing file: a new archive beside it, taking its name at the
    first commit; until then (and after a crash) the old one opens as before."""
    try:
        fd, key, temp = _open_beside(path)
    except BaseException:
        os.close(old_fd)
        raise
    opened = ArchiveFile(
        path, True, fd, level, handles=1, key=key, replacing=_Replacement(temp, old_fd, old_key)
    )
    _WRITERS[key] = _WRITERS[old_key] = opened  # writers of the old name share it too
    return opened


def _open_beside(path: Path) -> tuple[int, tuple[int, int], Path]:
    """An empty, locked ``.<name>.new`` beside ``path``: descriptor, registry key, path.

    A writer killed before its first commit leaves it; the next one reuses it.
    """
    temp = path.with_name(f".{path.name}.new")
    fd = os.open(temp, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
    try:
        _lock(fd, temp)
        os.ftruncate(fd, 0)
        temp.chmod(mode_for(path))  # replacing an archive keeps its mode
    except BaseException:
        os.close(fd)
        raise
    stat = os.fstat(fd)
    return fd, (stat.st_dev, stat.st_ino), temp


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows has no folder handles to sync)."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _run(fd: int, ops: list[Operation]) -> None:
    """Carry out a commit plan."""
    for op in ops:
        if isinstance(op, Write):
            _write_all(fd, op.data, op.offset)
        elif isinstance(op, Sync):
            _sync(fd)
        elif isinstance(op, Truncate):
            os.ftruncate(fd, op.size)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        if written <= 0:  # pragma: no cover - the OS reports a full disk as an OSError
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view, offset = view[written:], offset + written


def _lock(fd: int, path: Path) -> None:
    """Take the single-writer lock on ``fd`` without waiting; on a file system without
    locks, write unlocked with a warning (it said "open for writing in another process")."""
    err = lock_now(fd)
    if err is not None:
        if err.errno in NO_LOCKS:
            warnings.warn(
                MedmaskWarning(
                    f"{path.parent}: its file system does not lock files (NFS without its "
                    f"lock service?: {err.strerror}); archives there are written unlocked, "
                    "so a second writer of one at the same time would not be refused"
                ),
                stacklevel=user_stacklevel(),
            )
            return
        raise ArchiveLockedError(
            f"{path} is open for writing in another process; close that writer first "
            "(readers are fine)"
        ) from err
