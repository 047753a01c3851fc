"""The series table: one row per series of a case, from the images counted in it.

Images reach a :class:`SeriesTally` only once (a zip and its extracted copy, or two
copies of a zip, give each image once: :mod:`dcm_extractor.sources.cases` drops the later
copies), so a series split across two zips is one row whose ``Sources`` names both.

Slice geometry: each image's position along the series' normal (the cross product of
the ImageOrientationPatient row and column directions, dotted with
ImagePositionPatient). ``SliceCount`` counts distinct positions (to 0.001 mm),
``ZExtent`` is the distance from the first to the last, ``SliceSpacing`` the median step,
and ``EvenlySpaced`` is ``yes`` when every step is within 10 % of that median, ``no``
when one is not (a missing slice, a second stack) or the images' orientations differ,
and empty with fewer than two positions or none readable. A multi-frame object that keeps
its geometry in functional groups (enhanced CT, MR and PET: no ImagePositionPatient of
its own) gives each frame's position and orientation
(:func:`~dcm_extractor.reading.extras.frame_geometry`), so its frames count as slices.
"""

from __future__ import annotations

import math
import operator
import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat, zip_longest
from math import isfinite
from operator import attrgetter, methodcaller
from typing import Any, Final

from ..reading.extras import (
    FRAME_ORIENTATIONS,
    FRAME_POSITIONS,
    FRAME_SEPARATOR,
    SERIES_KEYWORDS,
    TRANSFER_SYNTAX,
)
from ..reading.facts import ImageFacts

__all__ = [
    "SERIES_COLUMNS",
    "SERIES_FLOATS",
    "SERIES_INTEGERS",
    "SeriesTally",
    "slice_geometry",
]

SERIES_COLUMNS: Final = [
    "ProjectID",
    "PatientID",
    "StudyInstanceUID",
    "StudyDate",
    "StudyDescription",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "SeriesDate",
    "SeriesTime",
    "Modality",
    "BodyPartExamined",
    "Manufacturer",
    "ManufacturerModelName",
    "ProtocolName",
    "SliceThickness",
    "SpacingBetweenSlices",
    "PixelSpacing",
    "Rows",
    "Columns",
    "ImageType",
    "ConvolutionKernel",
    "ContrastBolusAgent",
    "KVP",
    "ImageCount",
    "NumberOfFrames",
    "SliceCount",
    "ZExtent",
    "SliceSpacing",
    "EvenlySpaced",
    "TransferSyntaxUID",
    "Sources",
]
SERIES_INTEGERS: Final = frozenset(
    {"ProjectID", "Rows", "Columns", "ImageCount", "NumberOfFrames", "SliceCount"}
)
SERIES_FLOATS: Final = frozenset({"ZExtent", "SliceSpacing"})
_FROM_VALUES: Final = ("PatientID", "StudyDate", "Modality", "Manufacturer")
_GEOMETRY: Final = ("ImagePositionPatient", "ImageOrientationPatient")  # per image, not shown
_FIRST_OF: Final = tuple(k for k in SERIES_KEYWORDS if k not in _GEOMETRY)
_TAKEN: Final = (*_FIRST_OF, *_FROM_VALUES)  # a series' first values, in its row
_EXTRA: Final = attrgetter("extra")
_ROWS: Final = attrgetter("rows")
_COLUMNS: Final = attrgetter("columns")
_FRAMES: Final = attrgetter("frames")
_SYNTAX: Final = methodcaller("get", TRANSFER_SYNTAX, "")
_ORIENTATION: Final = methodcaller("get", "ImageOrientationPatient", "")
_POSITION: Final = methodcaller("get", "ImagePositionPatient", "")
_STEP_TOLERANCE: Final = 0.10  # a step may differ this much from the median step
_SAME_POSITION: Final = 1e-3  # mm
_SAME_DIRECTION: Final = 1e-4


@dataclass(slots=True)
class _Series:
    first: dict[str, str] = field(default_factory=dict)
    # its images in reading order: counted, and their geometry taken, when the rows are
    # made (tight loops over a series cost less than the same work spread over the scan
    # of each file; the case holds its images until its rows are made anyway)
    images: list[ImageFacts] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # keys still without a value
    settled: frozenset[str] = frozenset()  # extra keys a reader need not decode again
    sources: dict[str, None] = field(default_factory=dict)


class SeriesTally:
    """The series of one case, gathered image by image.

    Parameters
    ----------
    headers
        The ``--columns`` headers, added after the standard columns (first non-empty
        value among the series' images, like every text column).
    """

    def __init__(self, headers: Sequence[str] = ()) -> None:
        self.headers = [h for h in dict.fromkeys(headers) if h not in SERIES_COLUMNS]
        self._series: dict[tuple[str, str], _Series] = {}
        # Series attributes once taken need not be read again; --columns values may (each
        # case table row takes its own images' first values).
        self._settleable = frozenset(_FIRST_OF).difference(headers)

    def settled(self, study: str, series: str) -> frozenset[str]:
        """The series attributes this tally already holds for the series: a reader need
        not decode them from its further images (``known`` of
        :meth:`~dcm_extractor.reading.fastheader.FastReader.inspect`). Never the
        per-image geometry or a ``--columns`` value."""
        found = self._series.get((study, series))
        return found.settled if found is not None else frozenset()

    def add(self, image: ImageFacts, source: str) -> None:
        """Count ``image`` (already deduplicated) found in ``source`` (a zip, ``<case>.dir``).

        Images must arrive in the order they were read: a series takes each attribute
        from the first image that has it, and a reader told :meth:`settled` leaves the
        taken ones out of later images."""
        values = image.values
        key = (values.get("StudyInstanceUID", ""), image.series)  # "?..." without a UID
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
            series.missing = [*_FROM_VALUES, *_FIRST_OF, *self.headers]
        if series.missing:  # usually the first image fills all but the absent ones
            first, extra = series.first, image.extra
            filled = False
            for keyword in series.missing:
                source_values = values if keyword in _FROM_VALUES else extra
                value = source_values.get(keyword, "")
                if value:
                    first[keyword] = value
                    filled = True
            if filled:
                series.missing = [k for k in series.missing if not first.get(k)]
                series.settled = self._settleable.difference(series.missing)
        series.images.append(image)
        series.sources.setdefault(source, None)

    def rows(self) -> list[dict[str, Any]]:
        """One row per series, sorted by StudyInstanceUID, then SeriesNumber (as a number,
        missing last), then SeriesInstanceUID; ProjectID is left None for the caller."""
        rows = []
        for (study, uid), series in self._series.items():
            images = series.images
            extras = list(map(_EXTRA, images))
            framed = any(FRAME_POSITIONS in extra for extra in extras)
            along, mixed = _positions(_per_frame(extras) if framed else extras)
            count, extent, spacing, even = slice_geometry(along, mixed)
            row: dict[str, Any] = dict.fromkeys(SERIES_COLUMNS, "")
            row.update(zip(_TAKEN, map(series.first.get, _TAKEN, repeat("")), strict=True))
            row.update(
                ProjectID=None,
                StudyInstanceUID=study,
                SeriesInstanceUID="" if uid.startswith("?") else uid,
                Rows=_first_of(map(_ROWS, images)),
                Columns=_first_of(map(_COLUMNS, images)),
                ImageCount=len(images),
                NumberOfFrames=sum(map(_FRAMES, images)),
                SliceCount=count,
                ZExtent=extent,
                SliceSpacing=spacing,
                EvenlySpaced=even,
                TransferSyntaxUID=",".join(s for s in dict.fromkeys(map(_SYNTAX, extras)) if s),
                Sources="; ".join(series.sources),
            )
            for header in self.headers:
                row[header] = series.first.get(header, "")
            rows.append(row)
        return sorted(rows, key=_order)


def _order(row: dict[str, Any]) -> tuple[str, float, str, str]:
    number = str(row["SeriesNumber"])
    try:
        value = float(number)
    except ValueError:
        value = math.inf
    return (
        str(row["StudyInstanceUID"]),
        value if math.isfinite(value) else math.inf,
        number,
        str(row["SeriesInstanceUID"]),
    )


def _first_of(values: Iterator[int | None]) -> int | None:
    """The first true value (a number of rows, of columns), else the last one."""
    last = None
    for value in values:
        if value:
            return value
        last = value
    return last


def _per_frame(extras: list[dict[str, str]]) -> list[dict[str, str]]:
    """The images' geometry with each multi-frame image's frames in its place, one entry
    per frame (``ImagePositionPatient`` and ``ImageOrientationPatient`` of each)."""
    entries = []
    for extra in extras:
        positions = extra.get(FRAME_POSITIONS)
        if positions is None:
            entries.append(extra)
            continue
        orientations = extra.get(FRAME_ORIENTATIONS, "").split(FRAME_SEPARATOR)
        for position, orientation in zip_longest(
            positions.split(FRAME_SEPARATOR), orientations, fillvalue=""
        ):
            entries.append({_GEOMETRY[0]: position, _GEOMETRY[1]: orientation})
    return entries


def _positions(extras: list[dict[str, str]]) -> tuple[list[float], bool]:
    """The positions of a series' images along its normal, and whether their
    orientations differ (``mixed``).

    The orientation is the first image's whose ImageOrientationPatient is six numbers;
    an image whose orientation is not six numbers gives no position; orientations that
    differ from the first by more than :data:`_SAME_DIRECTION` make the series mixed."""
    orientations = list(map(_ORIENTATION, extras))
    parsed = {text: _numbers(text, 6) for text in dict.fromkeys(orientations)}
    valid = [numbers for numbers in parsed.values() if numbers is not None]
    if not valid:
        return [], False
    first = valid[0]
    mixed = any(
        max(abs(a - b) for a, b in zip(other, first, strict=True)) > _SAME_DIRECTION
        for other in valid[1:]
    )
    normal = _normal(first)
    if normal is None:
        return [], mixed
    places: Iterable[str] = map(_POSITION, extras)
    if len(valid) < len(parsed):  # some images' orientation is not six numbers
        places = (p for p, o in zip(places, orientations, strict=True) if parsed[o] is not None)
    return _along(places, normal), mixed


def _along(places: Iterable[str], normal: tuple[float, float, float]) -> list[float]:
    """Each ImagePositionPatient text's position along ``normal`` (texts that are not
    three numbers, or give no finite position, are left out)."""
    nx, ny, nz = normal
    positions = []
    for text in places:
        try:  # (a ValueError when not 3 numbers)
            x, y, z = map(float, text.split("\\"))
        except ValueError:
            continue
        along = x * nx + y * ny + z * nz
        if isfinite(along):
            positions.append(along)
    return positions


def _numbers(text: str, count: int) -> tuple[float, ...] | None:
    parts = text.split("\\")
    if len(parts) != count:
        return None
    try:
        values = tuple(map(float, parts))
    except ValueError:
        return None
    return values if all(map(math.isfinite, values)) else None


def _normal(orientation: tuple[float, ...]) -> tuple[float, float, float] | None:
    (a, b, c), (d, e, f) = orientation[:3], orientation[3:]
    normal = (b * f - c * e, c * d - a * f, a * e - b * d)
    length = math.sqrt(sum(v * v for v in normal))
    if length < 1e-6:
        return None
    return normal[0] / length, normal[1] / length, normal[2] / length


def slice_geometry(
    positions: Sequence[float], mixed: bool = False
) -> tuple[int, float | None, float | None, str]:
    """``(SliceCount, ZExtent, SliceSpacing, EvenlySpaced)`` of positions along the normal.

    Examples
    --------
    >>> slice_geometry([0.0, 5.0, 10.0, 20.0])
    (4, 20.0, 5.0, 'no')
    >>> slice_geometry([2.5, 0.0, 5.0, 5.0])
    (3, 5.0, 2.5, 'yes')
    """
    ordered = sorted(positions)
    steps = list(map(operator.sub, ordered[1:], ordered))
    if steps and min(steps) > _SAME_POSITION:  # (the usual series: no position twice)
        distinct = ordered
    else:  # a position within _SAME_POSITION of the last one kept is the same
        distinct = []
        for z in ordered:
            if not distinct or z - distinct[-1] > _SAME_POSITION:
                distinct.append(z)
        steps = list(map(operator.sub, distinct[1:], distinct))
    if len(distinct) < 2:
        return len(distinct), (0.0 if distinct else None), None, ""
    spacing = statistics.median(steps)
    tolerance = _STEP_TOLERANCE * spacing  # every step within it of the median:
    even = max(steps) - spacing <= tolerance and spacing - min(steps) <= tolerance and not mixed
    return (
        len(distinct),
        round(distinct[-1] - distinct[0], 3),
        round(spacing, 3),
        ("yes" if even else "no"),
    )
