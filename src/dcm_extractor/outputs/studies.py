"""The study table, ``all_studies``: one row per study, from the series rows of the run.

Written with the series table (``--series``), in the same formats, from the rows that
table holds - so under ``--desensitize`` the patient's pseudonym and dates as the series
table shows them. A study found in two cases (an export split over two folders) is one
row: its series and instances added up, its first ProjectID. Column names are DICOM
keywords (``ModalitiesInStudy``, ``NumberOfStudyRelatedSeries``,
``NumberOfStudyRelatedInstances``); the modalities are sorted and joined by a backslash,
as DICOM writes several values. Held in memory as the run goes: one small record a study.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from .tables import TableShape

__all__ = ["STUDY_TABLE", "StudyTally"]

STUDY_TABLE: Final = TableShape(
    (
        "ProjectID",
        "PatientID",
        "StudyInstanceUID",
        "StudyDate",
        "StudyDescription",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    frozenset({"ProjectID", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"}),
)


@dataclass
class _Study:
    project_id: int | None
    patient: str = ""
    date: str = ""
    description: str = ""
    modalities: set[str] = field(default_factory=set)
    series: int = 0
    instances: int = 0


class StudyTally:
    """The studies of the series rows given so far."""

    def __init__(self) -> None:
        self.studies: dict[str, _Study] = {}

    def add(self, series: Iterable[dict[str, Any]]) -> None:
        """Series rows (the series table's) into their studies."""
        for row in series:
            uid = str(row.get("StudyInstanceUID") or "")
            study = self.studies.get(uid)
            if study is None:
                study = self.studies[uid] = _Study(row.get("ProjectID"))
            study.patient = study.patient or str(row.get("PatientID") or "")
            date = str(row.get("StudyDate") or "")
            study.date = min(study.date, date) if study.date and date else study.date or date
            study.description = study.description or str(row.get("StudyDescription") or "")
            if row.get("Modality"):
                study.modalities.add(str(row["Modality"]))
            study.series += 1
            study.instances += int(row.get("ImageCount") or 0)

    def rows(self) -> list[dict[str, Any]]:
        """One row per study, by ProjectID then StudyInstanceUID."""
        out = [
            {
                "ProjectID": s.project_id,
                "PatientID": s.patient,
                "StudyInstanceUID": uid,
                "StudyDate": s.date,
                "StudyDescription": s.description,
                "ModalitiesInStudy": "\\".join(sorted(s.modalities)),
                "NumberOfStudyRelatedSeries": s.series,
                "NumberOfStudyRelatedInstances": s.instances,
            }
            for uid, s in self.studies.items()
        ]
        out.sort(key=lambda r: (r["ProjectID"] is None, r["ProjectID"] or 0, r["StudyInstanceUID"]))
        return out
