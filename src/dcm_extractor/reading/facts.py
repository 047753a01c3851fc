"""What reading one file gives: the values of an image (:class:`ImageFacts`), the reason a
file is not counted (:class:`Skip`), where its pixel data is (:class:`PixelInfo`), and the
header fields a verdict needs however they were read (:class:`HeaderFields`), and which
fields those are (:data:`TEXT_KEYWORDS`, :func:`series_key`). Values only: the fast reader
(:mod:`.tagwalk`, :mod:`.fastheader`) and pydicom's parse (:mod:`.fullparse`) both make
them, and :mod:`.verdict` judges them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from pydicom.datadict import tag_for_keyword

__all__ = [
    "SERIES_KEY_TAGS",
    "TEXT_KEYWORDS",
    "TEXT_TAGS",
    "HeaderFields",
    "ImageFacts",
    "PixelInfo",
    "Skip",
    "SkipReason",
    "series_key",
]

# The table's text columns, read from each image.
TEXT_KEYWORDS: Final = (
    "PatientName",
    "PatientID",
    "StudyDate",
    "PatientBirthDate",
    "PatientAge",
    "PatientSex",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "Manufacturer",
)
TEXT_TAGS: Final = tuple((keyword, int(tag_for_keyword(keyword) or 0)) for keyword in TEXT_KEYWORDS)
# What identifies a series without a SeriesInstanceUID: FrameOfReferenceUID, SeriesNumber,
# SeriesDescription, Modality, ImageOrientationPatient (and Rows, Columns).
SERIES_KEY_TAGS: Final = (0x00200052, 0x00200011, 0x0008103E, 0x00080060, 0x00200037)
_ORIENTATION: Final = 0x00200037


def series_key(raw: dict[int, bytes], rows: int | None, columns: int | None) -> str:
    """What identifies an image's series when it has no SeriesInstanceUID, from the raw
    values of :data:`SERIES_KEY_TAGS` (missing ones ``b""``): frame of reference, series
    number, description, modality, orientation (rounded to 1e-4) and matrix size.

    Examples
    --------
    >>> series_key({0x00200011: b"3 ", 0x00080060: b"CT"}, 512, 512)
    '|3||CT||512x512'
    """
    parts = []
    for tag in SERIES_KEY_TAGS:
        text = raw.get(tag, b"").strip(b" \x00").decode("latin-1")
        if tag == _ORIENTATION and text:
            try:
                numbers = [round(float(v), 4) + 0.0 for v in text.split("\\")]  # -0.0 -> 0.0
                text = ",".join(f"{v:g}" for v in numbers)
            except ValueError:
                pass
        parts.append(text)
    return "|".join([*parts, f"{rows or ''}x{columns or ''}"])


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
