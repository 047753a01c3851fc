"""One case folder -> its table rows and a report line for every file not counted.

A case gives one row per zip file in it (FileName = the zip's name) and one row for its
loose DICOM files (FileName = ``<case>.dir``) when any loose image is not already in one
of its zips. Every file and zip member is either counted as an image or reported with a
reason, so the summary adds up to every file found.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ..reading.extras import Extras
from ..reading.facts import ImageFacts, Skip
from ..reading.fastheader import (
    HANDOVER_BYTES,
    HEAD_BYTES,
    FastReader,
    FastReaderBug,
    read_at,
    read_head,
)
from ..reading.fullparse import parse_failure
from .instances import NO_ROW_REASONS, InstanceRows
from .names import readable, sort_key
from .rows import RowProblem, build_row, fill_from, missing_uids
from .series import SeriesTally
from .walk import WalkProblem, walk_case_files
from .zipread import (
    DEFAULT_MAX_MEMBER_BYTES,
    MemberReadError,
    ZipMember,
    ZipProblem,
    iter_zip_members,
)

__all__ = [
    "NOTE_REASONS",
    "CaseResult",
    "ReportEntry",
    "iter_case_dirs",
    "scan_case",
    "scan_root_files",
]


# Report lines that are notes on a row or on a counted image: no file is left out by them.
NOTE_REASONS: Final = frozenset(
    {"conflict", "age_read", "bad_age", "missing_uid", "no_images", "values_from_other_objects",
     "undecodable", "charset", "case_files_renamed"}
)  # fmt: skip


@dataclass(frozen=True)
class ReportEntry:
    """A file (or zip member, ``path!member``) that was not counted, or a row problem.

    ``detail`` never holds patient data; identifying specifics (the conflicting IDs, the
    earlier copy's path) go to ``private``. ``anonymous_location`` names the file by its
    position in the case (``file00004!member00002``) for de-identified reports.
    """

    case: str
    location: str
    reason: str
    detail: str
    private: str = ""
    anonymous_location: str = ""

    @property
    def is_note(self) -> bool:
        """A note on a row or a counted image (:data:`NOTE_REASONS`), not a file left out."""
        return self.reason in NOTE_REASONS

    def to_dict(self, labels: Mapping[str, str] | None = None) -> dict[str, str]:
        """CSV-ready form; with ``labels`` (case -> pseudonym), free of names and paths."""
        if labels is None:
            detail = f"{self.detail}: {self.private}" if self.private else self.detail
            return {
                "case": self.case,
                "location": self.location,
                "reason": self.reason,
                "detail": detail,
            }
        label = labels.get(self.case, "data-root")
        location = f"{label}/{self.anonymous_location}" if self.anonymous_location else label
        return {"case": label, "location": location, "reason": self.reason, "detail": self.detail}


@dataclass
class CaseResult:
    """Rows and report of one case, with the counts the summary adds up."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    report: list[ReportEntry] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)  # with Extras(series=True)
    instances: InstanceRows = field(default_factory=InstanceRows)  # with Extras(instances=True)
    files: int = 0  # files and zip members found
    images: int = 0  # counted as images
    skipped: int = 0  # reported, not counted (junk, duplicates, problems)
    # files the fast reader left to pydicom's full parse, by reason (HANDOVER_REASONS)
    handovers: dict[str, int] = field(default_factory=dict)

    @property
    def handed_over(self) -> int:
        """Files the fast reader left to pydicom's full parse."""
        return sum(self.handovers.values())


def iter_case_dirs(root: str | os.PathLike[str]) -> list[Path]:
    """The immediate sub-folders of ``root``, sorted by name (hidden ones excluded), so
    that new cases are numbered in the same order in any locale (:func:`.names.sort_key`:
    under ``LANG=zh_CN.GBK`` Python reads a UTF-8 name as other text)."""
    base = Path(root)
    found = (p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    return sorted(found, key=_name_key)


def _name_key(path: Path) -> str:
    return sort_key(path.name)


def scan_root_files(root: Path) -> CaseResult:
    """What under the data root is not a case, counted and reported (a result with no
    name and no rows): files directly under it, and hidden folders (``.Trash``, ``.git``:
    names starting with a dot) with every file in them."""
    result = CaseResult("")
    detail = "not a case: a file directly under the data root (zips: --move-top-level-zips)"
    for index, path in enumerate(
        sorted((p for p in root.iterdir() if not p.is_dir()), key=_name_key)
    ):
        _skip(result, _Place(readable(path.name), f"root-file{index:05d}"), "not_in_case", detail)
        result.files += 1
    hidden = sorted(
        (p for p in root.iterdir() if p.is_dir() and p.name.startswith(".")), key=_name_key
    )
    for index, folder in enumerate(hidden):
        count = sum(1 for _ in walk_case_files(folder))
        why = f"a hidden folder (its name starts with a dot): its {count} files were not scanned"
        place = _Place(readable(folder.name), f"root-folder{index:05d}")
        _skip(result, place, "hidden_folder", why)
        result.files += count
        result.skipped += count - 1  # one line for the folder, every file in it skipped
    return result


def scan_case(
    case_dir: str | os.PathLike[str],
    data_root: str | os.PathLike[str] | None = None,
    *,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    extras: Extras | None = None,
    reader: FastReader | None = None,
) -> CaseResult:
    """Read every file of one case folder into rows and report entries.

    Parameters
    ----------
    case_dir : str or os.PathLike
        The case folder.
    data_root : str or os.PathLike, optional
        Locations in the report are relative to it (default: the case's parent).
    max_member_bytes : int
        Zip members larger than this are reported, not read.
    extras : Extras, optional
        What to read beyond the fixed columns: ``--columns`` values join the rows, and
        with ``series`` the result holds the case's series rows.
    reader : FastReader, optional
        The header reader, with what it remembers from earlier files (the cases of one
        batch share one: a series layout learnt in one case serves the next); a fresh
        one by default. Results never depend on it, only speed.
    """
    case = Path(case_dir)
    root = Path(data_root) if data_root is not None else case.parent
    result = CaseResult(readable(case.name))  # names that are not UTF-8: names.py
    reading = _Reading(extras or Extras(), reader or FastReader())
    if reading.instances:
        result.instances = InstanceRows(reading.headers)
    found = list(walk_case_files(case))
    number = {  # names-free handle of every entry
        (item.path if isinstance(item, WalkProblem) else item): f"file{index:05d}"
        for index, item in enumerate(found)
    }
    for problem in (item for item in found if isinstance(item, WalkProblem)):
        result.files += 1
        place = _Place(_relative(problem.path, root), number[problem.path])
        _skip(result, place, problem.reason, problem.detail)
    paths = [item for item in found if not isinstance(item, WalkProblem)]
    zips = [p for p in paths if p.suffix.lower() == ".zip"]
    loose = [p for p in paths if p.suffix.lower() != ".zip"]
    in_zips: dict[tuple[str, str], str] = {}  # (SOP, series UID) -> where it was counted

    for zip_path in zips:
        where = _Place(_relative(zip_path, root), number[zip_path])
        _scan_zip(result, zip_path, where, in_zips, max_member_bytes, reading)

    loose_source = f"{readable(case.name)}.dir"
    loose_images, loose_header_only = _scan_loose(
        result, loose, root, number, in_zips, reading, loose_source
    )
    loose_place = _Place(_relative(case, root), "loose files")
    _add_row(result, loose_source, loose_images, loose_place, reading, loose_header_only)
    if reading.tally is not None:
        result.series = reading.tally.rows()
    return result


def _scan_loose(
    result: CaseResult,
    loose: list[Path],
    root: Path,
    number: dict[Path, str],
    in_zips: dict[tuple[str, str], str],
    reading: _Reading,
    loose_source: str,
) -> tuple[list[ImageFacts], list[ImageFacts]]:
    """The case's loose files (the row ``loose_source``): counted or reported; its images
    and header-only objects."""
    loose_images: list[ImageFacts] = []
    loose_header_only: list[ImageFacts] = []
    seen_loose: dict[tuple[str, str], str] = {}
    for path in loose:
        result.files += 1
        place = _Place(_relative(path, root), number[path])
        source = _LooseFile(path, reading)
        judged = _judge(result, place, source, OSError, _cannot_read, loose_header_only)
        if judged is None:
            continue
        verdict, uid = judged
        earlier = in_zips.get(uid) or seen_loose.get(uid)
        if earlier is not None:
            _skip(result, place, "duplicate", _duplicate_detail(verdict), earlier)
            _instance(result, place, source, verdict, "duplicate")
            continue
        _instance(result, place, source, verdict, "")
        seen_loose[uid] = place.path
        loose_images.append(verdict)
        reading.count(verdict, loose_source)
        _note_undecodable(result, place, verdict)
    return loose_images, loose_header_only


class _Reading:
    """What the case's images give beyond the fixed columns, and the series they form."""

    def __init__(self, extras: Extras, reader: FastReader) -> None:
        self.reader = reader
        self.extras = extras if extras else None
        self.headers = extras.headers
        self.tally = SeriesTally(extras.headers) if extras.series else None
        self.instances = extras.instances
        # what the tally holds need not be decoded again (FastReader.inspect's ``known``)
        self.known = self.tally.settled if self.tally is not None else None

    def count(self, image: ImageFacts, source: str) -> None:
        """An image counted in ``source``: into the series tally, in reading order."""
        if self.tally is not None:
            self.tally.add(image, source)


def _scan_zip(
    result: CaseResult,
    zip_path: Path,
    where: _Place,
    in_zips: dict[tuple[str, str], str],
    max_member_bytes: int,
    reading: _Reading,
) -> None:
    """One zip of the case: its members counted or reported, its row added."""
    images: list[ImageFacts] = []
    header_only: list[ImageFacts] = []  # readable DICOM objects that are not images
    members = iter_zip_members(zip_path, max_member_bytes=max_member_bytes, head_bytes=HEAD_BYTES)
    seen = 0
    for index, item in enumerate(members):
        seen += 1
        result.files += 1
        if isinstance(item, ZipProblem) and item.name is None:
            _skip(result, where, item.reason, item.detail)
            continue
        place = where.member(item.name or "", index)
        if isinstance(item, ZipProblem):
            _skip(result, place, item.reason, item.detail)
            continue
        member = _Member(item, reading)
        judged = _judge(result, place, member, MemberReadError, _corrupt_member, header_only)
        if judged is None:
            continue
        verdict, uid = judged
        earlier = in_zips.get(uid)
        if earlier is not None:  # the same image in an earlier zip (a copied zip: "CT (1).zip")
            _skip(result, place, "duplicate", _duplicate_detail(verdict), earlier)
            _instance(result, place, member, verdict, "duplicate")
            continue
        _instance(result, place, member, verdict, "")
        images.append(verdict)
        reading.count(verdict, readable(zip_path.name))
        in_zips[uid] = place.path
        _note_undecodable(result, place, verdict)
    if not seen:  # the zip itself is then the file accounted for
        result.files += 1
        _skip(result, where, "empty_zip", "a zip without files (empty, or folders only)")
    _add_row(result, readable(zip_path.name), images, where, reading, header_only)


class _LooseFile:
    """A loose file to judge: its verdict from its first bytes, its content on demand."""

    def __init__(self, path: Path, reading: _Reading) -> None:
        self.path, self.reading = path, reading
        self.head, self.size = b"", 0

    def inspect(self) -> tuple[ImageFacts | Skip, str | None]:
        self.head, self.size = read_head(self.path)
        reading = self.reading
        return reading.reader.inspect(
            self.head, self.size, self.prefix, reading.extras, reading.known, read_at(self.path)
        )

    def prefix(self) -> bytes:
        return _prefix(self.path)

    def known_size(self) -> int:
        """The file's size when reading it failed before (0 if it cannot be had)."""
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


class _Member:
    """A zip member to judge, as :class:`_LooseFile`."""

    def __init__(self, item: ZipMember, reading: _Reading) -> None:
        self.item, self.reading = item, reading
        self.head, self.size = item.head, item.size

    def inspect(self) -> tuple[ImageFacts | Skip, str | None]:
        item, reading = self.item, self.reading
        return reading.reader.inspect(
            item.head, item.size, item.read_prefix, reading.extras, reading.known, item.reader()
        )

    def prefix(self) -> bytes:
        return self.item.read_prefix()

    def known_size(self) -> int:
        return self.item.size


def _judge(
    result: CaseResult,
    place: _Place,
    source: _LooseFile | _Member,
    read_error: type[Exception],
    reported: Callable[[Exception], tuple[str, str, str]],
    header_only: list[ImageFacts],
) -> tuple[ImageFacts, tuple[str, str]] | None:
    """One file or member read and judged: an image and its identity (:func:`_identity`),
    or None when it was reported (not DICOM, damaged, not an image: its header values kept
    in ``header_only``). ``read_error`` is what reading it raises, ``reported`` the report
    line (reason, detail, private) for it."""
    try:
        verdict, handed_over = source.inspect()
    except read_error as err:
        _skip(result, place, *reported(err))
        _instance(result, place, source, None, reported(err)[0])
        return None
    except FastReaderBug:
        raise  # strict mode: a bug of the fast reader fails the case, loudly
    except Exception as err:
        _skip(result, place, "unreadable", parse_failure(err))
        _instance(result, place, source, None, "unreadable")
        return None
    if handed_over is not None:
        result.handovers[handed_over] = result.handovers.get(handed_over, 0) + 1
    if isinstance(verdict, Skip):
        _skip(result, place, verdict.reason, verdict.detail)
        _instance(result, place, source, verdict.facts, verdict.reason)
        if verdict.facts is not None:
            header_only.append(verdict.facts)
        return None
    try:
        return verdict, _identity(verdict, source.head, source.size, source.prefix)
    except read_error as err:
        _skip(result, place, *reported(err))
        _instance(result, place, source, verdict, reported(err)[0])
        return None


def _cannot_read(err: Exception) -> tuple[str, str, str]:
    return "unreadable", f"cannot be read ({type(err).__name__})", str(err)


def _corrupt_member(err: Exception) -> tuple[str, str, str]:
    return "corrupt_member", str(err), ""  # pydicom needed the whole member: it is damaged


@dataclass(frozen=True)
class _Place:
    """Where a file is: its real path, and a handle without names for de-identified
    reports; for a zip member, also the zip's and the member's apart."""

    path: str
    anonymous: str
    zip_member: tuple[str, str] | None = None  # (the zip's path, the member's name)
    anonymous_member: tuple[str, str] | None = None

    def member(self, name: str, index: int) -> _Place:
        handle = f"member{index:05d}"
        return _Place(
            f"{self.path}!{name}", f"{self.anonymous}!{handle}",
            (self.path, name), (self.anonymous, handle),
        )  # fmt: skip

    @property
    def where(self) -> tuple[str, str]:
        """(file path, zip member or "")."""
        return self.zip_member or (self.path, "")

    @property
    def anonymous_where(self) -> tuple[str, str]:
        return self.anonymous_member or (self.anonymous, "")


def _instance(
    result: CaseResult,
    place: _Place,
    source: _LooseFile | _Member,
    facts: ImageFacts | None,
    reason: str,
) -> None:
    """The object's row of the instance table, when one is asked for (instances.py)."""
    reading = source.reading
    if not reading.instances or reason in NO_ROW_REASONS:
        return
    size = source.size or source.known_size()
    result.instances.add(place.where, place.anonymous_where, size, source.head, facts, reason)


def _add_row(
    result: CaseResult,
    file_name: str,
    images: list[ImageFacts],
    where: _Place,
    reading: _Reading,
    header_only: list[ImageFacts] | None = None,
) -> None:
    """The source's row: from its images, values they lack from its other DICOM objects;
    a source with no image but a readable DICOM header still gets a row (ImageCount 0)."""
    others = header_only or []
    if not images and not others:
        return
    row, problems = build_row(file_name, images or others, reading.headers)
    if not images:
        row.update(ImageCount=0, SeriesCount=0)
        problems.append(
            RowProblem(
                "no_images",
                f"no complete image: the row's values come from {len(others)} DICOM "
                "objects that are not counted (header-only, cut or without image size)",
            )
        )
    else:
        problems.extend(missing_uids(images))
        filled = fill_from(row, others)
        if filled:
            problems.append(
                RowProblem(
                    "values_from_other_objects",
                    f"{', '.join(filled)} not in the images: taken from a DICOM object "
                    "without pixel data in the same source",
                )
            )
    result.rows.append(row)
    result.images += len(images)
    for problem in problems:
        entry = ReportEntry(
            result.name,
            where.path,
            problem.reason,
            problem.detail,
            problem.private,
            where.anonymous,
        )
        result.report.append(entry)


def _identity(
    facts: ImageFacts, head: bytes, size: int, prefix: Callable[[], bytes]
) -> tuple[str, str]:
    """What makes two files one image: the SOPInstanceUID within its series; without a
    SOPInstanceUID, the file's content (:func:`_content`).

    A UID alone is not enough: broken exporters reuse SOPInstanceUIDs across series.
    """
    return facts.sop_instance_uid or _content(head, size, prefix), facts.series


def _content(head: bytes, size: int, prefix: Callable[[], bytes]) -> str:
    """A fingerprint of a file's content: SHA-256 of its size and its first
    :data:`~.fastheader.HANDOVER_BYTES` (the whole file, for any file smaller than that:
    a read within the bound every file has)."""
    digest = hashlib.sha256(size.to_bytes(8, "little"))
    digest.update(head if len(head) >= size else prefix())
    return f"content:{digest.hexdigest()}"


def _duplicate_detail(facts: ImageFacts) -> str:
    if facts.sop_instance_uid:
        return "same image (SOPInstanceUID and series) as an earlier copy"
    return "same content as an earlier copy (no SOPInstanceUID)"


def _skip(result: CaseResult, place: _Place, reason: str, detail: str, private: str = "") -> None:
    result.skipped += 1
    result.report.append(
        ReportEntry(result.name, place.path, reason, detail, private, place.anonymous)
    )


def _note_undecodable(result: CaseResult, place: _Place, facts: ImageFacts) -> None:
    for keyword in facts.undecodable:
        detail = f"{keyword} could not be decoded with the file's SpecificCharacterSet"
        entry = ReportEntry(result.name, place.path, "undecodable", detail, "", place.anonymous)
        result.report.append(entry)
    for note in facts.charset_notes:  # "PatientName: no SpecificCharacterSet ...: read as GB18030"
        entry = ReportEntry(result.name, place.path, "charset", note, "", place.anonymous)
        result.report.append(entry)


def _prefix(path: Path) -> bytes:
    """The first bytes of a file pydicom's parse is given (fastheader.HANDOVER_BYTES)."""
    return read_head(path, HANDOVER_BYTES)[0]


def _relative(path: Path, root: Path) -> str:
    """The path below ``root`` as text for the outputs
    (:func:`~dcm_extractor.sources.names.readable`)."""
    try:
        return readable(path.relative_to(root).as_posix())
    except ValueError:
        return readable(path.as_posix())
