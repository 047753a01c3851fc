"""Which scanner and reconstruction each generated series comes from.

A real export mixes scanners, slice thicknesses, kernels and contrast phases, and the
series table and report exist to tell them apart; so the sample does too. Each study
is acquired on one scanner (chosen from the seed, the case and the study); odd series
numbers are the routine soft-tissue reconstruction, even ones a thin, sharp one after
contrast. The slices of a series lie one slice thickness apart.

The scanner models, kernel names and contrast agents are real products' names, used
as plain labels: the files keep the template's header otherwise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

__all__ = ["SCANNERS", "Acquisition", "Scanner", "acquisition"]

_NAMESPACE = uuid.UUID("3a7e9f62-0c1b-5d4e-8f2a-6d656b697432")  # medkit sample scanners


@dataclass(frozen=True)
class Acquisition:
    """The values one series is written with (the series table's columns of them).

    ``slice_thickness`` is the DS text written, and the distance between its slices.
    ``contrast`` is ContrastBolusAgent; empty means the element is left out.
    """

    manufacturer: str
    model: str
    kernel: str
    kvp: str
    slice_thickness: str
    contrast: str

    @property
    def spacing(self) -> float:
        """Distance between neighbouring slices in mm."""
        return float(self.slice_thickness)


@dataclass(frozen=True)
class Scanner:
    """One scanner: its two reconstructions (routine, thin) and its contrast agent."""

    manufacturer: str
    model: str
    kvp: str
    kernels: tuple[str, str]
    thicknesses: tuple[str, str]
    contrast: str


# Thicknesses are exact in binary, so slice positions written as DS text stay exact.
SCANNERS: Final[tuple[Scanner, ...]] = (
    Scanner("GE MEDICAL SYSTEMS", "Revolution CT", "120", ("STANDARD", "LUNG"), ("5", "0.625"),
            "Omnipaque 350"),
    Scanner("SIEMENS", "SOMATOM Definition AS+", "120", ("B30f", "B70f"), ("5", "1"),
            "Ultravist 370"),
    Scanner("Philips", "iCT 256", "120", ("B", "YB"), ("5", "1.25"), "Iopamiro 370"),
    Scanner("TOSHIBA", "Aquilion ONE", "100", ("FC08", "FC52"), ("3", "0.5"), "Visipaque 320"),
)  # fmt: skip


def acquisition(seed: int, case: str, study: int, series_number: int) -> Acquisition:
    """The acquisition of series ``series_number`` of ``case``'s ``study``.

    Examples
    --------
    >>> acquisition(0, "case", 1, 2).slice_thickness in {s.thicknesses[1] for s in SCANNERS}
    True
    """
    key = uuid.uuid5(_NAMESPACE, "\x1f".join(map(str, (seed, case, study))))
    scanner = SCANNERS[key.int % len(SCANNERS)]
    thin = series_number % 2 == 0
    return Acquisition(
        manufacturer=scanner.manufacturer,
        model=scanner.model,
        kernel=scanner.kernels[thin],
        kvp=scanner.kvp,
        slice_thickness=scanner.thicknesses[thin],
        contrast=scanner.contrast if thin else "",
    )
