"""The resume manifest: each finished case's sources and results, so a re-run skips it.

One JSON file per case, named by project ID, written atomically after the case's
outputs. A case is reused when the fingerprint of its name and files (relative path,
size, modification and change time and inode of every file, hashed) and of this medkit
version is unchanged; a changed case is scanned again. A run killed midway resumes from
the cases it finished; nothing is appended, so no row is duplicated.

The records hold the case's rows, with patient names: the manifest is kept in
``<out>/.manifest`` for ordinary runs, and de-identified runs use one only where told
(``--manifest-dir``, a private place).

A case's instance rows (``--instances``: one per file, ~450 bytes each as JSON, 4.5 GB
of manifest at 10^7 files, and ~2.5 us a file of the run's time to encode) are stored
as one text field: the rows as Python's ``marshal`` writes a list of tuples of text,
integers and None (no code runs when it is read, and nothing else is accepted back),
compressed by Zstandard with its content checksum, in base64 - ~80 bytes a file, ~1 us
to make (0.5 of it ``marshal``; Zstandard lets go of the GIL). ``marshal`` writes its
format 4 (stored beside the rows), which every Python since 3.4 reads and writes: a
Python upgrade keeps the manifest. A record of another format, a damaged one or rows of
other columns are not used: the case is read again. Records of earlier medkit versions
(rows as JSON lists) are read as before.
"""

from __future__ import annotations

import base64
import hashlib
import json
import marshal
import threading
from pathlib import Path
from typing import Any, Final

import zstandard

from ..outputs.atomic import write_atomic
from ..sources.cases import CaseResult, ReportEntry
from ..sources.instances import (
    INSTANCE_COLUMNS,
    MARSHAL_FORMAT,
    PRIVATE_COLUMNS,
    InstanceRows,
)
from ..sources.walk import WalkProblem, walk_case_files
from ..version import __version__

__all__ = ["MANIFEST_FORMAT", "Manifest"]

MANIFEST_FORMAT: Final = "medkit-dcm-manifest/3"
# 2: name, ctime and inode in the fingerprint; 3: hand-overs to pydicom by reason


def case_fingerprint(case_dir: Path, reading: str = "") -> str:
    """A hash of the case's name and every entry's relative path, size, mtime, ctime and
    inode (and of entries that are not read, their reason), and the version.

    The case name is in it, so a renamed case is scanned again rather than matched to the
    old name's results. ctime and inode catch a file replaced by one of the same size with
    its mtime kept (``cp -p``, ``rsync -a``): both change whenever a file is written or
    replaced, and reading them costs no more than the size. ``reading`` (the run's
    :meth:`Extras.signature <dcm_extractor.reading.extras.Extras.signature>`) makes a run that
    reads other columns scan the case again.
    """
    head = f"{MANIFEST_FORMAT}\x1f{__version__}\x1f{case_dir.name}\x1f{reading}"
    # surrogateescape: a name that is not UTF-8 hashes as its bytes (names.py)
    digest = hashlib.sha256(head.encode("utf-8", "surrogateescape"))
    for item in walk_case_files(case_dir):
        if isinstance(item, WalkProblem):
            relative = _relative(item.path, case_dir)
            digest.update(f"\x1e{relative}\x1f{item.reason}".encode("utf-8", "surrogateescape"))
            continue
        try:
            info = item.stat()
        except OSError as err:  # gone since the walk: this run will report it
            text = f"\x1e{_relative(item, case_dir)}\x1f{type(err).__name__}"
            digest.update(text.encode("utf-8", "surrogateescape"))
            continue
        fields = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        digest.update(
            f"\x1e{_relative(item, case_dir)}\x1f{fields}".encode("utf-8", "surrogateescape")
        )
    return digest.hexdigest()


def _relative(path: Path, case_dir: Path) -> str:
    try:
        return path.relative_to(case_dir).as_posix()
    except ValueError:
        return path.as_posix()


class Manifest:
    """Finished cases of earlier runs in ``folder``."""

    def __init__(self, folder: Path, *, private: bool = False) -> None:
        self.folder = folder
        self.private = private  # (records readable by their owner only: a de-identified run's)

    def _path(self, project_id: int) -> Path:
        return self.folder / f"P{project_id:06d}.json"

    def load(self, project_id: int, fingerprint: str) -> CaseResult | None:
        """The stored result when the case is unchanged, else None (unreadable -> None)."""
        path = self._path(project_id)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("fingerprint") != fingerprint:
            return None
        try:
            return _result_from(record["result"])
        except (KeyError, TypeError, ValueError):
            return None

    def store(self, project_id: int, fingerprint: str, result: CaseResult) -> None:
        """Record a finished case (after its outputs are written)."""
        record = {
            "format": MANIFEST_FORMAT,
            "fingerprint": fingerprint,
            "result": _result_to(result),
        }
        data = json.dumps(record, ensure_ascii=False).encode("utf-8")
        write_atomic(self._path(project_id), data, private=self.private)


def _result_to(result: CaseResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "rows": result.rows,
        "series": result.series,
        "instances": _instances_to(result.instances),
        "report": [vars(entry) for entry in result.report],
        "files": result.files,
        "images": result.images,
        "skipped": result.skipped,
        "handovers": result.handovers,
    }


def _result_from(data: dict[str, Any]) -> CaseResult:
    return CaseResult(
        name=str(data["name"]),
        rows=[dict(row) for row in data["rows"]],
        series=[dict(row) for row in data.get("series", [])],
        instances=_instances(data.get("instances")),
        report=[ReportEntry(**entry) for entry in data["report"]],
        files=int(data["files"]),
        images=int(data["images"]),
        skipped=int(data["skipped"]),
        handovers={str(k): int(v) for k, v in data["handovers"].items()},
    )


def _instances_to(rows: InstanceRows) -> dict[str, Any]:
    """A case's instance rows as stored (the module docstring): their columns' names,
    ``marshal``'s version and the rows, marshalled, compressed and in base64."""
    compressor = getattr(_PER_THREAD, "compressor", None)
    if compressor is None:  # (one per thread: python-zstandard's are not to be shared)
        compressor = _PER_THREAD.compressor = zstandard.ZstdCompressor(level=1, write_checksum=True)
    packed = compressor.compress(marshal.dumps(rows.rows, MARSHAL_FORMAT))
    return {
        "names": rows.names,
        "marshal": MARSHAL_FORMAT,
        "rows": base64.b64encode(packed).decode("ascii"),
    }


def _instances(stored: Any) -> InstanceRows:
    """A case's instance rows as stored: the names of their columns and the rows (packed,
    or as JSON lists by earlier versions). Rows stored under other names (another
    version's columns), by another ``marshal`` version, damaged, or holding anything but
    text, integers and None are not these rows: the case is read again (ValueError)."""
    if not stored:
        return InstanceRows()
    names = tuple(stored["names"])
    headers = names[len(INSTANCE_COLUMNS) - 1 + len(PRIVATE_COLUMNS) :]
    packed = stored["rows"]
    if isinstance(packed, str):
        rows = InstanceRows(headers, _unpacked(packed, stored.get("marshal")))
    else:  # (records of earlier versions: a JSON list per row)
        rows = InstanceRows(headers, [tuple(row) for row in packed])
    if rows.names != names or any(len(row) != len(names) for row in rows.rows):
        raise ValueError("instance rows of other columns")
    return rows


_PER_THREAD: Final = threading.local()
_ROW_VALUES: Final = frozenset({str, int, type(None)})  # (None: Rows of an unreadable file)
_INFLATE_MOST: Final = 1_000  # rows compress ~7x: a frame claiming more is not ours


def _unpacked(packed: str, version: Any) -> list[tuple[Any, ...]]:
    """The rows :func:`_instances_to` packed, checked to be a list of tuples of text,
    integers and None (ValueError for anything else)."""
    if version != MARSHAL_FORMAT:
        raise ValueError("instance rows in another marshal format")
    try:
        frame = base64.b64decode(packed, validate=True)
        if zstandard.frame_content_size(frame) > _INFLATE_MOST * len(frame):
            raise ValueError("a frame that claims more than its rows can hold")
        rows = marshal.loads(zstandard.ZstdDecompressor().decompress(frame))
    except (zstandard.ZstdError, EOFError, TypeError, ValueError) as err:
        raise ValueError(f"damaged instance rows: {err}") from err
    if type(rows) is not list or not all(type(row) is tuple for row in rows):
        raise ValueError("instance rows that are not rows")
    if not {type(value) for row in rows for value in row} <= _ROW_VALUES:
        raise ValueError("instance rows holding other values than text, integers and None")
    return rows
