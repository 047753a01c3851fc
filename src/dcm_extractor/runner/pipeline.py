"""One extraction run, top to bottom in :func:`run`: the lock, clean-up of a
de-identified output folder, zip moving, the cases in project-ID order, resume, then each case
scanned (:mod:`.executors`), counted (:class:`~.summary.RunSummary`) and written
(:class:`~dcm_extractor.outputs.merged.RunOutputs`).

:func:`run` is what the command line calls; :mod:`dcm_extractor.extractor` keeps the
original tool's API and command line around it; :mod:`dcm_extractor.options` holds what
a run is asked to do.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DataRootError, DcmExtractorError
from ..options import FORMATS, MAP_NAME, WORKERS_PER_CORE, RunOptions
from ..outputs.merged import REPORT_NAME, RunOutputs, with_ids
from ..privacy.policy import PrivacyPolicy
from ..sources.cases import CaseResult, ReportEntry, iter_case_dirs, scan_root_files
from ..sources.names import nameless, readable
from ..sources.topzips import move_top_level_zips, move_zips_into_cases
from .executors import scan_all
from .isolation import CaseFailedError
from .leftovers import remove_identifying_leftovers
from .manifest import Manifest, case_fingerprint
from .projectids import ProjectIdMap
from .runlock import Takeover, output_lock
from .summary import RunSummary

__all__ = [
    "FORMATS",
    "REPORT_NAME",
    "WORKERS_PER_CORE",
    "RunOptions",
    "RunSummary",
    "move_top_level_zips",
    "run",
    "run_lock",
    "with_ids",
]

log = logging.getLogger(__name__)


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
    root, out, policy = options.data_root, options.out, options.privacy
    if not root.is_dir():
        raise DataRootError(_not_a_root(root))
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(options) if lock else contextlib.nullcontext(Takeover("", 0)) as takeover:
        if takeover.line(out):
            log.warning("%s", takeover.line(out))
        started = time.perf_counter()
        cleaned = _clean_out(options)
        if options.move_top_level_zips:  # the one step that changes the input folder
            move_zips_into_cases(root, name_them=policy.names_moved_files)
        case_dirs, id_of = _cases_in_id_order(options)
        manifest = _manifest(options)
        fingerprints, reused = _recorded_cases(manifest, case_dirs, id_of, options)
        summary = RunSummary(reused=len(reused), cleaned=cleaned)
        outputs = RunOutputs(options, policy.report_labels(id_of))
        try:
            root_files = scan_root_files(root)
            summary.add_files(root_files)
            outputs.report(root_files.report)
            studies = StudyCases()
            for case_dir, outcome in scan_all(case_dirs, root, options, reused):
                project_id = id_of[case_dir.name]
                shown = policy.case_name(readable(case_dir.name), project_id)
                if on_case is not None:
                    on_case(shown)
                result = _outcome(case_dir, shown, outcome, outputs, policy)
                summary.add_case(result)
                if result is not None:
                    studies.add(shown, result.rows)
                    record = None  # the resume record, written after the case's own files
                    if manifest is not None and case_dir.name not in reused:
                        fingerprint = fingerprints[case_dir.name]
                        record = functools.partial(manifest.store, project_id, fingerprint, result)
                    outputs.case(result, project_id, then=record)
                if progress:
                    progress(result)
            summary.reported = outputs.reported
            summary.notes += studies.notes() + outputs.excel_notes()
            if not case_dirs and root_files.files:
                summary.notes.append(
                    f"no case folders in {root}: its {root_files.files} file(s) lie directly "
                    "in it (see the report). dcm-extract takes each folder under -d as one "
                    "case, a patient or an exam: give the folder above it as -d"
                )
            for note in summary.notes:
                log.warning("%s", note)
            outputs.finish(vars(summary), time.perf_counter() - started)
        except BaseException:
            outputs.discard()
            raise
    return summary


class StudyCases:
    """Which case each study was first seen in, to say when a study is in two cases:
    series folders taken for cases (``-d`` one patient's folder), or an exam split over
    case folders - each case's row then counts part of it. At most :attr:`MOST` studies
    are remembered (a run's memory stays flat)."""

    MOST = 250_000  # (~150 bytes each: ~40 MB at most)

    def __init__(self) -> None:
        self._first: dict[str, str] = {}  # StudyInstanceUID -> the first case holding it
        self._shared: list[tuple[str, str]] = []  # (earlier case, later case)
        self._count = 0

    def add(self, case: str, rows: list[dict[str, Any]]) -> None:
        """A finished case's rows (as shown: ``case`` is its name or its pseudonym)."""
        for row in rows:
            uid = row.get("StudyInstanceUID")
            if not uid:
                continue
            first = self._first.get(uid)
            if first is None:
                if len(self._first) < self.MOST:
                    self._first[uid] = case
            elif first != case:
                self._count += 1
                if len(self._shared) < 3:
                    self._shared.append((first, case))

    def notes(self) -> list[str]:
        """The note for the run's summary, if any study was in two cases."""
        if not self._count:
            return []
        pairs = ", ".join(f"{a} and {b}" for a, b in self._shared)
        more = ", ..." if self._count > len(self._shared) else ""
        return [
            f"{self._count} case(s) hold a study an earlier case holds too ({pairs}{more}): "
            "dcm-extract takes each folder under -d as one case, a patient or an exam, so "
            "each counts its part of the study. If -d is one patient's folder of series, "
            "give the folder above it as -d"
        ]


def run_lock(options: RunOptions) -> contextlib.AbstractContextManager[Takeover]:
    """The lock a run into ``options.out`` holds (and the clean-up of a killed run's
    temporary files there and in the manifest folder): take it before touching anything
    another run could be using, the log included."""
    return output_lock(options.out, [d for d in (options.manifest_dir,) if d is not None])


def _clean_out(options: RunOptions) -> str:
    """A de-identified run's output folder: what earlier runs left there that names
    anyone, removed (said in the log and returned); nothing for other runs."""
    if not options.privacy.cleans_out:
        return ""
    _refuse_foreign_map(options)
    cleaned = remove_identifying_leftovers(options.out, options.manifest_dir).line()
    if cleaned:
        log.warning("--desensitize: removed from --out %s", cleaned)
    return cleaned


def _cases_in_id_order(options: RunOptions) -> tuple[list[Path], dict[str, int]]:
    """The case folders in project-ID order (the merged tables' order), and each one's
    ID: new cases are numbered in folder order and the map saved."""
    ids = ProjectIdMap(options.map_path, private=options.desensitize)
    case_dirs = iter_case_dirs(options.data_root)
    id_of = ids.assign([d.name for d in case_dirs])
    case_dirs.sort(key=lambda d: id_of[d.name])
    return case_dirs, id_of


def _outcome(
    case_dir: Path,
    shown: str,
    outcome: Callable[[], CaseResult],
    outputs: RunOutputs,
    policy: PrivacyPolicy,
) -> CaseResult | None:
    """The case's result, logged (the log names it ``shown``); None if the case failed
    (its report line written)."""
    try:
        result = outcome()
    except (CaseFailedError, OSError) as err:
        reason = err.reason if isinstance(err, CaseFailedError) else nameless(err)
        private = err.private if isinstance(err, CaseFailedError) else str(err)
        name = readable(case_dir.name)
        outputs.report([ReportEntry(name, name, "case_failed", reason, private)])
        log.error("case %s failed: %s", shown, policy.error_text(reason, err))
        return None
    log.info(
        "case %s: %d rows, %d images, %d skipped",
        shown,
        len(result.rows),
        result.images,
        result.skipped,
    )
    return result


def _manifest(options: RunOptions) -> Manifest | None:
    """Where finished cases are recorded; none for de-identified runs unless told where."""
    if not options.resume:
        return None
    if options.manifest_dir is not None:  # (a de-identified run's names: its owner's only)
        return Manifest(options.manifest_dir, private=options.desensitize)
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


def _not_a_root(root: Path) -> str:
    """Why ``root`` cannot be a data root, and what to give instead."""
    if not root.exists():
        return f"data root {root} does not exist"
    if zipfile.is_zipfile(root):  # (an export handed over as one zip)
        return (
            f"data root {root} is a zip file, not a folder of case folders: unzip it and "
            "give that folder (a zip of one case's images is read in place when it lies in "
            "the case's folder under -d)"
        )
    return f"data root {root} is a file, not a folder of case folders"
