"""Whole cohorts: one archive per case of a cohort folder, resumable, on local processes
or a Dask cluster (docs/cohorts.md).

A cohort folder holds one folder per case: TotalSegmentator's ``<case>/segmentations/``
or a folder of per-organ masks ``<case>/*.nii.gz``. Each case becomes
``ARCHIVES/<case>.mska``, written whole or not at all. Every finished case is recorded in
``ARCHIVES/.medmask-pack.jsonl`` with the fingerprint of its files (names, sizes and
modification times); a run started again - after it finished, was killed, or the cohort
grew - packs only cases that are new, changed, or failed before. A case that fails costs
only its own archive; the failures are listed in ``ARCHIVES/pack_failures.csv``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MedmaskError
from ..exchange.nifti import is_nifti
from ..files.atomic import atomic_path
from .pack import TOTALSEG_FOLDER, PackFailure, PackResult, run_jobs

__all__ = [
    "FAILURES",
    "MANIFEST",
    "CohortLayout",
    "CohortResult",
    "detect_cohort",
    "fingerprint",
    "pack_cohort",
]

MANIFEST = ".medmask-pack.jsonl"
FAILURES = "pack_failures.csv"


@dataclass(frozen=True)
class CohortLayout:
    """The cases a cohort folder holds, and how they were recognised."""

    root: Path
    cases: list[tuple[str, Path]]  # (case name, the source pack reads), by name
    kinds: dict[str, int]  # layout -> cases found so
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (entry, why not a case)

    def describe(self) -> str:
        parts = [f"{count:,} {kind}" for kind, count in self.kinds.items()]
        return f"{self.root}: {len(self.cases):,} cases ({', '.join(parts)})"


_TOTALSEG = "TotalSegmentator case folders (<case>/segmentations/*.nii.gz)"
_MASKS = "folders of masks (<case>/*.nii.gz)"


def detect_cohort(root: str | os.PathLike[str]) -> CohortLayout | None:
    """The cases of a cohort folder, or None when ``root`` is not one (a file, or a
    folder that holds masks itself: one case)."""
    base = Path(root)
    if not base.is_dir():
        return None
    entries = sorted(base.iterdir(), key=lambda p: p.name)
    if any(p.is_file() and is_nifti(p) for p in entries):
        return None  # masks right here: a case, not a cohort
    cases: list[tuple[str, Path]] = []
    kinds: dict[str, int] = {}
    skipped: list[tuple[str, str]] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            skipped.append((entry.name, "not a case folder"))
            continue
        nested = entry / TOTALSEG_FOLDER
        if nested.is_dir():
            cases.append((entry.name, nested))
            kinds[_TOTALSEG] = kinds.get(_TOTALSEG, 0) + 1
        elif any(p.is_file() and is_nifti(p) for p in entry.iterdir()):
            cases.append((entry.name, entry))
            kinds[_MASKS] = kinds.get(_MASKS, 0) + 1
        else:
            skipped.append((entry.name, "holds no .nii/.nii.gz masks"))
    if not cases:
        return None
    return CohortLayout(base, cases, kinds, skipped)


def fingerprint(source: Path) -> str:
    """What a case's files are now: names, sizes and modification times (no reading)."""
    digest = hashlib.sha256()
    files = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.is_file())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


@dataclass
class CohortResult:
    """What :func:`pack_cohort` did."""

    layout: CohortLayout
    packed: list[PackResult] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # cases already packed, skipped
    failures: list[PackFailure] = field(default_factory=list)
    seconds: float = 0.0


def pack_cohort(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    groups: Mapping[str, str] | None = None,
    level: int | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    overwrite: bool = False,
    strict_geometry: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[PackResult | PackFailure], None] | None = None,
) -> CohortResult:
    """Pack every case of the cohort ``root`` into ``out_dir/<case>.mska``.

    Parameters
    ----------
    root, out_dir : str or os.PathLike
        The cohort folder (:func:`detect_cohort`) and the folder of archives.
    groups, level, strict_geometry
        As :func:`~medmask.ops.pack.pack`.
    workers : int
        Local processes (1: in this process).
    scheduler, scheduler_file : str, optional
        A Dask scheduler's address or JSON file: the cases run on its workers instead.
    overwrite : bool
        Replace archives in ``out_dir`` that no earlier run of this cohort wrote.
    on_start, on_done : callable, optional
        Called with the number of cases to pack, and as each finishes (progress).

    Raises
    ------
    MedmaskError
        ``root`` is not a cohort folder, or the Dask scheduler cannot be reached.
    """
    start = time.perf_counter()
    layout = detect_cohort(root)
    if layout is None:
        raise MedmaskError(
            f"{root}: not a cohort folder (one folder per case, each with .nii.gz masks "
            "or a segmentations/ folder of them)"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = CohortResult(layout)
    manifest = _Manifest(out / MANIFEST)
    try:
        _run(layout, out, manifest, result, overwrite, on_start, on_done, (
            {"groups": groups, "level": level, "overwrite": True,
             "strict_geometry": strict_geometry},
            workers, scheduler, scheduler_file,
        ))  # fmt: skip
    finally:
        manifest.close()
    _write_failures(out / FAILURES, result.failures, layout)
    result.seconds = time.perf_counter() - start
    return result


def _run(
    layout: CohortLayout,
    out: Path,
    manifest: _Manifest,
    result: CohortResult,
    overwrite: bool,
    on_start: Callable[[int], None] | None,
    on_done: Callable[[PackResult | PackFailure], None] | None,
    how: tuple[dict[str, Any], int, str | None, str | None],
) -> None:
    """The cases not packed yet, packed; ``result`` and the manifest kept as they finish."""
    jobs: list[tuple[Path, Path]] = []
    prints: dict[Path, tuple[str, str]] = {}
    for case, source in layout.cases:
        target = out / f"{case}.mska"
        now = fingerprint(source)
        if manifest.done(case, now, target):
            result.unchanged.append(case)
            continue
        if target.exists() and not overwrite and not manifest.wrote(case):
            result.failures.append(PackFailure(source, (
                f"{target} exists and no earlier run of this cohort wrote it; "
                "--overwrite replaces it"
            )))  # fmt: skip
            continue
        jobs.append((source, target))
        prints[source] = (case, now)
    if on_start is not None:
        on_start(len(jobs))
    options, workers, scheduler, scheduler_file = how
    for source, outcome in run_jobs(jobs, options, workers, scheduler, scheduler_file):
        if isinstance(outcome, PackResult):
            case, now = prints[source]
            manifest.record(case, str(source), now, outcome.target)
            result.packed.append(outcome)
        else:
            result.failures.append(outcome)
        if on_done is not None:
            on_done(outcome)


class _Manifest:
    """The finished cases of earlier runs, and this run's, appended as each finishes
    (a killed run keeps every line it wrote; a torn last line is ignored)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        for line in _lines(path):
            try:
                entry = json.loads(line)
                self.entries[str(entry["case"])] = entry
            except (ValueError, KeyError, TypeError):
                continue  # the last line of a killed run
        self.stream = path.open("a", encoding="utf-8")

    def done(self, case: str, now: str, target: Path) -> bool:
        entry = self.entries.get(case)
        if entry is None or entry.get("fingerprint") != now or not target.is_file():
            return False
        stat = target.stat()
        return bool(
            entry.get("archive_bytes") == stat.st_size
            and entry.get("archive_mtime_ns") == stat.st_mtime_ns
        )

    def wrote(self, case: str) -> bool:
        return case in self.entries

    def record(self, case: str, source: str, now: str, target: Path) -> None:
        stat = target.stat()
        entry = {
            "case": case, "source": source, "fingerprint": now, "archive": target.name,
            "archive_bytes": stat.st_size, "archive_mtime_ns": stat.st_mtime_ns,
        }  # fmt: skip
        self.stream.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.entries[case] = entry

    def close(self) -> None:
        self.stream.close()


def _lines(path: Path) -> Iterator[str]:
    if not path.is_file():
        return
    with path.open(encoding="utf-8", errors="replace") as stream:
        yield from stream


def _write_failures(path: Path, failures: list[PackFailure], layout: CohortLayout) -> None:
    """This run's failures, or no file when there are none (an old list is removed)."""
    if not failures:
        path.unlink(missing_ok=True)
        return
    names = {source: case for case, source in layout.cases}
    with atomic_path(path) as partial, Path(partial).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["case", "source", "reason"])
        for failure in failures:
            writer.writerow([names.get(failure.source, ""), str(failure.source), failure.reason])
