"""One extraction run: the cases in project-ID order, each scanned (``executors``),
counted and written (``outputs``); resume, lock and the cleaning of de-identified outputs.

:func:`run` is what the command line calls; :mod:`dcm_extractor.extractor` keeps the
original tool's API and command line around it; :mod:`dcm_extractor.options` holds what
a run is asked to do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DataRootError, DcmExtractorError
from ..options import FORMATS, MAP_NAME, WORKERS_PER_CORE, RunOptions, RunSummary
from ..outputs.merged import (
    REPORT_NAME,
    RunOutputs,
    write_case,
    write_html_report,
    write_provenance,
)
from ..privacy.policy import PrivacyPolicy
from ..sources.cases import CaseResult, ReportEntry, iter_case_dirs
from ..sources.names import readable
from ..sources.walk import walk_case_files
from .executors import scan_all
from .isolation import CaseFailedError
from .leftovers import remove_identifying_leftovers
from .manifest import Manifest, case_fingerprint
from .projectids import ProjectIdMap
from .runlock import Takeover, output_lock

__all__ = [
    "FORMATS",
    "REPORT_NAME",
    "WORKERS_PER_CORE",
    "RunOptions",
    "RunSummary",
    "move_top_level_zips",
    "run",
    "with_ids",
]

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


def with_ids(rows: list[dict[str, Any]], project_id: int | None) -> list[dict[str, Any]]:
    return [{**row, "ProjectID": project_id} for row in rows]


def run(
    options: RunOptions,
    progress: Callable[[CaseResult | None], None] | None = None,
    on_case: Callable[[str], None] | None = None,
    *,
    lock: bool = True,
) -> RunSummary:
    """Scan every case under ``options.data_root`` and write the outputs into ``options.out``.

    Cases are taken in project-ID order and their rows streamed into the merged tables
    and the report, so memory does not grow with the number of files. ``progress`` is
    called once per finished case with its result (None for a failed case); ``on_case``
    with the case's label (``P<ProjectID>`` under ``--desensitize``) when the run starts
    waiting for it (the progress display shows a case that takes long).

    Under de-identification (``options.privacy``) the log and the report name no case,
    file or patient: cases appear as ``P<ProjectID>`` and files by their position in the case.

    ``lock=False``: the caller holds ``options.out``'s lock already (:func:`run_lock`).
    """
    root, out = options.data_root, options.out
    if not root.is_dir():
        raise DataRootError(f"data root {root} does not exist or is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if not lock:
        return _run_locked(options, progress, on_case)
    with run_lock(options) as takeover:
        if takeover.line(out):
            log.warning("%s", takeover.line(out))
        return _run_locked(options, progress, on_case)


def run_lock(options: RunOptions) -> contextlib.AbstractContextManager[Takeover]:
    """The lock a run into ``options.out`` holds (and the clean-up of a killed run's
    temporary files there and in the manifest folder): take it before touching anything
    another run could be using, the log included."""
    return output_lock(options.out, [d for d in (options.manifest_dir,) if d is not None])


def _run_locked(
    options: RunOptions,
    progress: Callable[[CaseResult | None], None] | None,
    on_case: Callable[[str], None] | None = None,
) -> RunSummary:
    root, out = options.data_root, options.out
    policy = options.privacy
    started = time.perf_counter()
    cleaned = ""
    if policy.cleans_out:  # the folder is to be shareable: nothing earlier may name anyone
        _refuse_foreign_map(options)
        cleaned = remove_identifying_leftovers(out, options.manifest_dir).line()
        if cleaned:
            log.warning("--desensitize: removed from --out %s", cleaned)
    if options.move_top_level_zips:
        _move_zips(root, policy)
    ids = ProjectIdMap(options.map_path)
    case_dirs = iter_case_dirs(root)
    id_of = ids.assign([d.name for d in case_dirs])  # new cases numbered in folder order
    case_dirs.sort(key=lambda d: id_of[d.name])  # merged tables are in project-ID order
    manifest = _manifest(options)
    fingerprints, reused = _recorded_cases(manifest, case_dirs, id_of, options)
    summary = RunSummary(reused=len(reused), cleaned=cleaned)
    outputs = RunOutputs(options, policy.report_labels(id_of))
    try:
        outputs.report(_root_files(root, summary))
        for case_dir, outcome in scan_all(case_dirs, root, options, reused):
            project_id = id_of[case_dir.name]
            shown = policy.case_name(readable(case_dir.name), project_id)
            if on_case is not None:
                on_case(shown)
            result = _finish_case(case_dir, shown, outcome, summary, outputs, policy)
            if result is not None:
                rows = with_ids(result.rows, project_id)
                series = with_ids(result.series, project_id)
                write_case(options, result, rows)
                if manifest is not None and case_dir.name not in reused:  # after its outputs
                    manifest.store(project_id, fingerprints[case_dir.name], result)
                outputs.rows(rows)
                outputs.series(series, rows)
                summary.rows += len(rows)
                summary.series += len(series)
            if progress:
                progress(result)
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    summary.reported = outputs.reported
    write_provenance(options)
    if outputs.cohort is not None:
        write_html_report(options, outputs.cohort, summary, time.perf_counter() - started)
    return summary


def _finish_case(
    case_dir: Path,
    shown: str,
    outcome: Callable[[], CaseResult],
    summary: RunSummary,
    outputs: RunOutputs,
    policy: PrivacyPolicy,
) -> CaseResult | None:
    """The case's result counted and its report lines written (the log names it ``shown``);
    None if the case failed."""
    summary.cases += 1
    try:
        result = outcome()
    except (CaseFailedError, OSError) as err:
        summary.failed += 1
        reason = err.reason if isinstance(err, CaseFailedError) else type(err).__name__
        private = "" if isinstance(err, CaseFailedError) else str(err)  # the reason already
        name = readable(case_dir.name)
        outputs.report([ReportEntry(name, name, "case_failed", reason, private)])
        log.error("case %s failed: %s", shown, policy.error_text(reason, err))
        return None
    summary.files += result.files
    summary.images += result.images
    summary.skipped += result.skipped
    summary.handed_over += result.handed_over
    outputs.report(result.report)
    log.info(
        "case %s: %d rows, %d images, %d skipped",
        shown,
        len(result.rows),
        result.images,
        result.skipped,
    )
    return result


def _move_zips(root: Path, policy: PrivacyPolicy) -> None:
    moves = move_top_level_zips(root)
    for source, target in moves if policy.names_moved_files else []:
        log.info(
            "moved %s -> %s", readable(source.name), readable(target.relative_to(root).as_posix())
        )
    log.info("moved %d top-level zips into case folders", len(moves))


def _manifest(options: RunOptions) -> Manifest | None:
    """Where finished cases are recorded; none for de-identified runs unless told where."""
    if not options.resume:
        return None
    if options.manifest_dir is not None:
        return Manifest(options.manifest_dir)
    if not options.privacy.manifest_in_out:
        log.info(
            "--desensitize: no resume manifest in --out (it would hold names); see --manifest-dir"
        )
        return None
    return Manifest(options.out / ".manifest")


def _recorded_cases(
    manifest: Manifest | None, case_dirs: list[Path], ids: dict[str, int], options: RunOptions
) -> tuple[dict[str, str], dict[str, CaseResult]]:
    """Every case's fingerprint, and the results of those unchanged since they were recorded."""
    if manifest is None:
        return {}, {}
    reading = options.extras.signature()
    fingerprints = {d.name: case_fingerprint(d, reading) for d in case_dirs}
    reused = {}
    for case_dir in case_dirs:
        hit = manifest.load(ids[case_dir.name], fingerprints[case_dir.name])
        if hit is not None:
            reused[case_dir.name] = hit
    return fingerprints, reused


def _refuse_foreign_map(options: RunOptions) -> None:
    """A de-identified run must not leave an earlier run's ID map (names -> IDs) in --out;
    it is the key to the project IDs, so it is moved by the user, never deleted here."""
    earlier = options.out / MAP_NAME
    if earlier.exists():
        raise DcmExtractorError(
            f"{earlier} is an earlier run's project ID map (it names patients), and nothing in "
            f"a de-identified --out may: move it out of --out (to {options.map_path}, where "
            "this run keeps it, or pass it as --projectid-map: it keeps the project IDs "
            "stable) or delete it"
        )


def _root_files(root: Path, summary: RunSummary) -> list[ReportEntry]:
    """What under the data root is not a case, counted and reported: files directly
    under it, and hidden folders (``.Trash``, ``.git``: names starting with a dot)."""
    detail = "not a case: a file directly under the data root (zips: --move-top-level-zips)"
    entries = []
    for index, path in enumerate(sorted(p for p in root.iterdir() if not p.is_dir())):
        summary.files += 1
        summary.skipped += 1
        entries.append(
            ReportEntry("", readable(path.name), "not_in_case", detail, "", f"root-file{index:05d}")
        )
    hidden = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("."))
    for index, folder in enumerate(hidden):
        count = sum(1 for _ in walk_case_files(folder))
        summary.files += count
        summary.skipped += count
        why = f"a hidden folder (its name starts with a dot): its {count} files were not scanned"
        entries.append(
            ReportEntry(
                "", readable(folder.name), "hidden_folder", why, "", f"root-folder{index:05d}"
            )
        )
    return entries
