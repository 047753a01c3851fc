"""The cohort at a glance: counts gathered as cases stream past, for ``report.html``.

A :class:`Cohort` keeps counters only (and the first :data:`MAX_LISTED` series with gaps
and failed cases), so memory does not grow with the number of files. It is fed the rows
the primary series table holds and the report's lines as the report writes them, so a
de-identified run's cohort holds what its tables hold: no names, pseudonymous cases,
dates only as ``--keep-dates``/``--shift-dates`` allow.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..sources.cases import ReportEntry

__all__ = ["IMAGE_BINS", "MAX_LISTED", "Cohort", "image_bin"]

MAX_LISTED: Final = 200  # series with gaps and failed cases listed by name; all are counted
# Images per series, as histogram bins: (label, smallest count in the bin).
IMAGE_BINS: Final = (
    ("1", 1),
    ("2-9", 2),
    ("10-49", 10),
    ("50-99", 50),
    ("100-199", 100),
    ("200-499", 200),
    ("500-999", 500),
    ("1000+", 1000),
)
_CHARSET_REASONS: Final = frozenset({"charset", "undecodable"})


def image_bin(count: int) -> str:
    """The histogram bin of a series with ``count`` images.

    Examples
    --------
    >>> image_bin(1), image_bin(49), image_bin(50), image_bin(5000)
    ('1', '10-49', '50-99', '1000+')
    """
    label = IMAGE_BINS[0][0]
    for name, smallest in IMAGE_BINS:
        if count >= smallest:
            label = name
    return label


@dataclass
class Cohort:
    """Counts over a run's series and report lines."""

    series: int = 0
    images: int = 0
    modality_series: Counter[str] = field(default_factory=Counter)
    modality_images: Counter[str] = field(default_factory=Counter)
    manufacturers: Counter[str] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    study_months: Counter[str] = field(default_factory=Counter)
    studies: int = 0
    undated_studies: int = 0
    image_bins: Counter[str] = field(default_factory=Counter)
    thickness: Counter[str] = field(default_factory=Counter)
    gap_count: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)  # files (and folders) left out
    notes: Counter[str] = field(default_factory=Counter)  # row and image notes
    charset: Counter[str] = field(default_factory=Counter)
    failed_count: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def add_series(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """One case's series rows (as its primary series table holds them)."""
        studies: dict[str, str] = {}
        for row in rows:
            count = int(row.get("ImageCount") or 0)
            modality = str(row.get("Modality") or "(none)")
            self.series += 1
            self.images += count
            self.modality_series[modality] += 1
            self.modality_images[modality] += count
            maker = str(row.get("Manufacturer") or "(none)")
            self.manufacturers[maker] += 1
            self.models[f"{maker} {row.get('ManufacturerModelName') or '(no model)'}"] += 1
            self.image_bins[image_bin(count)] += 1
            self.thickness[_thickness(str(row.get("SliceThickness") or ""))] += 1
            studies.setdefault(
                str(row.get("StudyInstanceUID") or ""), str(row.get("StudyDate") or "")
            )
            if row.get("EvenlySpaced") == "no":
                self.gap_count += 1
                if len(self.gaps) < MAX_LISTED:
                    self.gaps.append(dict(row))
        for date in studies.values():
            self.studies += 1
            if len(date) >= 6 and date[:6].isdigit():
                self.study_months[f"{date[:4]}-{date[4:6]}"] += 1
            else:
                self.undated_studies += 1

    def add_report(self, entries: Iterable[ReportEntry], labels: Mapping[str, str] | None) -> None:
        """Report lines, as the report shows them (``labels``: de-identified case names)."""
        for entry in entries:
            shown = entry.to_dict(labels)
            (self.notes if entry.is_note else self.reasons)[entry.reason] += 1
            if entry.reason in _CHARSET_REASONS:
                self.charset[shown["detail"]] += 1
            if entry.reason == "case_failed":
                self.failed_count += 1
                if len(self.failed) < MAX_LISTED:
                    self.failed.append((shown["case"], shown["detail"]))


def _thickness(text: str) -> str:
    """Slice thickness in mm to 0.001 mm, without trailing zeros (``0.625``, ``5``; common
    thin slices differ below 0.1 mm); ``"(none)"`` when absent or not a number."""
    try:
        value = float(text)
    except ValueError:
        return "(none)"
    return f"{value:.3f}".rstrip("0").rstrip(".") if math.isfinite(value) else "(none)"
