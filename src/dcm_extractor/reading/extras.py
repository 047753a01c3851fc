"""What a scan reads beyond the fixed columns: the series table's attributes and ``--columns``.

:class:`Extras` travels with the scan (to worker processes and Dask workers) and says
what each image must give besides the fixed columns. The series attributes all sit
before (0028,0100), where the fast header reader walks anyway (:data:`.tagwalk.NEEDED`
holds their tags), so reading them costs decoding only. A ``--columns`` entry that is
one standard attribute among those tags is read the same way; any other (private tags,
sequence paths, attributes after the image pixel module) by pydicom from the header's
bytes (:meth:`Extras.slow_columns`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Final

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from .columns import ColumnSpec, element_text
from .tagwalk import NEEDED

__all__ = [
    "INSTANCE_KEYWORDS",
    "INSTANCE_TAGS",
    "SERIES_KEYWORDS",
    "SERIES_TAGS",
    "TRANSFER_SYNTAX",
    "Extras",
    "FastTags",
    "dataset_extras",
]

# Read from every image for the series table (besides the fixed columns' attributes).
SERIES_KEYWORDS: Final = (
    "StudyDescription",
    "SeriesNumber",
    "SeriesDescription",
    "SeriesDate",
    "SeriesTime",
    "BodyPartExamined",
    "ManufacturerModelName",
    "ProtocolName",
    "SliceThickness",
    "SpacingBetweenSlices",
    "PixelSpacing",
    "ImageType",
    "ConvolutionKernel",
    "ContrastBolusAgent",
    "KVP",
    "ImagePositionPatient",
    "ImageOrientationPatient",
)
SERIES_TAGS: Final = {keyword: int(tag_for_keyword(keyword) or 0) for keyword in SERIES_KEYWORDS}
# Read from every DICOM object for the instance table (besides the fixed columns' and the
# transfer syntax): what differs from image to image.
INSTANCE_KEYWORDS: Final = (
    "SOPClassUID",
    "InstanceNumber",
    "AcquisitionDate",
    "AcquisitionTime",
    "ImagePositionPatient",
    "ImageOrientationPatient",
)
INSTANCE_TAGS: Final = {
    keyword: int(tag_for_keyword(keyword) or 0) for keyword in INSTANCE_KEYWORDS
}
TRANSFER_SYNTAX: Final = "TransferSyntaxUID"  # from the file meta group
_BESIDES_MOST: Final = 256  # remembered tag lists (one per set of attributes a series has)


class FastTags:
    """The ``(key, tag)`` pairs the fast reader takes, and their keys and tags apart."""

    __slots__ = ("keys", "pairs", "tags")

    def __init__(self, pairs: tuple[tuple[str, int], ...]) -> None:
        self.pairs = pairs
        self.keys = tuple(key for key, _ in pairs)
        self.tags = tuple(tag for _, tag in pairs)


@dataclass(frozen=True)
class Extras:
    """What each image gives besides the fixed columns.

    Parameters
    ----------
    series
        The series attributes (:data:`SERIES_KEYWORDS`) and the transfer syntax, for the
        series table and the HTML report.
    instances
        The instance attributes (:data:`INSTANCE_KEYWORDS`) and the transfer syntax, for
        the instance table.
    columns
        The ``--columns`` entries, in the order given.

    Values land in :attr:`ImageFacts.extra <dcm_extractor.reading.header.ImageFacts.extra>` under
    the keyword (series) or the column's header as written (``--columns``).
    """

    series: bool = False
    columns: tuple[ColumnSpec, ...] = ()
    instances: bool = False

    def __bool__(self) -> bool:
        return self.series or self.instances or bool(self.columns)

    @property
    def syntax(self) -> bool:
        """Whether each image's transfer syntax is wanted (series or instance table)."""
        return self.series or self.instances

    @property
    def headers(self) -> tuple[str, ...]:
        """The ``--columns`` headers, each once, in order."""
        return tuple(dict.fromkeys(c.header for c in self.columns))

    @cached_property
    def fast_tags(self) -> tuple[tuple[str, int], ...]:
        """``(key, tag)`` of every value the fast reader takes from the tags it walks."""
        wanted = dict(SERIES_TAGS) if self.series else {}
        if self.instances:
            wanted.update(INSTANCE_TAGS)
        for column in self.columns:
            step = column.steps[0]
            if len(column.steps) == 1 and step.creator is None and step.tag in NEEDED:
                wanted.setdefault(column.header, step.tag)
        return tuple(wanted.items())

    def fast_wanted(self, held: frozenset[str]) -> FastTags:
        """:attr:`fast_tags` without the keys in ``held`` (what a series already has);
        remembered per ``held`` (the same object), as a series' images ask with the same set."""
        besides = self._besides
        wanted = besides.get(held)
        if wanted is None:
            if len(besides) >= _BESIDES_MOST:
                besides.clear()
            pairs = tuple((k, t) for k, t in self.fast_tags if k not in held)
            wanted = besides[held] = FastTags(pairs)
        return wanted

    @cached_property
    def _besides(self) -> dict[frozenset[str], FastTags]:
        return {}

    @cached_property
    def slow_columns(self) -> tuple[ColumnSpec, ...]:
        """The ``--columns`` entries read by pydicom from the header bytes."""
        fast = {key for key, _ in self.fast_tags}
        return tuple(c for c in self.columns if c.header not in fast)

    def signature(self) -> str:
        """What changes a case's results (the resume manifest's fingerprint holds it)."""
        text = f"series={self.series}\x1f" + "\x1f".join(self.headers)
        if self.instances:  # (runs without it keep the fingerprints they had)
            text += "\x1finstances/xxh3"  # ContentFingerprint: XXH3-128 (was SHA-256)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def dataset_extras(ds: Dataset, extras: Extras) -> dict[str, str]:
    """The extra values of a data set pydicom parsed (the full reader's path)."""
    values: dict[str, str] = {}
    if extras.series:
        for keyword, tag in SERIES_TAGS.items():
            values[keyword] = element_text(ds, tag) if tag in ds else ""
    if extras.instances:
        for keyword, tag in INSTANCE_TAGS.items():
            values[keyword] = element_text(ds, tag) if tag in ds else ""
    if extras.syntax:
        meta = getattr(ds, "file_meta", None)
        values[TRANSFER_SYNTAX] = str(meta.get("TransferSyntaxUID", "")) if meta else ""
    for column in extras.columns:
        values.setdefault(column.header, column.value(ds))
    return values
