"""What reading one file gives: the values of an image (:class:`ImageFacts`), the reason a
file is not counted (:class:`Skip`), where its pixel data is (:class:`PixelInfo`), and the
header fields a verdict needs however they were read (:class:`HeaderFields`). Values only:
the fast reader (:mod:`.tagwalk`, :mod:`.fastheader`) and pydicom's parse
(:mod:`.header`) both make them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["HeaderFields", "ImageFacts", "PixelInfo", "Skip", "SkipReason"]

SkipReason = Literal[
    "empty", "not_dicom", "unreadable", "dicomdir", "non_image", "no_pixel_data", "truncated"
]


@dataclass(frozen=True)
class ImageFacts:
    """What the table needs from one image.

    ``values`` holds the text columns (``""`` when absent); ``undecodable`` names the
    columns whose bytes did not decode in the file's character set.
    """

    values: dict[str, str]
    rows: int | None
    columns: int | None
    sop_instance_uid: str
    undecodable: tuple[str, ...] = field(default=())
    charset_notes: tuple[str, ...] = field(default=())  # "PatientName: read as GB18030 ..."
    extra: dict[str, str] = field(default_factory=dict)  # what Extras asked for (extras.py)
    frames: int = 1  # NumberOfFrames
    series_key: str = ""  # without a SeriesInstanceUID: what identifies the series instead

    @property
    def series(self) -> str:
        """The image's series: its SeriesInstanceUID, or without one (blank), ``?`` and
        what does identify it (:func:`series_key`)."""
        return self.values.get("SeriesInstanceUID", "") or f"?{self.series_key}"


@dataclass(frozen=True)
class Skip:
    """A file that is not counted as an image, and why.

    ``facts`` holds the header values of a readable DICOM object that is not an image (a
    report, a header-only copy): a source with no image takes its row's values from them.
    """

    reason: SkipReason
    detail: str
    facts: ImageFacts | None = None


@dataclass(frozen=True)
class PixelInfo:
    """Where the pixel data is: declared ``length`` and file offset ``tell`` (None if unknown),
    or, when it was read in full, ``read_size``."""

    length: int | None
    tell: int | None
    read_size: int = 0


@dataclass(frozen=True)
class HeaderFields:
    """The header fields a verdict needs, however they were read."""

    meta_class: str = ""
    sop_class: str = ""
    sop_instance_uid: str = ""
    directory_records: bool = False
    text: dict[str, str] = field(default_factory=dict)
    undecodable: tuple[str, ...] = ()
    charset_notes: tuple[str, ...] = ()
    rows: int | None = None
    columns: int | None = None
    samples: int | None = 1
    bits: int | None = None
    frames: int | None = 1  # None: present but not a number
    photometric: str = ""
    pixel: PixelInfo | None = None
    extra: dict[str, str] = field(default_factory=dict)
    series_key: str = ""
