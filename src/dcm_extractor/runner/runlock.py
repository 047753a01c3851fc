"""One run per output folder: an exclusive lock on ``<out>/.dcm-extract.lock``.

Two runs into one ``--out`` would both hand out project IDs from 1 and overwrite each
other's tables and ID map (the last writer wins). The lock is a POSIX record lock
(``fcntl.lockf``): it belongs to the run's own process alone, so the worker processes a
run starts never hold it (a ``flock`` lock is shared with every forked child, and
orphaned workers of a killed run kept it), and it goes away with that process, even
after ``kill -9``. The file names its holder (process ID, host, start time; no paths or
names) so the refused run can say who is writing; a run that ends empties it, so a
holder named by a lock nobody holds is a run that was killed: the next run says so and
removes that run's temporary files (``.<name>.<random>.tmp`` in ``--out`` and the
manifest folder), some of which hold patient names.

On a file system that does not lock files (NFS without its lock service answers
``ENOLCK``) the run goes on unlocked, with a warning, unless the file names a holder: a
killed run cannot be told from a running one there, so that is refused, saying to delete
the file when no run is writing (nothing is removed).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import re
import shutil
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..errors import OutputBusyError, PlatformError

try:
    import fcntl
except ImportError:  # (Windows)
    _POSIX_LOCKS = False
else:
    _POSIX_LOCKS = True

__all__ = ["LOCK_NAME", "Takeover", "output_lock", "remove_temporary_files"]

LOCK_NAME: Final = ".dcm-extract.lock"
TEMPORARY: Final = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # atomic.AtomicFile's names

_HELD: set[tuple[int, int]] = set()  # POSIX locks do not refuse their own process: we do


@dataclass(frozen=True)
class Takeover:
    """What the run before this one left: who it was (empty: it ended properly) and how
    many temporary files of it were removed."""

    previous: str
    removed: int
    unlocked: bool = False  # the file system does not lock files: no lock is held

    def line(self, out: Path) -> str:
        """The warning to give, or ``""`` when there is nothing to say."""
        if self.unlocked:
            return (
                f"{out} is on a file system that does not lock files (NFS without its lock "
                "service?): a second run into it at the same time would not be refused, so "
                "start one at a time"
            )
        if not self.previous and not self.removed:
            return ""
        return (
            f"the run before this one into {out} did not finish "
            f"({self.previous or 'holder unknown'}); removed {self.removed} temporary file(s) "
            "it left"
        )


# what a file system without locks answers (NFS without lockd; some FUSE file systems)
_NO_LOCKS: Final = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})


@contextlib.contextmanager
def output_lock(out: Path, also_clean: Iterable[Path] = ()) -> Iterator[Takeover]:
    """Hold ``out``'s lock for the block; first remove what a killed run left.

    Parameters
    ----------
    out : Path
        The output folder.
    also_clean : iterable of Path
        Other folders the run writes temporary files into (a manifest folder elsewhere).

    Yields
    ------
    Takeover
        What a killed run before this one left (the caller says it, once it logs).

    Raises
    ------
    OutputBusyError
        Another process (or another run in this one) holds it; the message names it. Or
        the file system has no locks and the lock file names a holder.
    PlatformError
        Not a POSIX system (Windows): the run's lock, its time limits and its worker
        processes' ending with it are POSIX's.
    """
    if not _POSIX_LOCKS:
        raise PlatformError(
            "dcm-extract's extraction runs on Linux and macOS (its output lock, case time "
            "limits and worker clean-up are POSIX's); on Windows run it in WSL "
            "(dcm-extract query and sample run here)"
        )
    path = out / LOCK_NAME
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    key: tuple[int, int] | None = None
    try:
        stat = os.fstat(descriptor)
        key = (stat.st_dev, stat.st_ino)
        if key in _HELD:
            key = None
            raise OutputBusyError(
                f"another run in this process is writing into {out}; give this run another --out"
            )
        locked = _lock(descriptor, out, path)
        previous = os.pread(descriptor, 512, 0).decode("utf-8", "replace").strip()
        if not locked and previous:  # (running, or killed: without locks nobody can tell)
            raise OutputBusyError(
                f"{path} names a run into {out} that is still running or did not finish "
                f"({previous}), and this file system does not lock files, so which cannot "
                f"be told: if no run is writing into {out}, delete {path} and start again"
            )
        takeover = (
            Takeover(previous, remove_temporary_files([out, *also_clean]))
            if locked
            else Takeover("", 0, unlocked=True)
        )
        _HELD.add(key)
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        note = f"process {os.getpid()} on {socket.gethostname()}, started {started}\n"
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, note.encode(), 0)
        except OSError as err:  # (a full disk): named after the lock file
            raise OSError(err.errno, err.strerror, str(path)) from err
        try:
            yield takeover
        finally:
            os.ftruncate(descriptor, 0)
            if locked:
                fcntl.lockf(descriptor, fcntl.LOCK_UN)
    finally:
        if key is not None:
            _HELD.discard(key)
        os.close(descriptor)


def _lock(descriptor: int, out: Path, path: Path) -> bool:
    """Take the lock on ``descriptor``: True, or False where the file system has no locks
    (then a killed run's leftovers cannot be told from a running one's: not removed)."""
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in _NO_LOCKS:
            return False
        if err.errno not in (errno.EACCES, errno.EAGAIN):
            raise OSError(err.errno, err.strerror, str(path)) from err
        holder = os.pread(descriptor, 512, 0).decode("utf-8", "replace").strip()
        raise OutputBusyError(
            f"another run is writing into {out} ({holder or 'holder unknown'}); "
            "wait for it, or give this run another --out"
        ) from None
    return True


def remove_temporary_files(folders: Iterable[Path]) -> int:
    """Remove the temporary files a killed run left in ``folders`` and their sub-folders
    (not following links); returns how many. Call only while holding the lock."""
    removed = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for parent, folders_in, files in os.walk(folder):
            for name in files:
                if TEMPORARY.match(name):
                    with contextlib.suppress(FileNotFoundError):
                        (Path(parent) / name).unlink()
                        removed += 1
            for name in [n for n in folders_in if TEMPORARY.match(n)]:  # (xlsx sheets)
                folders_in.remove(name)
                shutil.rmtree(Path(parent) / name, ignore_errors=True)
                removed += 1
    return removed
