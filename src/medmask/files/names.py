"""File and folder names as text, whatever bytes the file system holds.

Linux keeps names as bytes, and a folder copied from Chinese Windows keeps its GBK names
(``王小明`` as ``b'\\xcd\\xf5\\xd0\\xa1\\xc3\\xf7'``). Python gives such a name with each byte
that is not UTF-8 as a lone surrogate (PEP 383), which no UTF-8 file - an archive's
index, a catalog, a CSV - can hold. Paths stay as Python gives them for opening files;
a name that goes into an output goes through :func:`readable` first.
"""

from __future__ import annotations

import codecs
import os
import sys
from typing import Final

__all__ = ["readable"]

_READINGS = ("utf-8", "gb18030", "latin-1")  # GB18030: a superset of GBK; Latin-1: any byte
# Python gives names in the locale's encoding: UTF-8 almost everywhere, GBK on a server set
# up in Chinese (LANG=zh_CN.GBK), where a UTF-8 name such as 肝脏 comes as valid GBK text
# (鑲濊剰), which only its bytes tell apart.
_FILE_SYSTEM_UTF8: Final = codecs.lookup(sys.getfilesystemencoding()).name == "utf-8"


def readable(name: str) -> str:
    """``name`` as text any file can hold, the same in any locale: its bytes on disk read
    as UTF-8 when they are that, else as GB18030 (what Chinese Windows writes) when they
    are that, else as Latin-1 (one character a byte). Either reading gives the bytes back
    when encoded. A name that did not come from the file system (the locale's encoding
    cannot hold it) is itself.

    Examples
    --------
    >>> readable("肝脏")
    '肝脏'
    >>> readable(os.fsdecode("肝脏".encode("gbk")))
    '肝脏'
    """
    if _FILE_SYSTEM_UTF8:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return name
    try:
        raw = os.fsencode(name)
    except UnicodeEncodeError:  # (not a name from the file system)
        return name
    for reading in _READINGS:
        try:
            return raw.decode(reading)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 reads any byte")  # pragma: no cover
