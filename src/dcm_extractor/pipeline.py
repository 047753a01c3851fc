"""One extraction run: scan the cases (here, in a process pool or on Dask), write the tables.

:func:`run` is what the command line calls; :mod:`dcm_extractor.extractor` keeps the
original tool's API and command line around it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import multiprocessing
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .cases import CaseResult, ReportEntry, iter_case_dirs, scan_case
from .cluster import scan_on_cluster
from .errors import DcmExtractorError
from .isolation import CaseFailedError, scan_case_isolated
from .manifest import Manifest, case_fingerprint
from .privacy import DateMode, Pseudonymizer, deidentify_rows
from .projectids import ProjectIdMap, write_atomic
from .tables import write_csv, write_json, write_parquet, write_report

__all__ = ["REPORT_NAME", "RunOptions", "RunSummary", "move_top_level_zips", "run", "with_ids"]

log = logging.getLogger(__name__)

REPORT_NAME = "extraction_report.csv"


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


def with_ids(rows: list[dict[str, Any]], project_id: int | None) -> list[dict[str, Any]]:
    return [{**row, "ProjectID": project_id} for row in rows]


@dataclass(frozen=True)
class RunOptions:
    """What one run does (the command-line options)."""

    data_root: Path
    out: Path
    merge_all: bool = False
    only_merged: bool = False
    move_top_level_zips: bool = False
    export_json: bool = False
    desensitize: bool = False
    projectid_map: Path | None = None
    excel: bool = False
    formats: tuple[str, ...] = ("csv",)
    case_timeout: float | None = None
    workers: int = 1
    resume: bool = True
    manifest_dir: Path | None = None
    scheduler: str | None = None
    scheduler_file: str | None = None
    pseudonymizer: Pseudonymizer = field(default_factory=Pseudonymizer)
    dates: DateMode = "remove"


@dataclass
class RunSummary:
    """The counts of a run; ``files == images + skipped`` over the completed cases."""

    cases: int = 0
    failed: int = 0
    rows: int = 0
    files: int = 0
    images: int = 0
    skipped: int = 0
    handed_over: int = 0  # headers the fast reader left to pydicom's full parse
    reused: int = 0  # cases unchanged since a recorded run, not scanned again
    report: list[ReportEntry] = field(default_factory=list)

    def line(self) -> str:
        """One human summary line."""
        return (
            f"{self.cases} cases ({self.failed} failed, {self.reused} unchanged), "
            f"{self.rows} rows; "
            f"{self.files} files: {self.images} images + {self.skipped} skipped "
            f"(pydicom's full parse took over for {self.handed_over})"
        )


def run(options: RunOptions, progress: Callable[[str], None] | None = None) -> RunSummary:
    """Scan every case under ``options.data_root`` and write the outputs into ``options.out``.

    With ``options.desensitize`` the log and the report name no case, file or patient:
    cases appear as ``P<ProjectID>`` and files by their position in the case.
    """
    root, out = options.data_root, options.out
    if not root.is_dir():
        raise DcmExtractorError(f"data root {root} does not exist or is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    private = options.desensitize
    if options.move_top_level_zips:
        _move_zips(root, private)
    ids = ProjectIdMap(options.projectid_map or out / "case_projectid_map.json")
    summary = RunSummary()
    _report_root_files(root, summary)
    merged: list[dict[str, Any]] = []
    labels: dict[str, str] = {}
    case_dirs = iter_case_dirs(root)
    for case_dir in case_dirs:  # IDs in case order, whatever order the scans finish in
        labels[case_dir.name] = f"P{ids.get(case_dir.name):06d}"
    manifest = _manifest(options)
    fingerprints, reused = _recorded_cases(manifest, case_dirs, ids)
    summary.reused = len(reused)
    for case_dir, outcome in _scan_all(case_dirs, root, options, reused):
        summary.cases += 1
        project_id = ids.get(case_dir.name)
        shown = labels[case_dir.name] if private else case_dir.name
        try:
            result = outcome()
        except (CaseFailedError, OSError) as err:
            summary.failed += 1
            reason = err.reason if isinstance(err, CaseFailedError) else type(err).__name__
            summary.report.append(
                ReportEntry(case_dir.name, case_dir.name, "case_failed", reason, str(err))
            )
            log.error("case %s failed: %s", shown, reason if private else err)
            if progress:
                progress(shown)
            continue
        rows = with_ids(result.rows, project_id)
        _write_case(options, result, rows)
        if manifest is not None and case_dir.name not in reused:  # after its outputs
            manifest.store(project_id, fingerprints[case_dir.name], result)
        merged.extend(rows)
        summary.rows += len(rows)
        summary.files += result.files
        summary.images += result.images
        summary.skipped += result.skipped
        summary.handed_over += result.handed_over
        summary.report.extend(result.report)
        log.info(
            "case %s: %d rows, %d images, %d skipped",
            shown,
            len(rows),
            result.images,
            result.skipped,
        )
        if progress:
            progress(shown)
    if options.merge_all or options.only_merged:
        _write_merged(options, sorted(merged, key=lambda row: row["ProjectID"]))
    write_report(
        out / REPORT_NAME, summary.report, excel=options.excel, labels=labels if private else None
    )
    _write_provenance(options)
    return summary


def _scan_one(case_dir: Path, root: Path, timeout: float | None) -> CaseResult:
    """One case: in this process, or in a child process with a deadline."""
    if timeout:
        return scan_case_isolated(case_dir, root, timeout)
    return scan_case(case_dir, root)


def _move_zips(root: Path, private: bool) -> None:
    moves = move_top_level_zips(root)
    for source, target in [] if private else moves:  # zip names can carry patient names
        log.info("moved %s -> %s", source.name, target.relative_to(root).as_posix())
    log.info("moved %d top-level zips into case folders", len(moves))


def _manifest(options: RunOptions) -> Manifest | None:
    """Where finished cases are recorded; none for de-identified runs unless told where."""
    if not options.resume:
        return None
    if options.manifest_dir is not None:
        return Manifest(options.manifest_dir)
    if options.desensitize:
        log.info(
            "--desensitize: no resume manifest in --out (it would hold names); see --manifest-dir"
        )
        return None
    return Manifest(options.out / ".manifest")


def _recorded_cases(
    manifest: Manifest | None, case_dirs: list[Path], ids: ProjectIdMap
) -> tuple[dict[str, str], dict[str, CaseResult]]:
    """Every case's fingerprint, and the results of those unchanged since they were recorded."""
    if manifest is None:
        return {}, {}
    fingerprints = {d.name: case_fingerprint(d) for d in case_dirs}
    reused = {}
    for case_dir in case_dirs:
        hit = manifest.load(ids.get(case_dir.name), fingerprints[case_dir.name])
        if hit is not None:
            reused[case_dir.name] = hit
    return fingerprints, reused


def _scan_all(
    case_dirs: list[Path], root: Path, options: RunOptions, reused: dict[str, CaseResult]
) -> Iterator[tuple[Path, Callable[[], CaseResult]]]:
    """Each case with a callable giving its result (or raising), in case order.

    Cases in ``reused`` are not scanned again. With several workers the others (each a
    batch of files) run in a process pool; a worker that dies costs its case, reported
    as failed, not the run.
    """
    if options.scheduler or options.scheduler_file:
        scan = functools.partial(_scan_one, root=root, timeout=options.case_timeout)
        yield from scan_on_cluster(
            case_dirs, reused, scan, options.scheduler, options.scheduler_file
        )
        return
    todo = [d for d in case_dirs if d.name not in reused]
    futures: dict[str, Callable[[], CaseResult]] = {}
    pool = None
    if options.workers > 1 and len(todo) > 1:
        context = multiprocessing.get_context(
            "fork" if sys.platform.startswith("linux") else "spawn"
        )
        pool = ProcessPoolExecutor(options.workers, mp_context=context)
        for case_dir in todo:
            future = pool.submit(_scan_one, case_dir, root, options.case_timeout)
            futures[case_dir.name] = functools.partial(_result_of, case_dir, future)
    try:
        for case_dir in case_dirs:
            if case_dir.name in reused:
                yield case_dir, functools.partial(reused.__getitem__, case_dir.name)
            elif case_dir.name in futures:
                yield case_dir, futures[case_dir.name]
            else:
                yield case_dir, functools.partial(_scan_one, case_dir, root, options.case_timeout)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _result_of(case_dir: Path, future: Future[CaseResult]) -> CaseResult:
    try:
        return future.result()
    except BrokenProcessPool as err:
        raise CaseFailedError(case_dir.name, "its worker process died") from err


def _report_root_files(root: Path, summary: RunSummary) -> None:
    """Files directly under the data root are not cases: counted and reported."""
    detail = "not a case: a file directly under the data root (zips: --move-top-level-zips)"
    for index, path in enumerate(sorted(p for p in root.iterdir() if not p.is_dir())):
        summary.files += 1
        summary.skipped += 1
        entry = ReportEntry("", path.name, "not_in_case", detail, "", f"root-file{index:05d}")
        summary.report.append(entry)


def _hidden(options: RunOptions, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return deidentify_rows(rows, options.pseudonymizer, options.dates)


def _write_case(options: RunOptions, result: CaseResult, rows: list[dict[str, Any]]) -> None:
    if options.only_merged:
        return
    out, excel = options.out, options.excel
    hidden = _hidden(options, rows)
    name = f"P{rows[0]['ProjectID']:06d}" if options.desensitize and rows else result.name
    if options.desensitize and name != result.name:
        for stale in (
            f"{result.name}.csv",
            f"{result.name}.desensitized.csv",
            f"{result.name}.json",
        ):
            (out / stale).unlink(missing_ok=True)  # an earlier, identifying run's files
    write_csv(out / f"{name}.csv", hidden if options.desensitize else rows, excel=excel)
    write_csv(out / f"{name}.desensitized.csv", hidden, excel=excel)
    if options.export_json:
        write_json(out / f"{name}.json", hidden if options.desensitize else rows)


def _write_merged(options: RunOptions, rows: list[dict[str, Any]]) -> None:
    out, excel = options.out, options.excel
    hidden = _hidden(options, rows)
    primary = hidden if options.desensitize else rows
    writers: dict[str, Callable[[Path, list[dict[str, Any]]], None]] = {
        "csv": lambda p, r: write_csv(p, r, excel=excel),
        "json": write_json,
        "parquet": write_parquet,
    }
    for fmt in options.formats:
        writers[fmt](out / f"all_cases.{fmt}", primary)
    write_csv(out / "all_cases_desensitized.csv", hidden, excel=excel)
    if options.desensitize:
        stale = out / "all_cases_original.csv"
        if stale.exists():  # an earlier run's: it holds the names this run must not leave behind
            stale.unlink()
            log.info("--desensitize: removed all_cases_original.csv of an earlier run")
        log.info(
            "--desensitize: all_cases_original.csv is not written (it would hold patient names)"
        )
    else:
        write_csv(out / "all_cases_original.csv", rows, excel=excel)


def _write_provenance(options: RunOptions) -> None:
    """How the de-identified tables were made (never the key), beside them."""
    pseudonymizer = options.pseudonymizer
    record = {
        "tool": f"medkit dcm_extractor {__version__}",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "pseudonyms": pseudonymizer.method,
        "key_fingerprint": pseudonymizer.fingerprint,
        "reversible_by_dictionary": not pseudonymizer.keyed,
        "PatientName": "pseudonym",
        "PatientID": "pseudonym",
        "PatientBirthDate": "removed (PatientAge kept)",
        "StudyDate": {
            "remove": "removed",
            "keep": "kept",
            "shift": "shifted by a per-patient offset (key-derived)",
        }[options.dates],
        "FileName": "replaced by P<ProjectID>_<n>.zip / P<ProjectID>.dir",
        "kept": (
            "StudyInstanceUID, SeriesInstanceUID, Modality, Manufacturer, PatientSex, "
            "PatientAge, Rows, Columns, counts"
        ),
        "profile": (
            "after DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile; "
            "pseudonymized, not anonymized"
        ),
        "applies_to": "*.desensitized.csv, all_cases_desensitized.csv"
        + (", and with --desensitize every primary table" if options.desensitize else ""),
    }
    text = json.dumps(record, ensure_ascii=False, indent=1) + "\n"
    write_atomic(options.out / "deidentification.json", text.encode("utf-8"))
