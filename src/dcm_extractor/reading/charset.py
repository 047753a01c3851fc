"""Character sets: how a text value's bytes become the text the tables show.

Both header readers use these rules, so they cannot drift apart: the fast reader
(:mod:`.fastheader`) decodes with them what it can and hands the rest to pydicom; pydicom's
full parse (:mod:`.fullparse`) applies them first and lets pydicom decode the rest.

The rules, in order, for a fixed text column (:func:`column_text`):

0. Only values whose VR is text (or implicit, or UN) are read by these rules; a text
   column in another VR (a name in ``UL``: a damaged header) is pydicom's to judge.
1. Bytes that cannot be in the declared character set are read as what they evidently
   are, with a note (:func:`repaired`): no SpecificCharacterSet (or ``ISO_IR 6``, ASCII)
   but other bytes -> UTF-8 or GB18030, whichever reads plausibly; ``ISO_IR 100``
   (Latin-1) holding valid multi-byte UTF-8 -> UTF-8.
2. ISO 2022 escape sequences, several values (a backslash) and person names with
   component groups (``=``) or empty trailing components are pydicom's to decode; the
   escape sequences are then taken out of its text (:func:`without_escapes`).
3. ASCII is ASCII; one character set without code extensions decodes with its Python
   codec (:func:`single_codec`); bytes that codec cannot decode are pydicom's (it
   replaces them and says so: the column is reported ``undecodable``).

Values beyond the fixed columns (``--columns``, the series attributes) follow
:func:`plain_value`, which gives pydicom's own text for the plain cases.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any, Final

from pydicom.charset import python_encoding

from .facts import TEXT_TAGS
from .letters import letters

__all__ = [
    "COLUMN_VRS",
    "TEXT_VRS",
    "column_text",
    "column_texts",
    "is_decode_warning",
    "is_text_vr",
    "plain_ascii",
    "plain_value",
    "repaired",
    "single_codec",
    "term_of",
    "without_escapes",
]

# An ISO 2022 escape sequence (PS3.5 6.1.2.5): ESC, intermediate bytes, one final byte.
_ESCAPE: Final = re.compile("\x1b[\x20-\x2f]+[\x30-\x7e]")


def without_escapes(text: str) -> str:
    """Text decoded from ISO 2022 bytes without the escape sequences left in it.

    Escape sequences switch character sets; they are not characters of the value
    (PS3.5 6.1.2.5.3). pydicom 3 leaves ``ESC $ ) A`` (GB2312, ISO 2022 IR 58) in the
    text it decodes, which then shows in tables as a control character.

    Examples
    --------
    >>> without_escapes("Zhang^San=\x1b$)A张^三")
    'Zhang^San=张^三'
    """
    return _ESCAPE.sub("", text) if "\x1b" in text else text


def term_of(raw: bytes) -> str:
    """The SpecificCharacterSet as its raw bytes spell it (``""`` when absent).

    Examples
    --------
    >>> term_of(b"ISO_IR 192")
    'ISO_IR 192'
    """
    return raw.decode("ascii", "replace").strip(" \x00")


@functools.lru_cache(maxsize=64)  # a data set repeats a handful of character sets
def single_codec(term: str) -> str | None:
    """The Python codec of one SpecificCharacterSet term without code extensions, else
    None (absent, several terms, ISO 2022, unknown).

    Examples
    --------
    >>> single_codec("GB18030"), single_codec("ISO 2022 IR 58"), single_codec("")
    ('GB18030', None, None)
    """
    if not term or "\\" in term or term.startswith("ISO 2022") or term not in python_encoding:
        return None
    return python_encoding[term]


def column_text(raw: bytes, term: str, person_name: bool = False) -> tuple[str, str] | None:
    """A fixed column's text from its raw bytes under SpecificCharacterSet ``term``, and a
    note when the bytes were not in that character set (``""`` otherwise); None when
    pydicom decodes it (see the module's rules).

    Examples
    --------
    >>> column_text(b"Doe^John ", "")
    ('Doe^John', '')
    >>> column_text("张三".encode("gb18030"), "")
    ('张三', 'no SpecificCharacterSet, not ASCII: read as GB18030')
    >>> column_text(b"A\\\\B", "") is None  # several values: pydicom's
    True
    """
    if raw.isascii():  # the common case first: one pass over the bytes
        if _for_pydicom(raw, person_name):
            return None
        return raw.decode("ascii").replace("\x00", "").strip(), ""
    if b"\x1b" not in raw:
        fixed = repaired(raw, term)
        if fixed is not None:
            return fixed[0].replace("\x00", "").strip(), fixed[1]
    codec = single_codec(term)
    if codec is None or _for_pydicom(raw, person_name):
        return None
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        return None  # pydicom replaces what does not decode, and says so
    return text.replace("\x00", "").strip(), ""


_PATIENT_NAME: Final = 0x00100010


def column_texts(
    raw: Mapping[int, bytes], term: str
) -> tuple[dict[str, str], list[str], list[int]]:
    """:func:`column_text` for every fixed text column (:data:`~.facts.TEXT_TAGS`) whose
    raw bytes ``raw`` holds: ``(texts by keyword, notes, tags left to pydicom)``, in the
    columns' order. One call per file: the readers' hot path (plain ASCII inline).
    """
    texts: dict[str, str] = {}
    notes: list[str] = []
    left: list[int] = []
    for keyword, tag in TEXT_TAGS:
        value = raw.get(tag)
        if value is None:
            continue
        if (
            value.isascii()
            and b"\x1b" not in value
            and b"\\" not in value
            and (tag != _PATIENT_NAME or not _for_pydicom(value, True))
        ):  # column_text's first branch, without the call
            texts[keyword] = value.decode("ascii").replace("\x00", "").strip()
            continue
        decoded = column_text(value, term, tag == _PATIENT_NAME)
        if decoded is None:
            left.append(tag)
            continue
        texts[keyword], note = decoded
        if note:
            notes.append(f"{keyword}: {note}")
    return texts, notes, left


def _for_pydicom(raw: bytes, person_name: bool) -> bool:
    """ISO 2022 escapes, several values, person names with component groups (``=``) or
    empty trailing components (pydicom's PersonName trims them its way)."""
    if b"\x1b" in raw or b"\\" in raw:
        return True
    return person_name and (b"=" in raw or raw.rstrip(b" \x00").endswith(b"^"))


def repaired(raw: bytes, term: str) -> tuple[str, str] | None:
    """A text value whose bytes cannot be in its declared character set, read as what they
    evidently are, with a note; None when the label fits.

    * No SpecificCharacterSet (the default repertoire is ASCII) but other bytes: UTF-8 when
      they are valid UTF-8, else GB18030 when valid (Chinese exports often omit the term);
      when both decode, the more plausible reading (:func:`letters`).
    * ISO_IR 100 (Latin-1) holding valid multi-byte UTF-8: read as UTF-8 (as Latin-1 it
      would be mojibake such as "å¼ ä¸‰").
    """
    if raw.isascii() or b"\x1b" in raw:
        return None
    if not term or term == "ISO_IR 6":
        readings: list[tuple[float, int, str, str]] = []
        for codec, name in (("utf-8", "UTF-8"), ("gb18030", "GB18030")):
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError:
                continue
            readings.append((letters(text), -len(readings), text, name))
        if not readings:
            return None
        _, _, text, name = max(readings)  # GBK bytes can be valid UTF-8 (住院: "סԺ")
        return text, f"no SpecificCharacterSet, not ASCII: read as {name}"
    if term == "ISO_IR 100":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return text, "labelled ISO_IR 100 (Latin-1) but UTF-8: read as UTF-8"
    return None


TEXT_VRS: Final = frozenset(
    {b"AE", b"AS", b"CS", b"DA", b"DS", b"DT", b"IS", b"LO", b"LT", b"SH", b"ST", b"TM",
     b"UC", b"UI", b"UR", b"UT"}
)  # fmt: skip
"""The VRs whose values :func:`plain_value` reads as text (as the file spells them)."""
_SINGLE_VALUED: Final = frozenset({b"LT", b"ST", b"UT", b"UR"})  # a backslash is text there
_CHARSET_VRS: Final = frozenset({b"LO", b"LT", b"SH", b"ST", b"UC", b"UT"})


_COLUMN_VRS: Final = frozenset({*TEXT_VRS, b"PN", b"UN"})
COLUMN_VRS: Final = frozenset({*_COLUMN_VRS, *(vr.decode("ascii") for vr in _COLUMN_VRS)})
"""The VRs :func:`column_text` reads (rule 0), as ``bytes`` (the fast walk's) and ``str``."""


def is_text_vr(vr: str | bytes | None) -> bool:
    """Whether a fixed column's element, with this VR as the file spells it (None:
    implicit VR), is read by :func:`column_text` (rule 0).

    Examples
    --------
    >>> is_text_vr("PN"), is_text_vr(None), is_text_vr(b"UL"), is_text_vr("ZZ")
    (True, True, False, False)
    """
    return vr is None or vr in COLUMN_VRS


def plain_value(raw: bytes, vr: bytes, codec: str | None) -> str | None:
    """An extra value's text as pydicom shows it (several values joined by a backslash),
    or None when pydicom must decode it: other VRs than text, escape sequences, bytes the
    character set (``codec``, :func:`single_codec`) cannot decode.

    Examples
    --------
    >>> plain_value(b"ORIGINAL\\\\PRIMARY ", b"CS", None)
    'ORIGINAL\\\\PRIMARY'
    >>> plain_value(b"\\x01\\x00", b"US", None) is None
    True
    """
    if vr not in TEXT_VRS or b"\x1b" in raw:
        return None
    if raw.isascii():
        text = raw.decode("ascii")
    elif codec is not None and vr in _CHARSET_VRS:
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            return None
    else:
        return None
    if text.isprintable():  # no control or separator characters but the space
        bare = text.strip(" ")
        if " " not in bare:  # nothing to strip around any backslash either
            return bare
    parts = [text] if vr in _SINGLE_VALUED else text.split("\\")
    return "\\".join(p.replace("\x00", "").strip() for p in parts)


def plain_ascii(values: Sequence[bytes]) -> list[str] | None:
    """What :func:`plain_value` gives for each of ``values`` (each in a text VR) when all
    are plain: ASCII, printable but for one NUL ending a value (a UID's padding), and
    without a space left once the spaces around it are stripped; None when any is not
    (then each goes to :func:`plain_value`). One pass over all the values, not one per value.

    Examples
    --------
    >>> plain_ascii([b"1.2.840.10008.5.1.4.1.1.2\\x00", b"12 ", b"", b"-100\\\\0\\\\10.5"])
    ['1.2.840.10008.5.1.4.1.1.2', '12', '', '-100\\\\0\\\\10.5']
    >>> plain_ascii([b"CT", b"HEAD FIRST"]) is None
    True
    """
    if not values:
        return []
    blob = b"\x1f".join(values)  # (a value holding the separator is no plain value: below)
    if not blob.isascii():
        return None
    text = blob.decode("ascii")
    if "\x00" in text:  # one NUL ending a value goes, as plain_value drops it
        text = text.replace("\x00\x1f", "\x1f")
        if text[-1:] == "\x00":
            text = text[:-1]
    parts = text.split("\x1f")
    if len(parts) != len(values) or not "".join(parts).isprintable():
        return None
    bare = list(map(str.strip, parts, repeat(" ")))
    return None if " " in "".join(bare) else bare


def is_decode_warning(record: Any) -> bool:
    """Whether a warning pydicom gave says a value did not decode in its character set."""
    message = str(getattr(record, "message", ""))
    return "decode" in message.lower() or "character set" in message.lower()
