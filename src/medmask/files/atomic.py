"""Files written whole or not at all: a temporary file beside the target, renamed over it.

Every file medmask writes (``.msk``, NIfTI, previews; archives have their own commit
protocol) goes through here, so a crash or a full disk never leaves a half-written or
empty file under the target's name, and every I/O error names the target.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputExistsError

__all__ = ["atomic_path", "check_writable", "mode_for", "write_atomic"]


def mode_for(target: str | os.PathLike[str]) -> int:
    """The permission bits a file written to ``target`` gets, as ``open()`` would give them.

    An existing file keeps its mode when it is replaced; a new one gets 0o666 less the
    process's umask (read from /proc where there is one, so no thread sees it changed).
    """
    try:
        return stat.S_IMODE(Path(target).stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:
        with Path("/proc/self/status").open(encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)  # no /proc: read it by setting it, and put it back
    os.umask(current)
    return current


_NAME_BYTES = 255  # a file name's most bytes (NAME_MAX on Linux, macOS; Windows' file systems)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, keep_suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``target`` to write to; renamed over ``target`` on success.

    ``keep_suffix`` ends the temporary name (nibabel picks the format by the name, e.g.
    ``.nii.gz``). On any error the temporary file is removed and an ``OSError`` names
    ``target``.
    """
    final = Path(target)
    suffix = f".tmp{keep_suffix}"
    room = _NAME_BYTES - len(suffix.encode()) - 10  # (mkstemp's 8 letters, the two dots)
    short = final.name.encode("utf-8", "surrogateescape")[:room].decode("utf-8", "ignore")
    try:  # (the temporary name fits where the target's does: a long name's start)
        handle, name = tempfile.mkstemp(prefix=f".{short}.", suffix=suffix, dir=final.parent or ".")
    except OSError as err:
        raise _naming(err, final) from err
    os.close(handle)
    temp = Path(name)
    try:
        yield temp
    except OSError as err:  # the writer's: named as the user knows the file when about it
        temp.unlink(missing_ok=True)
        if err.errno is not None and err.filename in (None, name, str(temp)):
            raise _naming(err, final) from err
        raise  # another file's (a source that is missing ...), or a reader's complaint
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    try:
        _fsync(temp)
        temp.chmod(mode_for(final))  # mkstemp made it 0600
        temp.replace(final)
    except OSError as err:
        temp.unlink(missing_ok=True)
        raise _naming(err, final) from err


def _naming(err: OSError, final: Path) -> OSError:
    """``err`` about ``final`` (not the temporary file): the path users know."""
    return OSError(err.errno, err.strerror or str(err), str(final))


def write_atomic(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` whole or not at all (see :func:`atomic_path`)."""
    with atomic_path(target) as temp:
        temp.write_bytes(data)


def check_writable(target: str | os.PathLike[str], overwrite: bool) -> None:
    """Refuse an existing ``target`` unless ``overwrite`` (before any work is done).

    Raises
    ------
    OutputExistsError
        ``target`` exists and ``overwrite`` is False.
    """
    if not overwrite and Path(target).exists():
        raise OutputExistsError(target)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
