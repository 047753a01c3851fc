"""One run per output folder: an exclusive lock on ``<out>/.dcm-extract.lock``.

Two runs into one ``--out`` would both hand out project IDs from 1 and overwrite each
other's tables and ID map (the last writer wins). The lock is an OS file lock (flock):
it goes away with the process that held it, even after ``kill -9``, so there is nothing
stale to clean up. The file names its holder (process ID, host, start time; no paths or
names) so the refused run can say who is writing.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from .errors import OutputBusyError

__all__ = ["LOCK_NAME", "output_lock"]

LOCK_NAME: Final = ".dcm-extract.lock"


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock for the block.

    Raises
    ------
    OutputBusyError
        Another process holds it; the message names that process.
    """
    path = out / LOCK_NAME
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 512, 0).decode("utf-8", "replace").strip()
            raise OutputBusyError(
                f"another run is writing into {out} ({holder or 'holder unknown'}); "
                "wait for it, or give this run another --out"
            ) from None
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        note = f"process {os.getpid()} on {socket.gethostname()}, started {started}\n"
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, note.encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
