"""What earlier runs left in an ``--out`` that could name patients, removed before a
de-identified run writes there.

A de-identified run must leave an output folder that can be shared: no resume manifest
(it holds rows with names), no temporary files of a killed run (``.all_cases.csv.*.tmp``
hold rows too), no tables of an earlier identified run (``all_cases.parquet`` of a run
with other formats, ``<case name>.csv`` of cases since renamed). Only files that are
provably this tool's are removed: our exact table names, our temporary-file pattern, and
per-case tables whose content starts with our columns. Anything else is left alone.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = ["Leftovers", "remove_identifying_leftovers"]

_OUR_TEMP: Final = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")  # AtomicFile: .<name>.<random>.tmp
_DEIDENTIFIED_CASE: Final = re.compile(r"^P\d{6}(\.desensitized)?\.(csv|json)$")
_MERGED: Final = (
    "all_cases.csv",
    "all_cases.json",
    "all_cases.parquet",
    "all_cases_original.csv",
    "all_series.csv",
    "all_series.json",
    "all_series.parquet",
    "report.html",
)
# our CSV (with or without Excel's BOM) or JSON tables, by how they start
_TABLE_START: Final = re.compile(r'^\ufeff?(ProjectID,FileName,|\[\s*\{\s*"ProjectID")')


@dataclass
class Leftovers:
    """What was removed, by kind (counts only: the names may identify)."""

    manifests: int = 0
    temporary: int = 0
    tables: int = 0
    removed: list[Path] = field(default_factory=list)

    def line(self) -> str:
        """One line for the console and the log, without file names."""
        parts = []
        if self.manifests:
            parts.append(f"a resume manifest of {self.manifests} cases")
        if self.temporary:
            parts.append(f"{self.temporary} temporary files of an interrupted run")
        if self.tables:
            parts.append(f"{self.tables} tables of earlier identified runs")
        return ", ".join(parts)


def remove_identifying_leftovers(out: Path, manifest_dir: Path | None) -> Leftovers:
    """Remove from ``out`` what could name patients (see the module notes)."""
    found = Leftovers()
    manifest = out / ".manifest"
    keep_manifest = manifest_dir is not None and manifest.resolve() == manifest_dir.resolve()
    if manifest.is_dir() and not keep_manifest:
        found.manifests = sum(1 for _ in manifest.glob("*.json"))
        shutil.rmtree(manifest)
        found.removed.append(manifest)
    for path in sorted(out.iterdir()):
        if not path.is_file():
            continue
        if _OUR_TEMP.match(path.name):
            found.temporary += 1
        elif path.name in _MERGED or _is_case_table(path):
            found.tables += 1
        else:
            continue
        path.unlink()
        found.removed.append(path)
    return found


def _is_case_table(path: Path) -> bool:
    """A per-case table of an identified run: ours by its columns, not named P000001."""
    if path.suffix not in (".csv", ".json") or _DEIDENTIFIED_CASE.match(path.name):
        return False
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            start = handle.read(64)
    except OSError:
        return False
    return _TABLE_START.match(start) is not None
