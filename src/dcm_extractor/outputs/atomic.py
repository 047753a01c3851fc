"""Files written whole or not at all: a temporary sibling, fsynced, renamed over the target.

The one place dcm_extractor writes files from (tables, reports, the ID map, manifests,
provenance): a crash or a full disk never leaves a half-written file under its name.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = ["AtomicFile", "atomic_path", "write_atomic"]


class AtomicFile:
    """A file written into a temporary sibling, fsynced and renamed over ``path`` at commit.

    As a context manager it commits on success and discards on an exception.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        self._temp = Path(temp)
        self._file: IO[bytes] = os.fdopen(handle, "wb")
        self._text: io.TextIOWrapper | None = None

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
            os.fsync(self._file.fileno())
            self._close()
            self._temp.replace(self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Drop the temporary file; ``path`` keeps what it had."""
        try:
            self._close()
        finally:
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
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temp = Path(name)
    try:
        yield temp
        with temp.open("rb+") as written:
            os.fsync(written.fileno())
        temp.replace(target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all."""
    with AtomicFile(path) as out:
        out.write_bytes(data)
