"""File and folder names as text: any name the file system holds, UTF-8 or not.

Linux keeps names as bytes; Python gives a name that is not UTF-8 with its undecodable
bytes as lone surrogates (PEP 383: ``'\\udcd5\\udcc5'`` for the GBK bytes of 张三, what a
Windows copy of a Chinese hospital export gives). Such a string cannot be written as
UTF-8 (CSV, JSON, the log), so every name that goes into an output goes through
:func:`readable` first:

* a UTF-8 name is itself;
* otherwise its bytes are read as GB18030 (a superset of GBK and GB2312: Windows'
  Chinese code page) when they are valid GB18030, else as Latin-1 (every byte one
  character).

Both readings are one-to-one, so the original bytes come back by encoding the text again
(``readable(n).encode("gb18030")``, or ``"latin-1"``); :func:`original_bytes` does it,
and says which reading a text came from. Paths themselves (for opening files) stay as
Python gives them; only their text in outputs changes.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["is_utf8", "original_bytes", "readable", "reading_of"]

READINGS: Final = ("utf-8", "gb18030", "latin-1")


def is_utf8(name: str) -> bool:
    """Whether ``name`` came from UTF-8 bytes (holds no surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def reading_of(name: str) -> str:
    """Which reading :func:`readable` gives ``name``: ``utf-8``, ``gb18030`` or ``latin-1``."""
    if is_utf8(name):
        return "utf-8"
    raw = os.fsencode(name)
    try:
        raw.decode("gb18030")
    except UnicodeDecodeError:
        return "latin-1"
    return "gb18030"


def readable(name: str) -> str:
    """``name`` as text that can be written anywhere (see the module docstring).

    Examples
    --------
    >>> readable("张三")
    '张三'
    >>> readable(os.fsdecode("张三".encode("gbk")))
    '张三'
    >>> readable(os.fsdecode(b"bad\\xff.dcm"))
    'badÿ.dcm'
    """
    reading = reading_of(name)
    return name if reading == "utf-8" else os.fsencode(name).decode(reading)


def original_bytes(text: str, reading: str) -> bytes:
    """The name's bytes on disk, from its text and reading (inverse of :func:`readable`)."""
    if reading not in READINGS:
        raise ValueError(f"reading must be one of {READINGS}, got {reading!r}")
    return text.encode(reading)
