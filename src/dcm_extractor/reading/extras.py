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
    "FRAME_ORIENTATIONS",
    "FRAME_POSITIONS",
    "INSTANCE_KEYWORDS",
    "INSTANCE_TAGS",
    "SERIES_KEYWORDS",
    "SERIES_TAGS",
    "TRANSFER_SYNTAX",
    "Extras",
    "FastTags",
    "dataset_extras",
    "frame_geometry",
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
# A multi-frame object's frames' geometry (frame_geometry), for the series table's slice
# geometry; never a column. Frames separated by FRAME_SEPARATOR, each value DICOM text.
FRAME_POSITIONS: Final = "_FramePositions"
FRAME_ORIENTATIONS: Final = "_FrameOrientations"
FRAME_SEPARATOR: Final = ";"
_POSITION_TAG: Final = 0x00200032  # ImagePositionPatient
_ORIENTATION_TAG: Final = 0x00200037  # ImageOrientationPatient
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
        if self.series:  # enhanced multi-frame images' geometry from their frames
            text += "\x1fseries/frames"
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
    if extras.series and not values.get("ImagePositionPatient"):
        values.update(frame_geometry(ds))
    for column in extras.columns:
        values.setdefault(column.header, column.value(ds))
    return values


def frame_geometry(ds: Dataset) -> dict[str, str]:
    r"""The frames' geometry of a multi-frame object that keeps it in functional groups
    (enhanced CT, MR and PET, SEG ...): each frame's ImagePositionPatient (its Plane
    Position Sequence) and ImageOrientationPatient (its Plane Orientation Sequence, else
    the shared one), under :data:`FRAME_POSITIONS` and :data:`FRAME_ORIENTATIONS`, frames
    in order separated by :data:`FRAME_SEPARATOR` ("" for a frame without one). ``{}``
    when ``ds`` has no per-frame groups or none holds a position, or they cannot be read.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> def frame(z):
    ...     item, plane = Dataset(), Dataset()
    ...     plane.ImagePositionPatient = ["0", "0", z]
    ...     item.PlanePositionSequence = [plane]
    ...     return item
    >>> ds, shared, plane = Dataset(), Dataset(), Dataset()
    >>> plane.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    >>> shared.PlaneOrientationSequence = [plane]
    >>> ds.SharedFunctionalGroupsSequence = [shared]
    >>> ds.PerFrameFunctionalGroupsSequence = [frame("0"), frame("2.5")]
    >>> geometry = frame_geometry(ds)
    >>> geometry["_FramePositions"].split(";")
    ['0\\0\\0', '0\\0\\2.5']
    >>> geometry["_FrameOrientations"].split(";")
    ['1\\0\\0\\0\\1\\0', '1\\0\\0\\0\\1\\0']
    """
    try:
        frames = ds.get("PerFrameFunctionalGroupsSequence")
        if not frames:
            return {}
        shared_groups = ds.get("SharedFunctionalGroupsSequence") or []
        shared = _plane(shared_groups[0], "PlaneOrientationSequence", _ORIENTATION_TAG) if (
            shared_groups
        ) else ""  # fmt: skip
        positions = [_plane(f, "PlanePositionSequence", _POSITION_TAG) for f in frames]
        orientations = [
            _plane(f, "PlaneOrientationSequence", _ORIENTATION_TAG) or shared for f in frames
        ]
    except Exception:  # a damaged sequence: no frame geometry (the series shows none)
        return {}
    if not any(positions):
        return {}
    return {
        FRAME_POSITIONS: FRAME_SEPARATOR.join(positions),
        FRAME_ORIENTATIONS: FRAME_SEPARATOR.join(orientations),
    }


def _plane(item: Dataset, sequence: str, tag: int) -> str:
    """The value of ``tag`` in the first item of ``item``'s ``sequence`` as text ("" if absent)."""
    inner = item.get(sequence)
    if not inner or tag not in inner[0]:
        return ""
    return element_text(inner[0], tag)
