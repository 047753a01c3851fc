"""Names in DICOM files (ROIName, SegmentLabel) as the bytes evidently are.

A data set says how its text is encoded in SpecificCharacterSet. Chinese planning
systems and PACS often leave it out and still write names in GBK (肝脏 as
``b'\xb8\xce\xd4\xe0'``), or label UTF-8 as ISO_IR 100 (Latin-1). pydicom reads the bytes of
both as Latin-1, which gives mojibake ("¸ÎÔà") but keeps every byte: :func:`dicom_name`
takes the bytes back and reads them as what they are, and says so. The same rules as
dcm-extract's (``dcm_extractor.reading.charset.repaired``):

* no SpecificCharacterSet, or ``ISO_IR 6`` (ASCII), but other bytes: UTF-8 or GB18030,
  whichever decodes and reads more plausibly (letters of the world's scripts, not
  symbols);
* ``ISO_IR 100`` holding valid multi-byte UTF-8: UTF-8.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from ...errors import MedmaskError, MedmaskWarning
from ...files.names import letters

__all__ = ["NAME_LIMIT", "cut_names", "dicom_name", "full_name", "read_names"]

NAME_LIMIT = 64  # ROIName and SegmentLabel are LO: at most 64 characters


def cut_names(names: list[str], what: str, description: str) -> list[str]:
    """``names`` as a LO element holds them (:data:`NAME_LIMIT` characters); a warning
    when any is cut, saying that ``description`` (the element keeping the whole name,
    which :func:`full_name` reads back) has it.

    Raises
    ------
    MedmaskError
        Two names are one once cut (a planning system takes ROI names for IDs).
    """
    cut = [name[:NAME_LIMIT] for name in names]
    long = [name for name in names if len(name) > NAME_LIMIT]
    if not long:
        return cut
    seen: dict[str, str] = {}
    for name, short in zip(names, cut, strict=True):
        other = seen.setdefault(short, name)
        if other != name:
            raise MedmaskError(
                f"{other!r} and {name!r} are one {what} once cut to the {NAME_LIMIT} "
                "characters DICOM allows: rename one (MaskArchive.rename)"
            )
    warnings.warn(
        MedmaskWarning(
            f"{len(long)} mask name(s) longer than the {NAME_LIMIT} characters a DICOM "
            f"{what} holds ({long[0]!r}{', ...' if len(long) > 1 else ''}): cut there; the "
            f"whole name is in {description}, which medmask reads back"
        ),
        stacklevel=3,
    )
    return cut


def full_name(name: str, description: object) -> str:
    """A name read from a LO element, whole again: ``description`` (SegmentDescription,
    ROIDescription) when ``name`` fills the element and the description begins with it
    (:func:`cut_names` wrote both), else ``name``.

    Examples
    --------
    >>> full_name("x" * 64, "x" * 70)
    'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
    >>> full_name("liver", "the liver, drawn by hand")
    'liver'
    """
    text = str(description or "")
    return text if len(name) == NAME_LIMIT and text.startswith(name) else name


_LATIN1_READ = frozenset({"", "ISO_IR 6", "ISO_IR 100"})  # what pydicom reads as Latin-1
# an ISO 2022 escape sequence (PS3.5 6.1.2.5.3): ESC, intermediate bytes, a final byte
_ESCAPE = re.compile("\x1b[\x20-\x2f]+[\x30-\x7e]")


def dicom_name(ds: Any, value: str) -> tuple[str, str | None]:
    r"""``value`` (pydicom's reading of a name in ``ds``) as its bytes evidently are, and
    why when that differs from pydicom's reading (else None).

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> dicom_name(Dataset(), "¸ÎÔà")  # GBK bytes, no SpecificCharacterSet
    ('肝脏', 'no SpecificCharacterSet, not ASCII: read as GB18030')
    >>> dicom_name(Dataset(), "liver")
    ('liver', None)
    >>> dicom_name(Dataset(), "Zhang^San=\x1b$)A张^三")  # (ISO 2022 IR 58: no escapes kept)
    ('Zhang^San=张^三', None)
    """
    if "\x1b" in value:  # ISO 2022 escape sequences pydicom 3 leaves in (ESC $ ) A ...)
        value = _ESCAPE.sub("", value)
    term = _term(ds)
    if value.isascii() or term not in _LATIN1_READ:
        return value, None
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:  # (not pydicom's Latin-1 reading)
        return value, None
    if term == "ISO_IR 100":
        try:
            return raw.decode("utf-8"), "labelled ISO_IR 100 (Latin-1) but UTF-8: read as UTF-8"
        except UnicodeDecodeError:
            return value, None
    readings: list[tuple[float, int, str, str]] = []
    for codec, name in (("utf-8", "UTF-8"), ("gb18030", "GB18030")):
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        readings.append((letters(text), -len(readings), text, name))
    if not readings:
        return value, None
    _, _, text, name = max(readings)  # (GBK bytes may be valid UTF-8 by chance)
    return text, f"no SpecificCharacterSet, not ASCII: read as {name}"


def read_names(ds: Any, values: list[str], what: str, where: str) -> tuple[list[str], list[str]]:
    """:func:`dicom_name` of each of ``values`` (names of one data set), and one note for
    each reason names were read otherwise than pydicom read them, naming ``where`` (the
    file) and ``what`` they are ("ROI names", "segment labels") and the names.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> names, notes = read_names(Dataset(), ["liver", "¸ÎÔà"], "ROI names", "rs.dcm")
    >>> names
    ['liver', '肝脏']
    >>> notes
    ['rs.dcm: 1 ROI names (肝脏): no SpecificCharacterSet, not ASCII: read as GB18030']
    """
    names: list[str] = []
    reasons: dict[str, list[str]] = {}
    for value in values:
        name, why = dicom_name(ds, value)
        names.append(name)
        if why is not None:
            reasons.setdefault(why, []).append(name)
    notes = [
        f"{where}: {len(read)} {what} ({', '.join(read)}): {why}" for why, read in reasons.items()
    ]
    return names, notes


def _term(ds: Any) -> str:
    """The data set's first (or only) SpecificCharacterSet term; "" when it has none."""
    terms = ds.get("SpecificCharacterSet", "")
    if not isinstance(terms, str):
        terms = terms[0] if len(terms) else ""
    return str(terms or "").strip()
