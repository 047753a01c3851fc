"""How plausibly a reading of some bytes is a name: the share of letters of the scripts
names are written in. Decides between two readings that both decode - UTF-8 and GB18030
(a DICOM name without a character set, a file name): no dependencies, so that the
name-reading code loads nothing else."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["NOT_A_LETTER", "letters"]

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
    reading of a name's bytes is the name; on a tie UTF-8 wins (valid multi-byte UTF-8
    rarely happens by chance).

    Examples
    --------
    >>> letters("脾"), letters("Ƣ")
    (1.0, 0.0)
    """
    if not text:
        return 0.0
    return 1.0 - len(NOT_A_LETTER.findall(text)) / len(text)
