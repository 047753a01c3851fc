"""Files written whole or not at all: a temporary sibling, fsynced, renamed over the target.

Small files whose rows are in memory anyway (a case's own tables, the manifest's records)
are made in memory first (``AtomicFile(path, in_memory=True)``, :func:`write_atomic`):
when the path already holds exactly those bytes (a rerun's unchanged cases) nothing is
written. A rerun over 5,000 unchanged cases spent most of its time creating, fsyncing
and renaming files that came out the same (~1.5 ms a file).

The one place dcm_extractor writes files from (tables, reports, the ID map, manifests,
provenance): a crash or a full disk never leaves a half-written file under its name.

Permissions are those ``open()`` gives: a new file gets 0o666 less the process's umask
(the kernel applies it when the temporary file is made), a file replaced keeps its mode.
(``tempfile.mkstemp`` would make every output 0o600: unreadable for the rest of a group
that shares an output folder, unlike the original extractor's files.) A ``private`` file
- what a de-identified run keeps apart because it names the patients: the project ID
map, the resume manifest - is 0o600 whatever the umask or the mode of the file it
replaces, as the pseudonym key is.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Concatenate, ParamSpec, Self, TypeVar

__all__ = [
    "AtomicFile",
    "atomic_path",
    "fitting_name",
    "name_max",
    "names_its_file",
    "write_atomic",
]


_P = ParamSpec("_P")
_R = TypeVar("_R")
_F = TypeVar("_F", bound="AtomicFile")


def names_its_file(
    method: Callable[Concatenate[_F, _P], _R],
) -> Callable[Concatenate[_F, _P], _R]:
    """A writing method of an :class:`AtomicFile` whose errors name the file: a write
    refused by the system as pyarrow or the csv module pass it on says no file ("[Errno
    28] No space left on device"); the user is told which output it was."""

    @functools.wraps(method)
    def writing(self: _F, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except OSError as err:
            if err.filename is None and err.errno is not None:
                raise _naming(err, self.path) from err
            raise

    return writing


class AtomicFile:
    """A file written into a temporary sibling, fsynced and renamed over ``path`` at commit.

    As a context manager it commits on success and discards on an exception. With
    ``in_memory`` the bytes are held until :meth:`commit`, and nothing is written when
    ``path`` already holds them.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, in_memory: bool = False, private: bool = False
    ) -> None:
        self.path = Path(path)
        self.private = private
        _make_folder(self.path.parent)
        self._temp: Path | None = None
        self._file: IO[bytes]
        if in_memory:
            self._file = io.BytesIO()
        else:
            self._file = os.fdopen(self._open_sibling(), "wb")
        self._text: io.TextIOWrapper | None = None

    def _open_sibling(self) -> int:
        """The temporary file, made (:attr:`_temp`), as a descriptor open for writing."""
        try:
            handle, self._temp = _sibling(self.path, 0o600 if self.private else 0o666)
        except OSError as err:
            raise _naming(err, self.path) from err
        return handle

    @names_its_file
    def write_bytes(self, data: bytes) -> None:
        """Append ``data`` to the file."""
        self._file.write(data)

    @property
    def binary(self) -> IO[bytes]:
        """The temporary file, for writers that take a file object."""
        return self._file

    def _text_file(self, excel: bool) -> io.TextIOWrapper:
        """A text layer over the file: UTF-8, with a BOM for Excel."""
        encoding = "utf-8-sig" if excel else "utf-8"
        self._text = io.TextIOWrapper(self._file, encoding=encoding, newline="")
        return self._text

    def _finish(self) -> None:
        """Write what ends the file (subclasses)."""

    def commit(self) -> None:
        """Finish the file and move it into place (fsynced first); if that fails, the
        temporary file is removed and ``path`` keeps what it had."""
        try:
            self._finish()
            if self._text is not None:
                self._text.flush()
            self._file.flush()
            if isinstance(self._file, io.BytesIO):
                data = self._file.getvalue()
                if _holds(self.path, data):
                    self._close()
                    if self.private:  # (an earlier version's file, as readable as any)
                        _restrict(self.path)
                    return
                self._close()
                self._file = os.fdopen(self._open_sibling(), "wb")
                self._file.write(data)
                self._file.flush()
            os.fsync(self._file.fileno())
            if not self.private:  # (a private file stays 0o600 whatever it replaces)
                _keep_mode(self._file.fileno(), self.path)
            self._close()
            assert self._temp is not None
            self._temp.replace(self.path)
        except OSError as err:
            self.discard()
            raise _naming(err, self.path) from err
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Drop the temporary file; ``path`` keeps what it had. Never raises for the file
        (it is thrown away: a full disk refusing the last of its bytes as it is closed is
        no error; the caller's error is the one to say)."""
        text, self._text = self._text, None
        if text is not None:
            with contextlib.suppress(Exception):
                text.detach()
        with contextlib.suppress(OSError):  # (closed even when the flush before fails)
            self._file.close()
        if self._temp is not None:
            with contextlib.suppress(OSError):
                self._temp.unlink(missing_ok=True)

    def _close(self) -> None:
        text, self._text = self._text, None
        if text is not None:
            text.detach()  # the binary file is closed below, once
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary sibling of ``path`` for a writer that takes a path (DuckDB's COPY):
    fsynced and moved over ``path`` when the block ends, removed if it raises."""
    target = Path(path)
    _make_folder(target.parent)
    try:
        handle, temp = _sibling(target)
    except OSError as err:
        raise _naming(err, target) from err
    created = stat.S_IMODE(os.fstat(handle).st_mode)  # (0o666 less the umask)
    os.close(handle)
    try:
        yield temp
    except BaseException:  # (the writer's error, as it is)
        temp.unlink(missing_ok=True)
        raise
    try:
        with temp.open("rb+") as written:
            os.fsync(written.fileno())
            os.fchmod(written.fileno(), created)  # (whatever the writer made of it)
            _keep_mode(written.fileno(), target)
        temp.replace(target)
    except OSError as err:
        temp.unlink(missing_ok=True)
        raise _naming(err, target) from err


def _sibling(path: Path, mode: int = 0o666) -> tuple[int, Path]:
    """A new, empty temporary file beside ``path`` (``.<name>.<random>.tmp``, the name cut
    to what the folder allows), open for writing, made with ``mode`` for the kernel to
    take the umask from."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    most = name_max(path.parent)
    for _ in range(100):
        random = secrets.token_hex(4)
        name = fitting_name(path.name, most - len(f"..{random}.tmp"))
        temp = path.with_name(f".{name}.{random}.tmp")
        try:
            return os.open(temp, flags, mode), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary name for {path.name}")


def name_max(folder: Path) -> int:
    """The longest file name ``folder``'s file system takes, in bytes (255 on ext4, XFS,
    Btrfs, APFS; 143 on eCryptfs); 255 where it cannot be asked."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):
        return 255


def fitting_name(name: str, room: int) -> str:
    """``name`` cut, at a character, to at most ``room`` bytes as the file system stores
    it (UTF-8: a Chinese character takes 3)."""
    cut = name[: max(room, 0)]  # (a character takes at least a byte)
    while len(os.fsencode(cut)) > room:
        cut = cut[:-1]
    return cut


def _make_folder(folder: Path) -> None:
    """``folder`` and its parents made where missing; an error naming the one in the way."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:  # a file where the folder would be
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)) from err
    except OSError as err:
        raise _naming(err, folder) from err


def _naming(err: OSError, target: Path) -> OSError:
    """``err`` about ``target`` (users know it, not the temporary file's name)."""
    if err.errno is None:
        return err
    return type(err)(err.errno, err.strerror, str(target))


def _keep_mode(handle: int, target: Path) -> None:
    """Give the open temporary file the mode of the file it replaces, if there is one."""
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return  # a new file: the mode it was made with
    os.fchmod(handle, mode)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all (nothing when it holds them already);
    ``private``: readable by its owner only (the module docstring)."""
    with AtomicFile(path, in_memory=True, private=private) as out:
        out.write_bytes(data)


def _restrict(path: Path) -> None:
    """``path`` made readable and writable by its owner only (a private file)."""
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
    except OSError as err:
        raise _naming(err, path) from err


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a regular file (not a link) of exactly ``data``."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size != len(data):
            return False
        with path.open("rb") as existing:
            return existing.read(len(data) + 1) == data
    except OSError:  # none there, or unreadable: it is written
        return False
