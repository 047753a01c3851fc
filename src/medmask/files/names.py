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
import re
import sys
from typing import Final

__all__ = ["NOT_A_LETTER", "letters", "readable", "reading"]

# Python gives names in the locale's encoding: UTF-8 almost everywhere, GBK on a server set
# up in Chinese (LANG=zh_CN.GBK), where a UTF-8 name such as 肝脏 comes as valid GBK text
# (鑲濊剰), which only its bytes tell apart.
_FILE_SYSTEM_UTF8: Final = codecs.lookup(sys.getfilesystemencoding()).name == "utf-8"


def readable(name: str) -> str:
    """``name`` as text any file can hold, the same in any locale: its bytes on disk read
    as UTF-8 or as GB18030 (what Chinese Windows writes), whichever they are - when they
    are both, the reading of more letters (:func:`letters`; UTF-8 on a tie) - else as
    Latin-1 (one character a byte). Each reading gives the bytes back when encoded. A
    name that did not come from the file system (the locale's encoding cannot hold it) is
    itself.

    Examples
    --------
    >>> readable("肝脏")
    '肝脏'
    >>> readable(os.fsdecode("肝脏".encode("gbk")))
    '肝脏'
    >>> readable(os.fsdecode("脾".encode("gbk")))  # (C6 A2: also UTF-8, for Ƣ)
    '脾'
    """
    if name.isascii() or (_FILE_SYSTEM_UTF8 and NOT_A_LETTER.search(name) is None):
        return name  # (UTF-8 of letters only: no other reading has more)
    return reading(name)[0]


def reading(name: str) -> tuple[str, str]:
    """(:func:`readable` of ``name``, the encoding it was read in: ``utf-8``,
    ``gb18030`` or ``latin-1``)."""
    if _FILE_SYSTEM_UTF8:
        try:
            raw = name.encode("utf-8")
        except UnicodeEncodeError:  # (surrogate escapes: bytes that are not UTF-8)
            raw = os.fsencode(name)
    else:
        try:
            raw = os.fsencode(name)
        except UnicodeEncodeError:  # (not a name from the file system)
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
    _, _, text, codec = max(found)  # (both: the reading of more letters, UTF-8 on a tie)
    return text, codec


# Letters of the scripts names are written in: ASCII; Latin-1's and Latin Extended-A's
# (the European languages'); Cyrillic; CJK punctuation and kana; CJK ideographs; Hangul;
# full-width forms. Not Latin Extended-B or Greek: their two-byte UTF-8 is the GBK of
# common one-character names - 脾 (spleen, C6 A2) reads as Ƣ, 胃 (stomach, CE B8) as θ.
NOT_A_LETTER: Final = re.compile(
    "[^\x00-\x7f\u00c0-\u017f\u0400-\u04ff\u3000-\u30ff\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]"
)


def letters(text: str) -> float:
    """The share of ``text``'s characters that are letters of a script names are written
    in (ASCII, Latin, Cyrillic, CJK, kana, Hangul, full-width forms): how plausibly a
    reading of a name's bytes is the name.

    Examples
    --------
    >>> letters("脾"), letters("Ƣ")
    (1.0, 0.0)
    """
    if not text:
        return 0.0
    return 1.0 - len(NOT_A_LETTER.findall(text)) / len(text)
