"""File and folder names as text: any name the file system holds, UTF-8 or not.

Linux keeps names as bytes; Python gives a name that is not UTF-8 with its undecodable
bytes as lone surrogates (PEP 383: ``'\\udcd5\\udcc5'`` for the GBK bytes of 张三, what a
Windows copy of a Chinese hospital export gives). Such a string cannot be written as
UTF-8 (CSV, JSON, the log), so every name that goes into an output goes through
:func:`readable` first:

* bytes that are UTF-8 and not GB18030 (a superset of GBK and GB2312: Windows' Chinese
  code page) are read as UTF-8, bytes that are GB18030 and not UTF-8 as GB18030;
* bytes that are both (GBK of one or two characters can be valid UTF-8: 脾, spleen,
  ``C6 A2``, is UTF-8 for Ƣ; 胃, stomach, ``CE B8``, for θ) in the reading of more
  letters of the scripts names are written in
  (:func:`~dcm_extractor.reading.charset.letters`), UTF-8 on a tie;
* anything else as Latin-1 (every byte one character).

Both readings are one-to-one, so the original bytes come back by encoding the text again
(``readable(n).encode("gb18030")``, or ``"latin-1"``); :func:`original_bytes` does it,
and says which reading a text came from. Paths themselves (for opening files) stay as
Python gives them; only their text in outputs changes.
"""

from __future__ import annotations

import codecs
import os
import re
import sys
from typing import Final

from ..reading.letters import NOT_A_LETTER, letters

__all__ = ["is_utf8", "nameless", "original_bytes", "readable", "reading_of", "sort_key"]

READINGS: Final = ("utf-8", "gb18030", "latin-1")
# Python gives names in the locale's encoding: UTF-8 almost everywhere, GBK on a server set
# up in Chinese (LANG=zh_CN.GBK), where a UTF-8 name such as 张三 comes as valid GBK text
# (寮犱笁), which only its bytes tell apart. The tables must not depend on the locale.
_FILE_SYSTEM_UTF8: Final = codecs.lookup(sys.getfilesystemencoding()).name == "utf-8"


def sort_key(name: str) -> str:
    """The key names are sorted by: the name as a UTF-8 locale gives it (its bytes read
    as UTF-8, the bytes that are not as surrogate escapes), so that case folders are
    numbered, and files read, in the same order in any locale."""
    if _FILE_SYSTEM_UTF8:
        return name
    try:
        return os.fsencode(name).decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # (not a name from the file system)
        return name


def is_utf8(name: str) -> bool:
    """Whether :func:`readable` reads ``name``'s bytes as UTF-8 (a name the locale's
    encoding cannot hold, not from the file system, is text already: UTF-8)."""
    return reading_of(name) == "utf-8"


def reading_of(name: str) -> str:
    """Which reading :func:`readable` gives ``name``: ``utf-8``, ``gb18030`` or ``latin-1``."""
    return _read(name)[1]


def readable(name: str) -> str:
    """``name`` as text that can be written anywhere (see the module docstring).

    Examples
    --------
    >>> readable("张三")
    '张三'
    >>> readable(os.fsdecode("张三".encode("gbk")))
    '张三'
    >>> readable(os.fsdecode("脾".encode("gbk")))  # (C6 A2: UTF-8 for Ƣ too)
    '脾'
    >>> readable(os.fsdecode(b"bad\\xff.dcm"))
    'badÿ.dcm'
    """
    return _read(name)[0]


def _read(name: str) -> tuple[str, str]:
    """(:func:`readable`, :func:`reading_of`) of ``name``, its bytes decoded once each."""
    if name.isascii() or (_FILE_SYSTEM_UTF8 and NOT_A_LETTER.search(name) is None):
        return name, "utf-8"  # (UTF-8 of letters only: no other reading has more; 0.3 us)
    raw = _bytes_of(name)
    if raw is None:
        return name, "utf-8"
    found: list[tuple[float, int, str, str]] = []
    for codec in ("utf-8", "gb18030"):
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        found.append((letters(text), -len(found), text, codec))
    if not found:
        return raw.decode("latin-1"), "latin-1"
    _, _, text, codec = max(found)
    return text, codec


def _bytes_of(name: str) -> bytes | None:
    """``name``'s bytes on disk; None when it did not come from the file system (the
    locale's encoding cannot hold it)."""
    if _FILE_SYSTEM_UTF8:
        return name.encode("utf-8", "surrogateescape")
    try:
        return os.fsencode(name)
    except UnicodeEncodeError:
        return None


def original_bytes(text: str, reading: str) -> bytes:
    """The name's bytes on disk, from its text and reading (inverse of :func:`readable`)."""
    if reading not in READINGS:
        raise ValueError(f"reading must be one of {READINGS}, got {reading!r}")
    return text.encode(reading)


# A text as Python's messages quote it (repr: 'a', "it's", 'a\\'b')
_QUOTED: Final = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def nameless(err: BaseException, *, message: bool = True, kind: bool = True) -> str:
    """What went wrong, for reports that name no patient (``--desensitize``'s): the error's
    kind, and its message with every quoted text left out (``'…'``) - the messages of
    zipfile quote member names (``Bad CRC-32 for file 'ZhangSan/IM1.dcm'``) - or, for an
    :class:`OSError` (whose text holds the path), the system's reason only. With
    ``message=False`` the kind alone (and an OSError's reason): for errors whose messages
    may hold a path unquoted; with ``kind=False`` the message alone (our own errors).

    Examples
    --------
    >>> nameless(PermissionError(13, "Permission denied", "/data/张三/a.zip"))
    'PermissionError: Permission denied'
    >>> nameless(ValueError("Bad CRC-32 for file 'ZhangSan/IM1.dcm'"))
    "ValueError: Bad CRC-32 for file '…'"
    >>> nameless(KeyError("/data/ZhangSan"), message=False)
    'KeyError'
    """
    name = type(err).__name__ if kind else ""
    if isinstance(err, OSError):
        text = err.strerror or ""
    else:
        text = _QUOTED.sub("'…'", str(err)) if message else ""
    return ": ".join(part for part in (name, text) if part) or type(err).__name__
