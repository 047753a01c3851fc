"""Stable case -> project ID map, kept in a JSON file that is never half-written."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from .atomic import write_atomic
from .errors import DcmExtractorError

__all__ = ["ProjectIdMap", "load_projectid_map", "save_projectid_map"]


def load_projectid_map(path: str | os.PathLike[str]) -> dict[str, int]:
    """``{case name: project ID}`` from ``path``; empty when the file does not exist.

    Raises
    ------
    DcmExtractorError
        The file is not a JSON object of integer IDs.
    """
    source = Path(path)
    if not source.exists():
        return {}
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        return {str(case): int(pid) for case, pid in data.items()}
    except (ValueError, TypeError) as err:
        raise DcmExtractorError(f"{source}: not a case -> project ID map: {err}") from err


def save_projectid_map(path: str | os.PathLike[str], mapping: Mapping[str, int]) -> None:
    """Write the map atomically (temp file + rename): a crash leaves the old or the new file."""
    ordered = dict(sorted(mapping.items(), key=lambda item: item[1]))
    text = json.dumps(ordered, ensure_ascii=False, indent=2) + "\n"
    write_atomic(path, text.encode("utf-8"))


class ProjectIdMap:
    """Assigns IDs: known cases keep theirs, a new case gets the largest ID + 1.

    Every new assignment is saved at once, so a run that dies midway loses nothing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.ids = load_projectid_map(self.path)

    def assign(self, cases: list[str]) -> dict[str, int]:
        """IDs of ``cases``; new ones numbered in the given order, saved once for all."""
        new = [case for case in dict.fromkeys(cases) if case not in self.ids]
        start = max(self.ids.values(), default=0)
        for offset, case in enumerate(new, start=1):
            self.ids[case] = start + offset
        if new:
            save_projectid_map(self.path, self.ids)
        return {case: self.ids[case] for case in cases}

    def get(self, case: str) -> int:
        """The case's ID, assigning and saving a new one if needed."""
        if case not in self.ids:
            self.ids[case] = max(self.ids.values(), default=0) + 1
            save_projectid_map(self.path, self.ids)
        return self.ids[case]
