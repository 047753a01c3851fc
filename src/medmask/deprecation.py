"""Warnings for the MedMask and medmask 0.1.3 names medmask keeps so old code runs.

Each old name warns once per process, naming what to use instead (nibabel's
``deprecator.py`` does the same), so old scripts run unchanged but not silently forever.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from types import FrameType
from typing import Final

from .errors import MedmaskDeprecationWarning

__all__ = ["check_legacy_codec", "user_stacklevel", "warn_deprecated", "warn_once"]

_PACKAGE_DIR: Final = str(Path(__file__).resolve().parent) + os.sep
_warned: set[str] = set()


def warn_deprecated(old: str, instead: str) -> None:
    """Warn once per process that ``old`` is kept for old code and ``instead`` is the way now."""
    warn_once(old, f"{old} is kept for MedMask/medmask 0.1.3 code; {instead}")


def warn_once(key: str, message: str) -> None:
    """Warn ``message`` (a :class:`MedmaskDeprecationWarning`) the first time ``key`` comes up."""
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(MedmaskDeprecationWarning(message), stacklevel=user_stacklevel())


def check_legacy_codec(codec: str | None, where: str) -> None:
    """medmask 0.1.3's ``codec=`` keyword: its one codec, "zstd", is accepted (and unused).

    Raises
    ------
    ValueError
        For any other name, as 0.1.3 did.
    """
    if codec is None:
        return
    if not isinstance(codec, str) or codec.lower() != "zstd":
        raise ValueError(f"Unknown codec {codec!r}. Available: ['zstd']")
    warn_deprecated(
        f"{where}(codec=...)", "medmask picks the codec of each mask itself; drop the argument"
    )


def user_stacklevel() -> int:
    """The stack level of the first frame outside medmask and the import machinery.

    So the warning points at the user's line, and Python's default filters show it there.
    """
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None:
        name = frame.f_code.co_filename
        if not (name.startswith(_PACKAGE_DIR) or name.startswith("<frozen importlib")):
            return level
        frame = frame.f_back
        level += 1
    return level
