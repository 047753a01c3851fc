"""One case folder -> its table rows and a report line for every file not counted.

A case gives one row per zip file in it (FileName = the zip's name) and one row for its
loose DICOM files (FileName = ``<case>.dir``) when any loose image is not already in one
of its zips. Every file and zip member is either counted as an image or reported with a
reason, so the summary adds up to every file found.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .header import ImageFacts, Skip, inspect_dicom
from .rows import build_row
from .zipread import DEFAULT_MAX_MEMBER_BYTES, ZipProblem, iter_zip_members

__all__ = ["CaseResult", "ReportEntry", "iter_case_dirs", "scan_case"]


@dataclass(frozen=True)
class ReportEntry:
    """A file (or zip member, ``path!member``) that was not counted, or a row problem."""

    case: str
    location: str
    reason: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        """JSON/CSV-ready form."""
        return {
            "case": self.case,
            "location": self.location,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass
class CaseResult:
    """Rows and report of one case, with the counts the summary adds up."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    report: list[ReportEntry] = field(default_factory=list)
    files: int = 0  # files and zip members found
    images: int = 0  # counted as images
    skipped: int = 0  # reported, not counted (junk, duplicates, problems)


def iter_case_dirs(root: str | os.PathLike[str]) -> list[Path]:
    """The immediate sub-folders of ``root``, sorted by name (hidden ones excluded)."""
    base = Path(root)
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))


def _walk(case_dir: Path) -> Iterator[Path]:
    """Every file under the case, in sorted relative-path order; symlinks are not followed."""
    for folder, dirs, files in os.walk(case_dir):
        dirs.sort()
        for name in sorted(files):
            yield Path(folder) / name


def scan_case(
    case_dir: str | os.PathLike[str],
    data_root: str | os.PathLike[str] | None = None,
    *,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
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
    """
    case = Path(case_dir)
    root = Path(data_root) if data_root is not None else case.parent
    result = CaseResult(case.name)
    paths = list(_walk(case))
    zips = [p for p in paths if p.suffix.lower() == ".zip"]
    loose = [p for p in paths if p.suffix.lower() != ".zip"]
    in_zips: dict[str, str] = {}  # SOPInstanceUID -> where it was counted

    for zip_path in zips:
        where = _relative(zip_path, root)
        images: list[ImageFacts] = []
        for item in iter_zip_members(zip_path, max_member_bytes=max_member_bytes):
            if isinstance(item, ZipProblem):
                location = where if item.name is None else f"{where}!{item.name}"
                result.files += 1
                _skip(result, location, item.reason, item.detail)
                continue
            result.files += 1
            location = f"{where}!{item.name}"
            verdict = inspect_dicom(item.data)
            if isinstance(verdict, Skip):
                _skip(result, location, verdict.reason, verdict.detail)
                continue
            images.append(verdict)
            in_zips.setdefault(verdict.sop_instance_uid, location)
            _note_undecodable(result, location, verdict)
        _add_row(result, zip_path.name, images, where)

    loose_images: list[ImageFacts] = []
    seen_loose: dict[str, str] = {}
    for path in loose:
        result.files += 1
        location = _relative(path, root)
        try:
            data = path.read_bytes()
        except OSError as err:
            _skip(result, location, "unreadable", f"cannot be read: {err}")
            continue
        verdict = inspect_dicom(data)
        if isinstance(verdict, Skip):
            _skip(result, location, verdict.reason, verdict.detail)
            continue
        uid = verdict.sop_instance_uid
        earlier = (in_zips.get(uid) or seen_loose.get(uid)) if uid else None
        if earlier is not None:
            _skip(result, location, "duplicate", f"same image (SOPInstanceUID) as {earlier}")
            continue
        if uid:
            seen_loose[uid] = location
        loose_images.append(verdict)
        _note_undecodable(result, location, verdict)
    _add_row(result, f"{case.name}.dir", loose_images, _relative(case, root))
    return result


def _add_row(result: CaseResult, file_name: str, images: list[ImageFacts], where: str) -> None:
    if not images:
        return
    row, problems = build_row(file_name, images)
    result.rows.append(row)
    result.images += len(images)
    for problem in problems:
        result.report.append(ReportEntry(result.name, where, problem.reason, problem.detail))


def _skip(result: CaseResult, location: str, reason: str, detail: str) -> None:
    result.skipped += 1
    result.report.append(ReportEntry(result.name, location, reason, detail))


def _note_undecodable(result: CaseResult, location: str, facts: ImageFacts) -> None:
    for keyword in facts.undecodable:
        detail = f"{keyword} could not be decoded with the file's SpecificCharacterSet"
        result.report.append(ReportEntry(result.name, location, "undecodable", detail))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
