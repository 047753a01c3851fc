"""The instance table: one row per DICOM object of a case, counted as an image or not.

Every file and zip member the scan judges gets a row - an image counted, a copy of one
(``duplicate``), or a DICOM object not counted, with the reason code
``extraction_report.csv`` uses (``non_image``, ``no_pixel_data``, ``truncated``,
``dicomdir``, ``unreadable`` ...). Files that are not DICOM at all (``not_dicom``,
``empty``) and problems of folders and zips have no row: they are in the report only.

Column names are DICOM keywords where DICOM has one, so that a local index joins IDC's
(idc-index) by StudyInstanceUID and SeriesInstanceUID. IDs, UIDs, dates and times are
text, as read; ``FileSize``, ``Rows``, ``Columns`` and ``NumberOfFrames`` are numbers.
``ContentFingerprint`` is the XXH3-128 hash (hex) of the file's first 16 KiB (the bytes the
fast reader reads anyway; the whole file when it is smaller) with the file's size as its
seed: equal for copies of a file, without reading whole images. XXH3 rather than SHA-256:
it is a fingerprint for finding copies, not a seal against forgery, and SHA-256 of 16 KiB
cost ~10 us a file, more than the rest of the row (``benchmarks/scale_run.py
--instances``); XXH3-128 costs 0.5 us, and 128 bits make a chance collision among 10^9
files about 10^-21.
"""

from __future__ import annotations

import marshal
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, Final

from xxhash import xxh3_128_hexdigest

from ..reading.extras import TRANSFER_SYNTAX
from ..reading.facts import ImageFacts

__all__ = [
    "INSTANCE_COLUMNS",
    "INSTANCE_INTEGERS",
    "MARSHAL_FORMAT",
    "NO_ROW_REASONS",
    "PRIVATE_COLUMNS",
    "InstanceRows",
]

INSTANCE_COLUMNS: Final = [
    "ProjectID",
    "FilePath",
    "ZipMember",
    "FileSize",
    "ContentFingerprint",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "AcquisitionDate",
    "AcquisitionTime",
    "TransferSyntaxUID",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "IsImage",
    "Reason",
]
INSTANCE_INTEGERS: Final = frozenset({"ProjectID", "FileSize", "Rows", "Columns", "NumberOfFrames"})
NO_ROW_REASONS: Final = frozenset({"not_dicom", "empty"})  # not DICOM objects: report only
# Held with each row for the privacy policy (the paths by position, the patient whose date
# shift applies), never written as columns.
PRIVATE_COLUMNS: Final = ("_AnonymousFile", "_AnonymousMember", "_PatientID")
MARSHAL_FORMAT: Final = 4  # rows packed by marshal (InstanceRows.__reduce__, the manifest)


# The keys an object's row takes from its header values (ImageFacts.extra and .values), and
# how the row's tuple is laid out: the values of one source side by side, so that one
# itemgetter call takes them all.
_FROM_EXTRA: Final = (
    "SOPClassUID",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "AcquisitionDate",
    "AcquisitionTime",
    TRANSFER_SYNTAX,
)
_FROM_VALUES: Final = ("StudyInstanceUID", "SeriesInstanceUID", "Modality", "PatientID")
_LAYOUT: Final = (
    "FilePath",
    "ZipMember",
    "FileSize",
    "ContentFingerprint",
    "SOPInstanceUID",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "IsImage",
    "Reason",
    *_FROM_EXTRA,
    *_FROM_VALUES[:-1],
    "_PatientID",
    "_AnonymousFile",
    "_AnonymousMember",
)
_take_extra: Final = itemgetter(*_FROM_EXTRA)
_take_values: Final = itemgetter(*_FROM_VALUES)
_NO_EXTRA: Final = ("",) * len(_FROM_EXTRA)
_NO_VALUES: Final = ("",) * len(_FROM_VALUES)


class InstanceRows:
    """A case's instance rows, one tuple per object, in the order of :attr:`names`.

    Tuples rather than dicts: a run of 10^7 objects builds 10^7 of them, and the writers
    take the rows column by column (:meth:`columns`), so no row is looked up by key.
    ``ProjectID`` is not held (the case's, given when the rows are written); the
    :data:`PRIVATE_COLUMNS` are for the privacy policy, never a table's columns. The
    order of :attr:`names` is not the table's (the writers place columns by name).

    Parameters
    ----------
    headers
        The ``--columns`` headers, after the standard columns (those named like one are
        that column).
    rows
        Rows already made (a stored manifest's), in the order of :attr:`names`.
    """

    __slots__ = ("headers", "names", "rows")

    def __init__(
        self, headers: Sequence[str] = (), rows: list[tuple[Any, ...]] | None = None
    ) -> None:
        self.headers = tuple(h for h in dict.fromkeys(headers) if h not in INSTANCE_COLUMNS)
        self.names: tuple[str, ...] = (*_LAYOUT, *self.headers)
        self.rows: list[tuple[Any, ...]] = rows if rows is not None else []

    def __len__(self) -> int:
        return len(self.rows)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InstanceRows):
            return NotImplemented
        return self.names == other.names and self.rows == other.rows

    __hash__ = None  # type: ignore[assignment]  # (mutable)

    def __repr__(self) -> str:
        return f"InstanceRows({len(self.rows)} rows, headers={self.headers!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (from worker processes and Dask workers) as one ``marshal`` string of
        the rows: half pickle's time to make for tuples of text and integers (0.8 against
        1.7 us a row, this machine), the same to read. In ``marshal``'s format 4, which
        every Python since 3.4 reads and writes (a Dask worker may run another Python)."""
        return _unmarshalled, (self.headers, marshal.dumps(self.rows, MARSHAL_FORMAT))

    def add(
        self,
        where: tuple[str, str],
        anonymous: tuple[str, str],
        size: int,
        head: bytes,
        facts: ImageFacts | None,
        reason: str,
    ) -> None:
        """One object's row.

        ``where`` is (file path below the data root, zip member or ""), ``anonymous`` the
        same without names (``file00004``, ``member00002``: what de-identified tables
        show); ``head`` the object's first bytes as read (what ContentFingerprint hashes:
        the module docstring); ``facts`` its header values (None when it could not be
        read); ``reason`` "" for an image counted, else why not.
        """
        if facts is None:
            sop, rows, columns, frames = "", None, None, None
            extra, values = _NO_EXTRA, _NO_VALUES
        else:
            sop, rows, columns, frames = (
                facts.sop_instance_uid,
                facts.rows,
                facts.columns,
                facts.frames,
            )
            try:
                extra = _take_extra(facts.extra)
            except KeyError:  # (a header read without the instance attributes)
                extra = tuple(facts.extra.get(key, "") for key in _FROM_EXTRA)
            try:
                values = _take_values(facts.values)
            except KeyError:
                values = tuple(facts.values.get(key, "") for key in _FROM_VALUES)
        row = (
            *where,
            size,
            xxh3_128_hexdigest(head, size),  # ContentFingerprint (module docstring)
            sop,
            rows,
            columns,
            frames,
            "no" if reason else "yes",
            reason,
            *extra,
            *values,
            *anonymous,
        )
        if self.headers:
            get = (facts.extra if facts is not None else {}).get
            row += tuple(get(header, "") for header in self.headers)
        self.rows.append(row)

    def columns(self, project_id: int | None = None) -> dict[str, Sequence[Any]]:
        """The rows column by column (``ProjectID`` first, ``project_id`` in every row),
        the private columns included."""
        count = len(self.rows)
        if count:
            transposed = zip(*self.rows, strict=True)
            by_name: dict[str, Sequence[Any]] = dict(zip(self.names, transposed, strict=True))
        else:
            by_name = {name: () for name in self.names}
        return {"ProjectID": [project_id] * count, **by_name}


def _unmarshalled(headers: tuple[str, ...], rows: bytes) -> InstanceRows:
    """:meth:`InstanceRows.__reduce__`'s rows back (from our own processes only: the
    manifest on disk checks what it reads, ``runner/manifest.py``)."""
    return InstanceRows(headers, marshal.loads(rows))
