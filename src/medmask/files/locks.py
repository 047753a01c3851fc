"""Exclusive locks that never wait: one writer of an archive, one run packing into a
folder of archives.

``flock`` on POSIX (the lock belongs to the open file, so it goes with the process that
holds it, even after ``kill -9``; medmask's worker processes are spawned, so they never
share it), ``msvcrt.locking`` on Windows.
"""

from __future__ import annotations

import errno
import sys
from typing import Final

__all__ = ["NO_LOCKS", "lock_now"]

# what a file system without locks answers (NFS without its lock service; some FUSE ones)
NO_LOCKS: Final = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})


def lock_now(fd: int) -> OSError | None:
    """Take an exclusive lock on the open file ``fd`` without waiting (on Windows: of the
    byte at its position, so every locker opens the file at one position).

    Returns
    -------
    OSError or None
        None: the lock is this process's until ``fd`` is closed. Else why not: an errno of
        :data:`NO_LOCKS` (the file system does not lock files), or another process holds it.
    """
    try:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt  # noqa: PLC0415 - exists on Windows only

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl  # noqa: PLC0415 - exists on POSIX only

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        return err
    return None
