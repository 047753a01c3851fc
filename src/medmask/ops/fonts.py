"""A font that can draw a preview's legend: mask names in Chinese, Japanese, Korean ...

Pillow's own font has Latin letters only; it draws any other letter as an empty box, so
a legend of ``肝脏`` and ``脾脏`` shows two identical rows of boxes. :func:`legend_font`
takes the first font that has a glyph for every letter of the texts: the one the caller
names, Pillow's own, then fonts systems keep their Chinese letters in (:data:`FONT_FILES`:
Noto CJK and WenQuanYi on Linux, PingFang on macOS, Microsoft YaHei and SimSun on
Windows), then any font fontconfig (``fc-list``) knows to have those letters. Where no
font has them all, the texts it cannot draw are listed (:attr:`LegendFont.missing`)
for the caller to draw otherwise, never as boxes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from ..errors import MedmaskError
from ..lazy import lazy_module

if TYPE_CHECKING:
    from PIL import ImageFont
else:
    ImageFont = lazy_module("PIL.ImageFont")

__all__ = ["FONT_FILES", "LegendFont", "covers", "legend_font", "system_fonts"]

Font: TypeAlias = "ImageFont.FreeTypeFont | ImageFont.ImageFont"

# Where systems keep fonts with Chinese letters (most also have Japanese and Korean ones)
FONT_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian, Ubuntu: fonts-noto-cjk
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",  # Fedora
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",  # Arch
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # fonts-wqy-microhei
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # fonts-wqy-zenhei
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",  # macOS
    "/System/Library/Fonts/STHeiti Light.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyh.ttc",  # Windows: Microsoft YaHei
    "C:/Windows/Fonts/simsun.ttc",
    "C:/Windows/Fonts/malgun.ttf",  # Korean
    "C:/Windows/Fonts/meiryo.ttc",  # Japanese
)
_ASKED_MOST = 200  # letters fontconfig is asked about (one command line)
_NO_GLYPH = "\U000effff"  # a private-use code point no font draws: its box is the font's


@dataclass(frozen=True)
class LegendFont:
    """The font chosen, its file (None: Pillow's own) and the texts it cannot draw."""

    font: Font
    path: str | None
    missing: tuple[str, ...]


def covers(font: Font, text: str) -> bool:
    """Whether ``font`` has a glyph for every letter of ``text`` (white space aside).

    A letter the font lacks is drawn as its "no glyph" box (or as nothing), the same
    picture for every such letter; a letter it has is drawn otherwise.

    Examples
    --------
    >>> from PIL import ImageFont
    >>> font = ImageFont.load_default(size=14)
    >>> covers(font, "liver left"), covers(font, "肝脏")
    (True, False)
    """
    box = _picture(font, _NO_GLYPH)
    return all(_picture(font, letter) != box for letter in set(text) if not letter.isspace())


def legend_font(
    texts: Iterable[str], size: int, font: str | os.PathLike[str] | None = None
) -> LegendFont:
    """The first font that draws every one of ``texts``: ``font``, Pillow's own, the
    systems' (:func:`system_fonts`); else the one that draws the most of them.

    Raises
    ------
    MedmaskError
        ``font`` is given and is not a font file Pillow can read.
    """
    wanted = tuple(dict.fromkeys(texts))
    letters = "".join(
        sorted({letter for text in wanted for letter in text if not letter.isascii()})
    )
    best: LegendFont | None = None
    for path, candidate in _candidates(size, font, letters):
        missing = tuple(text for text in wanted if not covers(candidate, text))
        if best is None or len(missing) < len(best.missing):
            best = LegendFont(candidate, path, missing)
        if not missing:
            break
    assert best is not None  # (Pillow's own font is always a candidate)
    return best


def system_fonts(letters: str = "") -> Iterator[str]:
    """The files of :data:`FONT_FILES` that exist here, then those ``fc-list`` names as
    having all of ``letters`` (where fontconfig is installed), each once."""
    seen: set[str] = set()
    for path in (*[p for p in FONT_FILES if Path(p).is_file()], *_fontconfig(letters)):
        if path not in seen:
            seen.add(path)
            yield path


def _candidates(
    size: int, font: str | os.PathLike[str] | None, letters: str
) -> Iterator[tuple[str | None, Font]]:
    if font is not None:
        path = os.fspath(font)
        try:
            yield path, ImageFont.truetype(path, size)
        except OSError as err:
            raise MedmaskError(f"{path}: not a font file that can be read ({err})") from err
    yield None, _pillow_font(size)
    for path in system_fonts(letters[:_ASKED_MOST]):
        try:
            yield path, ImageFont.truetype(path, size)
        except OSError:  # a damaged or unreadable font file: the next
            continue


def _fontconfig(letters: str) -> Sequence[str]:
    fc_list = shutil.which("fc-list")
    if fc_list is None or not letters:
        return ()
    charset = " ".join(f"{ord(letter):x}" for letter in letters)
    try:
        done = subprocess.run(
            [fc_list, f":charset={charset}", "file"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    files = (line.strip().rstrip(":").strip() for line in done.stdout.splitlines())
    return sorted(f for f in files if f)


def _pillow_font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ValueError, TypeError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def _picture(font: Font, letter: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(letter)
    return mask.size, bytes(mask)
