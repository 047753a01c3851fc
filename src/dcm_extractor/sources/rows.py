"""From images to table rows: first non-empty values, counts, ages, conflicts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..reading.facts import TEXT_KEYWORDS, ImageFacts

__all__ = [
    "FIXED_COLUMNS",
    "RowProblem",
    "age_in_years",
    "build_row",
    "fill_from",
    "missing_uids",
]

# The original tool's column order: the text columns sit in the middle, as read.
FIXED_COLUMNS: Final = [
    "ProjectID",
    "FileName",
    *TEXT_KEYWORDS,
    "Rows",
    "Columns",
    "ImageCount",
    "SeriesCount",
]
_CONFLICT_KEYWORDS: Final = ("PatientID", "StudyInstanceUID")
_AGE: Final = re.compile(r"^\s*(\d{1,3})\s*([DWMY])\s*$", re.IGNORECASE)
_LOOSE_AGE: Final = re.compile(r"^\s*(\d{1,3}(?:\.\d+)?)\s*([DWMY]?)\s*$", re.IGNORECASE)
_OLDEST: Final = 150  # a number of years above this is not an age
_PER_YEAR: Final = {"D": 365, "W": 52, "M": 12, "Y": 1}


@dataclass(frozen=True)
class RowProblem:
    """Something about a row worth reporting: a conflict or an unusable value.

    ``detail`` holds no patient data; the values themselves are in ``private``.
    """

    reason: str
    detail: str
    private: str = ""


def age_in_years(age: str, birth_date: str, study_date: str) -> int | None:
    """Whole years of a DICOM age string (``045Y`` -> 45, ``006M`` -> 0).

    Without an age string, the years between birth and study date; None when neither
    gives a valid answer. :func:`read_age` also says how the age was found.
    """
    return read_age(age, birth_date, study_date)[0]


def read_age(age: str, birth_date: str, study_date: str) -> tuple[int | None, str]:
    """Whole years, and a note when the age was not a plain DICOM age string.

    ``045Y`` is 45 years (no note). A number without a unit (``45``, ``045``) or with a
    fraction (``1.5Y``) is read as years, with a note. Otherwise the years between birth
    and study date, noted when an age string was there but unreadable.
    """
    match = _AGE.match(age)
    if match:
        return int(match.group(1)) // _PER_YEAR[match.group(2).upper()], ""
    loose = _LOOSE_AGE.match(age)
    if loose and (loose.group(2) or "Y").upper() == "Y" and float(loose.group(1)) <= _OLDEST:
        return int(float(loose.group(1))), "PatientAge is not a DICOM age string; read as years"
    born, seen = _date(birth_date), _date(study_date)
    if born is None or seen is None or seen < born:
        return None, ""
    years = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
    note = "PatientAge is unreadable; the age is from the birth and study dates" if age else ""
    return years, note


def _date(text: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text.strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def build_row(
    file_name: str, images: Sequence[ImageFacts], extra_columns: Sequence[str] = ()
) -> tuple[dict[str, Any], list[RowProblem]]:
    """The row of one source (a zip, or a case's loose files) from its images in path order.

    Each value is the first non-empty one among the images; ImageCount counts them and
    SeriesCount their distinct SeriesInstanceUIDs. ProjectID is left None for the caller.
    ``extra_columns`` (``--columns`` headers) follow the fixed ones, taken the same way.
    """
    problems: list[RowProblem] = []
    first: dict[str, str] = {}
    for keyword in TEXT_KEYWORDS:
        first[keyword] = next((i.values[keyword] for i in images if i.values.get(keyword)), "")
    for keyword in _CONFLICT_KEYWORDS:
        seen = sorted({i.values[keyword] for i in images if i.values.get(keyword)})
        if len(seen) > 1:
            detail = f"{keyword} differs among the images ({len(seen)} values)"
            problems.append(RowProblem("conflict", detail, ", ".join(seen)))
    age, note = read_age(first["PatientAge"], first["PatientBirthDate"], first["StudyDate"])
    if note:
        problems.append(RowProblem("age_read", note, repr(first["PatientAge"])))
    if age is None and (first["PatientAge"] or first["PatientBirthDate"]):
        shown = first["PatientAge"] or f"birth date {first['PatientBirthDate']}"
        problems.append(RowProblem("bad_age", "PatientAge cannot be determined", repr(shown)))
    elif age is None:
        detail = "no PatientAge, and no PatientBirthDate to derive it from: PatientAge blank"
        problems.append(RowProblem("bad_age", detail))
    row: dict[str, Any] = {
        "ProjectID": None,
        "FileName": file_name,
        "PatientName": first["PatientName"],
        "PatientID": first["PatientID"],
        "StudyDate": first["StudyDate"],
        "PatientBirthDate": first["PatientBirthDate"],
        "PatientAge": age,
        "PatientSex": first["PatientSex"],
        "StudyInstanceUID": first["StudyInstanceUID"],
        "SeriesInstanceUID": first["SeriesInstanceUID"],
        "Modality": first["Modality"],
        "Manufacturer": first["Manufacturer"],
        "Rows": next((i.rows for i in images if i.rows), None),
        "Columns": next((i.columns for i in images if i.columns), None),
        "ImageCount": len(images),
        "SeriesCount": len({i.series for i in images}),
    }
    for column in extra_columns:
        if column not in row:
            row[column] = next((i.extra[column] for i in images if i.extra.get(column)), "")
    return row, problems


def missing_uids(images: Sequence[ImageFacts]) -> list[RowProblem]:
    """Report counted images without a SeriesInstanceUID (grouped into series by what does
    identify them: :func:`~.header.series_key`) or without a SOPInstanceUID (copies found
    by content)."""
    problems = []
    blank_series = [i for i in images if not i.values.get("SeriesInstanceUID")]
    if blank_series:
        groups = len({i.series for i in blank_series})
        detail = (
            f"{len(blank_series)} images without a SeriesInstanceUID, grouped into {groups} "
            "series by frame of reference, series number and description, modality, "
            "orientation and image size"
        )
        problems.append(RowProblem("missing_uid", detail))
    blank_sop = sum(not i.sop_instance_uid for i in images)
    if blank_sop:
        detail = f"{blank_sop} images without a SOPInstanceUID: copies found by content"
        problems.append(RowProblem("missing_uid", detail))
    return problems


# Columns a non-image object may fill: who and which study, not image properties.
_FILLABLE: Final = ("PatientName", "PatientID", "StudyDate", "PatientBirthDate", "PatientSex",
                    "StudyInstanceUID", "Manufacturer")  # fmt: skip


def fill_from(row: dict[str, Any], others: Sequence[ImageFacts]) -> list[str]:
    """Fill the row's empty patient and study columns from ``others``; the columns filled."""
    filled = []
    for keyword in _FILLABLE:
        if row.get(keyword) in ("", None):
            value = next((o.values[keyword] for o in others if o.values.get(keyword)), "")
            if value:
                row[keyword] = value
                filled.append(keyword)
    return filled
