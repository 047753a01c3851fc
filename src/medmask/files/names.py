"""File and folder names as text, whatever bytes the file system holds.

Linux keeps names as bytes, and a folder copied from Chinese Windows keeps its GBK names
(``王小明`` as ``b'\\xcd\\xf5\\xd0\\xa1\\xc3\\xf7'``). Python gives such a name with each byte
that is not UTF-8 as a lone surrogate (PEP 383), which no UTF-8 file - an archive's
index, a catalog, a CSV - can hold. Paths stay as Python gives them for opening files;
a name that goes into an output goes through :func:`readable` first.
"""

from __future__ import annotations

import os

__all__ = ["readable"]

_READINGS = ("gb18030", "latin-1")  # GB18030: a superset of GBK; Latin-1 reads any byte


def readable(name: str) -> str:
    """``name`` as text any file can hold: itself when it came from UTF-8 bytes, else its
    bytes read as GB18030 (what Chinese Windows writes) when they are that, else as
    Latin-1 (one character a byte). Either reading gives the bytes back when encoded.

    Examples
    --------
    >>> readable("肝脏")
    '肝脏'
    >>> readable(os.fsdecode("肝脏".encode("gbk")))
    '肝脏'
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(name)
    else:
        return name
    for reading in _READINGS:
        try:
            return raw.decode(reading)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 reads any byte")  # pragma: no cover
