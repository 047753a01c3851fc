"""Ground truth of a generated DICOM data set: every file's role and the rows to expect.

The generator records each file as it writes it; the expected table rows are then
derived from those records by the rules of the extractor (docs/dcm-extractor.md):

* a case gives one row per zip in it (FileName = the zip's name) and one row for its
  loose DICOM files (FileName = ``<case>.dir``) when any loose image is not already
  inside one of the case's zips;
* each value is the first non-empty one among the row's images, taken in path order
  (member-name order inside a zip);
* ImageCount counts images only; SeriesCount counts distinct SeriesInstanceUIDs;
* PatientAge is whole years (``006M`` -> 0), computed from birth and study date
  when the element is absent;
* a row whose images carry several PatientIDs or StudyInstanceUIDs lists them
  under ``conflicts``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .instances import SeriesPlan
from .patients import Patient, age_in_years

__all__ = ["TRUTH_FORMAT", "CaseTruth", "DatasetTruth", "FileRecord", "JunkReason", "Role"]

TRUTH_FORMAT: str = "medkit-dicom-sample-truth/1"

Role = Literal["image", "duplicate", "junk"]
JunkReason = Literal["not_dicom", "empty", "truncated", "non_image", "dicomdir"]


@dataclass(frozen=True)
class FileRecord:
    """One generated file, or one member of a generated zip.

    ``path`` is relative to the cases root (POSIX separators); ``member`` is the name
    inside the zip at ``path``, or None for a file on disk.
    """

    path: str
    member: str | None
    role: Role
    reason: str | None = None
    sop_instance_uid: str | None = None
    series_instance_uid: str | None = None


@dataclass
class CaseTruth:
    """What one case folder (or top-level zip) holds and which rows it must give."""

    name: str
    patient: Patient
    top_level_zip: str | None = None
    files: list[FileRecord] = field(default_factory=list)
    gaps: set[str] = field(default_factory=set)  # series written with a slice missing
    _series: dict[str, SeriesPlan] = field(default_factory=dict, repr=False)

    def add_image(self, path: str, member: str | None, plan: SeriesPlan, sop_uid: str) -> None:
        """Record an image that belongs in the table."""
        self._series[plan.series_uid] = plan
        self.files.append(FileRecord(path, member, "image", None, sop_uid, plan.series_uid))

    def add_duplicate(self, path: str, plan: SeriesPlan, sop_uid: str, zip_path: str) -> None:
        """Record a loose copy of an image that is already inside ``zip_path``."""
        reason = f"same image as in {zip_path}"
        self.files.append(FileRecord(path, None, "duplicate", reason, sop_uid, plan.series_uid))

    def add_junk(self, path: str, member: str | None, reason: JunkReason) -> None:
        """Record a file that is not an image and must be reported, not counted."""
        self.files.append(FileRecord(path, member, "junk", reason))

    def series(self) -> list[dict[str, Any]]:
        """The expected series table rows of this case (StudyInstanceUID, SeriesNumber
        order): images counted once, their sources (zips, ``<case>.dir``) in path order."""
        found: dict[str, list[FileRecord]] = {}
        for record in self.files:
            if record.role == "image":
                found.setdefault(record.series_instance_uid or "", []).append(record)
        rows = []
        for uid, records in found.items():
            plan = self._series[uid]
            sources = sorted(
                {r.path.rsplit("/", 1)[-1] if r.member else f"{self.name}.dir" for r in records},
                key=lambda k: (k.endswith(".dir"), k),
            )
            rows.append(
                {
                    "PatientID": plan.patient.patient_id,
                    "StudyInstanceUID": plan.study_uid,
                    "StudyDate": plan.study_date,
                    "SeriesInstanceUID": uid,
                    "SeriesNumber": str(plan.series_number),
                    "SeriesDescription": plan.description,
                    "Manufacturer": plan.acquisition.manufacturer,
                    "ManufacturerModelName": plan.acquisition.model,
                    "ConvolutionKernel": plan.acquisition.kernel,
                    "KVP": plan.acquisition.kvp,
                    "SliceThickness": plan.acquisition.slice_thickness,
                    "ContrastBolusAgent": plan.acquisition.contrast,
                    "SliceSpacing": plan.acquisition.spacing if len(records) > 1 else None,
                    "ImageCount": len(records),
                    "Sources": sources,
                    "EvenlySpaced": "no" if uid in self.gaps else "yes",
                }
            )
        return sorted(rows, key=lambda r: (r["StudyInstanceUID"], int(r["SeriesNumber"])))

    def rows(self, modality: str, image_size: int) -> list[dict[str, Any]]:
        """The expected table rows of this case, zips first in name order, then ``.dir``."""
        sources: dict[str, list[FileRecord]] = {}
        for record in self.files:
            if record.role != "image":
                continue
            key = record.path if record.member is not None else f"{self.name}.dir"
            sources.setdefault(key, []).append(record)
        rows = []
        for key in sorted(sources, key=lambda k: (k.endswith(".dir"), k)):
            images = sorted(sources[key], key=lambda r: (r.path, r.member or ""))
            plans = [self._series[r.series_instance_uid or ""] for r in images]
            first = plans[0]
            conflicts = [
                keyword
                for keyword, values in (
                    ("PatientID", {p.patient.patient_id for p in plans}),
                    ("StudyInstanceUID", {p.study_uid for p in plans}),
                )
                if len(values) > 1
            ]
            patient = first.patient
            rows.append(
                {
                    "FileName": key.rsplit("/", 1)[-1],
                    "PatientName": patient.name,
                    "PatientID": patient.patient_id,
                    "StudyDate": first.study_date,
                    "PatientBirthDate": next(
                        (p.patient.birth_date for p in plans if p.patient.birth_date), ""
                    ),
                    "PatientAge": age_in_years(patient.age, patient.birth_date, first.study_date),
                    "PatientSex": patient.sex,
                    "StudyInstanceUID": first.study_uid,
                    "SeriesInstanceUID": first.series_uid,
                    "Modality": modality,
                    "Manufacturer": first.acquisition.manufacturer,
                    "Rows": image_size,
                    "Columns": image_size,
                    "ImageCount": len(images),
                    "SeriesCount": len({p.series_uid for p in plans}),
                    "conflicts": conflicts,
                }
            )
        return rows


@dataclass
class DatasetTruth:
    """Ground truth of a whole generated data set; saved as JSON beside the cases root."""

    seed: int
    params: dict[str, Any]
    modality: str
    image_size: int
    cases: list[CaseTruth] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: parameters, and per case its patient, rows and files."""
        return {
            "format": TRUTH_FORMAT,
            "seed": self.seed,
            "params": self.params,
            "cases": [
                {
                    "name": case.name,
                    "top_level_zip": case.top_level_zip,
                    "patient": asdict(case.patient),
                    "rows": case.rows(self.modality, self.image_size),
                    "series": case.series(),
                    "files": [asdict(record) for record in case.files],
                }
                for case in self.cases
            ],
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON (UTF-8, names unescaped so people can read them)."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1)
        Path(path).write_text(text + "\n", encoding="utf-8")
