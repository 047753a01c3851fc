"""``--move-top-level-zips``: zips lying directly under the data root become cases.

The one step that changes the user's input folder, so it is a step of its own, taken
before the scan starts (:func:`dcm_extractor.runner.pipeline.run` calls it first).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from .names import readable

__all__ = ["move_top_level_zips", "move_zips_into_cases"]

log = logging.getLogger(__name__)


def move_top_level_zips(root: str | os.PathLike[str]) -> list[tuple[Path, Path]]:
    """Move each ``root/x.zip`` to ``root/x/x.zip`` so it becomes a case; returns the moves.

    When ``root/x`` exists and is not a folder, or ``root/x/x.zip`` exists, a numeric
    suffix is added (``x_1``).
    """
    base = Path(root)
    moves = []
    for source in sorted(p for p in base.iterdir() if p.is_file() and p.suffix.lower() == ".zip"):
        folder = base / source.stem
        number = 0
        while folder.exists() and not folder.is_dir():
            number += 1
            folder = base / f"{source.stem}_{number}"
        folder.mkdir(exist_ok=True)
        target = folder / source.name
        number = 0
        while target.exists():
            number += 1
            target = folder / f"{source.stem}_{number}{source.suffix}"
        shutil.move(str(source), target)
        moves.append((source, target))
    return moves


def move_zips_into_cases(root: Path, *, name_them: bool) -> list[tuple[Path, Path]]:
    """:func:`move_top_level_zips`, logged: each move when ``name_them`` (never under
    de-identification: the names are the patients'), and how many."""
    moves = move_top_level_zips(root)
    for source, target in moves if name_them else []:
        log.info(
            "moved %s -> %s", readable(source.name), readable(target.relative_to(root).as_posix())
        )
    log.info("moved %d top-level zips into case folders", len(moves))
    return moves
