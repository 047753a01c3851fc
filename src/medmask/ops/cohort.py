"""Whole cohorts: one archive per case of a cohort folder, resumable, on local processes
or a Dask cluster (docs/cohorts.md).

A cohort folder holds one folder per case - TotalSegmentator's ``<case>/segmentations/``
or ``<case>/segmentations.nii.gz``, or a folder of per-organ masks ``<case>/*.nii.gz`` -
or one multi-label file per case (``<case>.nii.gz``). Each case becomes
``ARCHIVES/<case>.mska``, written whole or not at all. Every finished case is recorded in
``ARCHIVES/.medmask-pack.jsonl`` with its fingerprint (its files' names, sizes and
modification times, and the options and series UIDs it was packed with); a run started
again - after it finished, was killed, the cohort grew or an option changed - packs only
cases that are new, changed, or failed before. A case that fails costs
only its own archive; the failures are listed in ``ARCHIVES/pack_failures.csv``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..codecs import DEFAULT_LEVEL
from ..errors import CohortBusyError, MedmaskError
from ..exchange.nifti import (
    DATASET_JSON,
    NIFTI_SUFFIXES,
    dataset_json,
    holds_label_map,
    is_label_table,
    is_nifti,
    label_table_file,
    nifti_stem,
)
from ..files.atomic import atomic_path
from ..files.locks import NO_LOCKS, lock_now
from ..files.names import readable
from .cluster import check_workers
from .pack import TOTALSEG_FOLDER, Job, PackFailure, PackResult, run_jobs
from .sources import natural_key

__all__ = [
    "FAILURES",
    "LAYOUTS",
    "MANIFEST",
    "CohortLayout",
    "CohortResult",
    "SeriesUIDs",
    "detect_cohort",
    "fingerprint",
    "pack_cohort",
    "read_series_map",
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

    def skipped_lines(
        self, most: int = 5, *, out_dir: str | os.PathLike[str] | None = None
    ) -> list[str]:
        """What is not a case, one line an entry; past ``most`` entries of one reason,
        one line for them all, counted by suffix (nnU-Net's ``--save_probabilities``
        leaves a ``.npz`` and a ``.pkl`` beside every prediction). ``out_dir``, the run's
        folder of archives when it lies in the cohort folder, is not said: it is the
        run's own."""
        by_reason: dict[str, list[str]] = {}
        for entry, why in self.skipped:
            if out_dir is not None and _same_folder(self.root / entry, Path(out_dir)):
                continue
            by_reason.setdefault(why, []).append(entry)
        lines = []
        for why, entries in by_reason.items():
            if len(entries) <= most:
                lines += [f"{self.root / entry}: not a case: {why}" for entry in entries]
                continue
            suffixes = Counter(Path(entry).suffix or "(no suffix)" for entry in entries)
            counted = ", ".join(f"{n:,} {suffix}" for suffix, n in suffixes.most_common())
            lines.append(
                f"{self.root}: {len(entries):,} entries are not cases: {why} ({counted}; "
                f"{entries[0]}, ...)"
            )
        return [readable(line) for line in lines]


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.is_dir() and b.is_dir() and a.samefile(b)
    except OSError:
        return False


_TOTALSEG = "TotalSegmentator case folders (<case>/segmentations/*.nii.gz)"
_TOTALSEG_ML = "TotalSegmentator multi-label files (<case>/segmentations.nii.gz)"
_MASKS = "folders of masks (<case>/*.nii.gz)"
_UNREADABLE = "folders that cannot be read (in pack_failures.csv)"
_LABEL_FILES = "multi-label files (<case>.nii.gz)"

LAYOUTS = ("auto", "folders", "label-files")


def detect_cohort(root: str | os.PathLike[str], layout: str = "auto") -> CohortLayout | None:
    """The cases of a cohort folder, or None when ``root`` is not one.

    Parameters
    ----------
    root : str or os.PathLike
        A folder of case folders (each ``segmentations/``, ``segmentations.nii.gz`` or
        per-organ ``*.nii.gz``), or of multi-label files (one per case).
    layout : {"auto", "folders", "label-files"}
        ``"auto"``: NIfTI files right in ``root`` are the cases when they are label maps
        (:func:`~medmask.exchange.nifti.holds_label_map`, asked of the first), else
        ``root`` is one case of masks (None); ``"folders"``: only case folders count;
        ``"label-files"``: the NIfTI files in ``root`` are the cases, whatever they hold.
    """
    if layout not in LAYOUTS:
        raise MedmaskError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    base = Path(root)
    if not base.is_dir():
        return None
    if layout == "auto" and (base / TOTALSEG_FOLDER).is_dir():
        return None  # one TotalSegmentator case (<case>/segmentations/ beside its image)
    entries = sorted(base.iterdir(), key=lambda p: natural_key(p.name))
    files = [p for p in entries if p.is_file() and is_nifti(p)]
    if layout == "label-files" or (layout == "auto" and files and holds_label_map(files[0])):
        return _label_files(base, entries) if files else None
    if files:
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
        try:
            source, kind = _case_source(entry)
        except OSError:  # (another account's folder): a case not packed, said as one
            source, kind = entry, _UNREADABLE
        if source is None:
            skipped.append((entry.name, kind))
            continue
        cases.append((entry.name, source))
        kinds[kind] = kinds.get(kind, 0) + 1
    if not cases:
        return None
    return CohortLayout(base, cases, kinds, skipped)


def _case_source(folder: Path) -> tuple[Path | None, str]:
    """What of a case folder is packed, and its layout (or None and why not a case)."""
    nested = folder / TOTALSEG_FOLDER
    if nested.is_dir():
        return nested, _TOTALSEG
    for suffix in NIFTI_SUFFIXES:  # TotalSegmentator --ml -o <case>/segmentations.nii.gz
        labels = folder / (TOTALSEG_FOLDER + suffix)
        if labels.is_file():
            return labels, _TOTALSEG_ML
    if any(p.is_file() and is_nifti(p) for p in folder.iterdir()):
        return folder, _MASKS
    return None, "holds no .nii/.nii.gz masks"


def _label_files(base: Path, entries: list[Path]) -> CohortLayout | None:
    """A cohort of multi-label files: each NIfTI file in ``base`` one case (its name's
    stem), its ``<stem>.json`` sidecar read with it."""
    cases: list[tuple[str, Path]] = []
    skipped: list[tuple[str, str]] = []
    stems = {nifti_stem(p) for p in entries if p.is_file() and is_nifti(p)}
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_file() and is_nifti(entry):
            cases.append((nifti_stem(entry), entry))
        elif entry.is_file() and entry.name.endswith(".json") and entry.name[:-5] in stems:
            continue  # a label sidecar
        elif entry.is_file() and entry.name == DATASET_JSON:
            continue  # nnU-Net's: the labels of every file (read with each)
        elif is_label_table(entry):
            continue  # ITK-SNAP's label descriptions, Slicer's colour tables: likewise
        else:
            what = "a folder" if entry.is_dir() else "not a .nii/.nii.gz file"
            skipped.append((entry.name, f"{what} among multi-label files"))
    if not cases:
        return None
    return CohortLayout(base, cases, {_LABEL_FILES: len(cases)}, skipped)


def fingerprint(source: Path, options: str = "") -> str:
    """What a case is now: its files' names, sizes and modification times (no reading; a
    multi-label file's JSON sidecar, nnU-Net dataset.json and label table included), and
    ``options`` (what it is packed with)."""
    digest = hashlib.sha256(options.encode())
    if source.is_file():
        sidecars = (
            source.with_name(nifti_stem(source) + ".json"),
            dataset_json(source.parent),
            label_table_file(source.parent, nifti_stem(source)),
        )
        files = [source, *(p for p in sidecars if p is not None and p.is_file())]
    else:
        files = sorted(p for p in source.iterdir() if p.is_file())
    for path in files:
        stat = path.stat()
        digest.update(os.fsencode(path.name) + f"\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


# The UIDs a series map gives a case: (SeriesInstanceUID, FrameOfReferenceUID, StudyInstanceUID)
SeriesUIDs = tuple[str, str | None, str | None]
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def read_series_map(path: str | os.PathLike[str]) -> dict[str, SeriesUIDs]:
    """A CSV file naming each case's image series: columns ``case`` and
    ``SeriesInstanceUID``, optionally ``FrameOfReferenceUID`` and ``StudyInstanceUID``
    (dcm-extract's ``all_series`` columns; a UTF-8 BOM as Excel writes it is fine).

    Raises
    ------
    MedmaskError
        The file cannot be read, lacks a column, names a case twice with different UIDs,
        or holds something that is not a DICOM UID (the row named).
    """
    file = Path(path)
    try:
        with file.open(encoding="utf-8-sig", newline="") as stream:
            rows = list(csv.DictReader(stream))
            columns = set(rows[0]) if rows else set()
    except UnicodeDecodeError as err:  # (Excel's "CSV" on a Chinese Windows is GBK)
        raise MedmaskError(
            f"{file}: the series map is not UTF-8 text (byte {err.object[err.start]:#04x} "
            f"at {err.start}): save it as UTF-8 (Excel: Save As, CSV UTF-8)"
        ) from err
    except (OSError, csv.Error) as err:
        raise MedmaskError(f"{file}: cannot read the series map: {err}") from err
    missing = [c for c in ("case", "SeriesInstanceUID") if c not in columns]
    if missing:
        raise MedmaskError(
            f"{file}: the series map needs the columns case and SeriesInstanceUID "
            f"(missing: {', '.join(missing)})"
            if rows
            else f"{file}: the series map is empty"
        )
    found: dict[str, SeriesUIDs] = {}
    for line, row in enumerate(rows, start=2):
        case = (row.get("case") or "").strip()
        uids = [(row.get(c) or "").strip() or None for c in _SERIES_COLUMNS]
        for column, uid in zip(_SERIES_COLUMNS, uids, strict=True):
            if uid is not None and (len(uid) > 64 or not _UID.match(uid)):
                raise MedmaskError(f"{file}, line {line}: {column} {uid!r} is not a DICOM UID")
        if not case or uids[0] is None:
            raise MedmaskError(f"{file}, line {line}: no case or no SeriesInstanceUID")
        entry = (uids[0], uids[1], uids[2])
        if found.setdefault(case, entry) != entry:
            raise MedmaskError(f"{file}, line {line}: case {case!r} is given another series")
    return found


_SERIES_COLUMNS = ("SeriesInstanceUID", "FrameOfReferenceUID", "StudyInstanceUID")


@dataclass
class CohortResult:
    """What :func:`pack_cohort` did."""

    layout: CohortLayout
    # the cases packed by this run (their PackResults go to on_done, not kept: a run's
    # memory stays flat in the number of cases)
    packed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # cases already packed, skipped
    failures: list[PackFailure] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)  # cases the series map does not name
    strangers: list[str] = field(default_factory=list)  # series map cases not in the cohort
    # (case, file name, reason): what packed cases held that is not a mask (a link to
    # nothing, TotalSegmentator's statistics.json ...), as PackResult.skipped says it
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def skipped_lines(self, most: int = 3) -> list[str]:
        """:attr:`skipped`, one line a file; a file name skipped for one reason in more than
        ``most`` cases, one line for them all (a ``statistics.json`` in every case)."""
        by_file: dict[tuple[str, str], list[str]] = {}
        for case, name, why in self.skipped:
            by_file.setdefault((name, why), []).append(case)
        sources = dict(self.layout.cases)
        lines = []
        for (name, why), cases in by_file.items():
            if len(cases) <= most:
                lines += [f"{sources.get(case, case)}: skipped {name}: {why}" for case in cases]
            else:
                lines.append(
                    f"{self.layout.root}: skipped {name} in {len(cases):,} cases "
                    f"({', '.join(cases[:most])}, ...): {why}"
                )
        return [readable(line) for line in lines]


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
    layout: str | CohortLayout = "auto",
    series: Mapping[str, SeriesUIDs] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[PackResult | PackFailure], None] | None = None,
) -> CohortResult:
    """Pack every case of the cohort ``root`` into ``out_dir/<case>.mska``.

    Parameters
    ----------
    root, out_dir : str or os.PathLike
        The cohort folder (:func:`detect_cohort`) and the folder of archives.
    groups, level, strict_geometry
        As :func:`~medmask.ops.pack.pack`. A case packed before with other values is
        packed again.
    workers : int
        Local processes (1: in this process).
    scheduler, scheduler_file : str, optional
        A Dask scheduler's address or JSON file: the cases run on its workers instead.
    overwrite : bool
        Replace archives in ``out_dir`` that no earlier run of this cohort wrote.
    layout : {"auto", "folders", "label-files"} or CohortLayout
        How to read ``root`` (:func:`detect_cohort`), or what detecting it gave already.
    series : Mapping[str, tuple], optional
        ``{case: (SeriesInstanceUID, FrameOfReferenceUID, StudyInstanceUID)}`` (the last
        two may be None; :func:`read_series_map`): recorded in each case's archive, so
        the catalog joins dcm-extract's series table.
    on_start, on_done : callable, optional
        Called with the number of cases to pack, and as each finishes (progress).

    Raises
    ------
    MedmaskError
        ``root`` is not a cohort folder, or the Dask scheduler cannot be reached.
    ValueError
        Without a scheduler, ``workers`` is not 1 to four a core
        (:func:`~medmask.ops.cluster.check_workers`).
    """
    if scheduler is None and scheduler_file is None:
        check_workers(workers)
    start = time.perf_counter()
    cohort = layout if isinstance(layout, CohortLayout) else detect_cohort(root, layout)
    if cohort is None:
        raise MedmaskError(
            f"{root}: not a cohort folder (one folder per case, each with .nii.gz masks, "
            "a segmentations/ folder of them or a segmentations.nii.gz; or one multi-label "
            ".nii.gz file per case)"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = CohortResult(cohort)
    if series is not None:
        names = {case for case, _ in cohort.cases}
        result.unmapped = [case for case, _ in cohort.cases if case not in series]
        result.strangers = sorted(case for case in series if case not in names)
    manifest = _Manifest(out / MANIFEST)
    try:
        _run(cohort, out, manifest, result, overwrite, on_start, on_done, (
            {"groups": groups, "level": level, "overwrite": True,
             "strict_geometry": strict_geometry},
            dict(series or {}), workers, scheduler, scheduler_file,
        ))  # fmt: skip
    finally:
        manifest.close()
    try:
        _write_failures(out / FAILURES, result.failures, cohort)
    except OSError as err:  # (a full disk: what failed must still be said)
        failed = "; ".join(f"{readable(str(f.source))}: {f.reason}" for f in result.failures)
        raise MedmaskError(
            f"{out / FAILURES}: {err.strerror or err}; {len(result.packed)} case(s) packed, "
            f"{len(result.failures)} failed: {failed}"
        ) from err
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
    how: tuple[dict[str, Any], dict[str, SeriesUIDs], int, str | None, str | None],
) -> None:
    """The cases not packed yet, packed; ``result`` and the manifest kept as they finish."""
    options, series, workers, scheduler, scheduler_file = how
    jobs: list[Job] = []
    prints: dict[Path, tuple[str, str]] = {}
    for case, source in layout.cases:
        target = out / f"{case}.mska"
        own = {"series": series[case]} if case in series else {}
        try:
            now = fingerprint(source, _options_text(options, own))
        except OSError as err:  # (a case folder this account may not read): its failure
            result.failures.append(PackFailure.of(source, err))
            continue
        if manifest.done(case, now, target):
            result.unchanged.append(case)
            continue
        if target.exists() and not overwrite and not manifest.wrote(case):
            result.failures.append(PackFailure(source, (
                f"{target} exists and no earlier run of this cohort wrote it; "
                "--overwrite replaces it"
            )))  # fmt: skip
            continue
        jobs.append((source, target, own))
        prints[source] = (case, now)
    # (claimed before any is packed: a run stopped after its workers wrote an archive but
    # before it recorded it left a file "no earlier run of this cohort wrote")
    manifest.claim([prints[source][0] for source, _, _ in jobs])
    if on_start is not None:
        on_start(len(jobs))
    for source, outcome in run_jobs(jobs, options, workers, scheduler, scheduler_file):
        if isinstance(outcome, PackResult):
            case, now = prints[source]
            manifest.record(case, str(source), now, outcome.target)
            result.packed.append(case)
            result.skipped += [(case, name, why) for name, why in outcome.skipped]
        else:
            result.failures.append(outcome)
        if on_done is not None:
            on_done(outcome)


def _options_text(options: Mapping[str, Any], own: Mapping[str, Any]) -> str:
    """What a case is packed with, as text for its fingerprint (the defaults give "": the
    fingerprints of a plain cohort are those of its files alone)."""
    chosen = {
        "groups": sorted((options.get("groups") or {}).items()),
        "level": options.get("level") or DEFAULT_LEVEL,
        "strict_geometry": bool(options.get("strict_geometry")),
        "series": list(own["series"]) if "series" in own else None,
    }
    if chosen == {"groups": [], "level": DEFAULT_LEVEL, "strict_geometry": False, "series": None}:
        return ""
    return json.dumps(chosen, sort_keys=True)


class _Manifest:
    """The finished cases of earlier runs, and this run's, appended as each finishes
    (a killed run keeps every line it wrote; a torn last line is ignored).

    Held by one run at a time: a second run packing into the folder at once would pack
    every case again beside the first and replace its list of failures. The lock (on the
    manifest, :func:`~medmask.files.locks.lock_now`) goes with the run's process, even
    after ``kill -9``; each run's first line names it (process, host, start; no paths),
    so a refused run can say who is packing. On a file system that does not lock files the
    run goes on unlocked: the archives' own locks warn of that as they are written.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        err = lock_now(self.lock)
        if err is not None and err.errno not in NO_LOCKS:
            os.close(self.lock)
            raise CohortBusyError(
                f"{path.parent}: another run is packing into it ({_holder(path)}); wait for it "
                "to end, or pack into another folder"
            )
        self.stream = path.open("a", encoding="utf-8")
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        self.stream.write(_line({"run": {
            "process": os.getpid(), "host": socket.gethostname(), "started": started,
        }}))  # fmt: skip
        self.stream.flush()
        # case -> (fingerprint, archive bytes, archive mtime): what done() compares
        self.entries: dict[str, tuple[object, object, object]] = {}
        self.claimed: set[str] = set()  # cases a run set out to pack (its archive's name)
        for line in _lines(path):
            try:
                entry = json.loads(line)
                if entry.get("claimed"):
                    self.claimed.add(str(entry["case"]))
                    continue
                self.entries[str(entry["case"])] = (
                    entry.get("fingerprint"), entry.get("archive_bytes"),
                    entry.get("archive_mtime_ns"),
                )  # fmt: skip
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # the last line of a killed run (or a run line)

    def done(self, case: str, now: str, target: Path) -> bool:
        entry = self.entries.get(case)
        if entry is None or entry[0] != now or not target.is_file():
            return False
        stat = target.stat()
        return entry[1:] == (stat.st_size, stat.st_mtime_ns)

    def wrote(self, case: str) -> bool:
        """Whether a run of this cohort wrote, or set out to write, the case's archive."""
        return case in self.entries or case in self.claimed

    def claim(self, cases: list[str]) -> None:
        """Record that this run sets out to pack ``cases`` (their archives are its own)."""
        fresh = [case for case in cases if case not in self.claimed and case not in self.entries]
        if not fresh:
            return
        self.stream.write("".join(_line({"case": case, "claimed": True}) for case in fresh))
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.claimed.update(fresh)

    def record(self, case: str, source: str, now: str, target: Path) -> None:
        stat = target.stat()
        entry = {
            "case": case, "source": source, "fingerprint": now, "archive": target.name,
            "archive_bytes": stat.st_size, "archive_mtime_ns": stat.st_mtime_ns,
        }  # fmt: skip
        self.stream.write(_line(entry))
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.entries[case] = (now, stat.st_size, stat.st_mtime_ns)

    def close(self) -> None:
        self.stream.close()
        os.close(self.lock)


def _holder(path: Path) -> str:
    """Who holds the manifest's lock, as its last run line says."""
    holder = "process unknown"
    for line in _lines(path):
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            run = json.loads(line)["run"]
            holder = f"process {int(run['process'])} on {run['host']}, started {run['started']}"
    return holder


def _line(entry: dict[str, Any]) -> str:
    """A manifest line: JSON, non-ASCII as it is unless a name is not UTF-8 (GBK: then
    kept as its escapes, so that the next run finds the case by it)."""
    line = json.dumps(entry, ensure_ascii=False)
    if readable(line) != line:
        line = json.dumps(entry)
    return line + "\n"


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
            case, source = names.get(failure.source, ""), str(failure.source)
            writer.writerow([readable(case), readable(source), readable(failure.reason)])
