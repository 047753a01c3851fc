"""Stable case -> project ID map, kept in a JSON file that is never half-written."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import DcmExtractorError
from ..outputs.atomic import write_atomic
from ..sources.names import readable

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
        text = source.read_bytes().decode("utf-8-sig")  # (an editor's BOM too)
    except UnicodeDecodeError as err:  # (Notepad's "ANSI": GBK on a Chinese Windows)
        raise DcmExtractorError(
            f"{source}: not UTF-8 text (byte {err.object[err.start]:#04x} at {err.start}); "
            "a project ID map is JSON, which is UTF-8: save it as UTF-8"
        ) from err
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        return {str(case): int(pid) for case, pid in data.items()}
    except (ValueError, TypeError) as err:
        raise DcmExtractorError(f"{source}: not a case -> project ID map: {err}") from err


def save_projectid_map(
    path: str | os.PathLike[str], mapping: Mapping[str, int], *, private: bool = False
) -> None:
    """Write the map atomically (temp file + rename): a crash leaves the old or the new file.
    ``private`` (a de-identified run's map, which re-identifies its tables): mode 0o600."""
    ordered = dict(sorted(mapping.items(), key=lambda item: item[1]))
    text = json.dumps(ordered, ensure_ascii=False, indent=2) + "\n"
    write_atomic(path, text.encode("utf-8"), private=private)


class ProjectIdMap:
    """Assigns IDs: known cases keep theirs, a new case gets the largest ID + 1.

    Every new assignment is saved at once, so a run that dies midway loses nothing.
    """

    def __init__(self, path: str | os.PathLike[str], *, private: bool = False) -> None:
        self.path = Path(path)
        self.private = private  # (saved readable by its owner only)
        self.ids = load_projectid_map(self.path)

    def assign(self, cases: list[str]) -> dict[str, int]:
        """IDs of ``cases`` (folder names as Python gives them); new ones numbered in the
        given order, saved once for all.

        The map's keys are the names as text (:func:`~dcm_extractor.sources.names.readable`: a
        GBK-named folder is its GB18030 reading). Two folders whose names read alike
        (a UTF-8 张三 beside a GBK one) must not share an ID: the later one's key adds its
        bytes in hex, ``张三 [d5c5c8fd]``.
        """
        keys: dict[str, str] = {}
        owners: dict[str, str] = {}
        for case in dict.fromkeys(cases):
            key = readable(case)
            if owners.setdefault(key, case) != case:
                key = f"{key} [{os.fsencode(case).hex()}]"
            keys[case] = key
        new = [key for key in keys.values() if key not in self.ids]
        start = max(self.ids.values(), default=0)
        for offset, key in enumerate(new, start=1):
            self.ids[key] = start + offset
        if new or self.private:  # (private: an earlier, readable map made private)
            save_projectid_map(self.path, self.ids, private=self.private)
        return {case: self.ids[keys[case]] for case in cases}

    def get(self, case: str) -> int:
        """The case's ID, assigning and saving a new one if needed."""
        return self.assign([case])[case]
