"""One extraction run: scan the cases (here, in a process pool or on Dask), write the tables.

:func:`run` is what the command line calls; :mod:`dcm_extractor.extractor` keeps the
original tool's API and command line around it.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import multiprocessing
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, fields
from pathlib import Path
from threading import TIMEOUT_MAX
from typing import Any, Final

from . import __version__
from .atomic import write_atomic
from .batches import case_batches, scan_batch, scan_one
from .cases import CaseResult, ReportEntry, iter_case_dirs
from .cluster import scan_on_cluster
from .errors import DataRootError, DcmExtractorError, OptionsError
from .isolation import CaseFailedError
from .leftovers import remove_identifying_leftovers
from .manifest import Manifest, case_fingerprint
from .privacy import DateMode, Pseudonymizer, deidentify_rows
from .projectids import ProjectIdMap
from .runlock import output_lock
from .tables import ReportStream, TableStream, write_csv, write_json
from .walk import walk_case_files

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


FORMATS: Final = ("csv", "json", "parquet")  # merged table formats
WORKERS_PER_CORE: Final = 4  # far more processes than cores only compete for the same cores


def with_ids(rows: list[dict[str, Any]], project_id: int | None) -> list[dict[str, Any]]:
    return [{**row, "ProjectID": project_id} for row in rows]


@dataclass(frozen=True)
class RunOptions:
    """What one run does: the command line's options, checked when made.

    Raises
    ------
    OptionsError
        A value out of range or options that cannot work together (the message says
        which): an unknown table format, fewer than one worker or more than four per
        core, a time limit that is not a finite positive number of seconds, ``out``
        being a file, date shifting without a pseudonym key.

    Examples
    --------
    >>> options = RunOptions(Path("data/dicom_cases"), Path("out"), merge_all=True)
    >>> RunOptions.from_dict(options.to_dict()) == options
    True
    """

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

    def __post_init__(self) -> None:
        problems = []
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            problems.append(f"formats must be some of {', '.join(FORMATS)}, got {self.formats}")
        cores = os.cpu_count() or 1
        most = max(WORKERS_PER_CORE * cores, WORKERS_PER_CORE)
        if not 1 <= self.workers <= most:
            problems.append(
                f"workers {self.workers}: this machine has {cores} core(s); use 1 to {most} "
                "(more machines: --scheduler)"
            )
        timeout = self.case_timeout
        if timeout is not None and not (math.isfinite(timeout) and 0 < timeout <= TIMEOUT_MAX):
            problems.append(
                f"the case time limit must be a positive number of seconds, got {timeout!r}"
            )
        if self.out.exists() and not self.out.is_dir():
            problems.append(f"out {self.out}: exists and is not a folder")
        if self.dates not in ("remove", "keep", "shift"):
            problems.append(f"dates must be remove, keep or shift, got {self.dates!r}")
        if self.dates == "shift" and not self.pseudonymizer.keyed:
            problems.append("shifted dates need a pseudonym key")
        if problems:
            raise OptionsError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready options; the pseudonym key is never in it (only whether there is one)."""
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "pseudonymizer":
                out["keyed_pseudonyms"] = value.keyed
                continue
            out[item.name] = (
                str(value)
                if isinstance(value, Path)
                else (list(value) if isinstance(value, tuple) else value)
            )
        return out

    @classmethod
    def from_dict(
        cls, values: dict[str, Any], *, pseudonymizer: Pseudonymizer | None = None
    ) -> RunOptions:
        """Options from :meth:`to_dict`'s form; the key comes separately (``pseudonymizer``).

        Raises
        ------
        OptionsError
            Unknown names, or values :class:`RunOptions` refuses.
        """
        names = {item.name for item in fields(cls)} - {"pseudonymizer"}
        unknown = sorted(set(values) - names - {"keyed_pseudonyms"})
        if unknown:
            raise OptionsError(f"unknown options: {', '.join(unknown)}")
        kwargs: dict[str, Any] = {k: v for k, v in values.items() if k in names}
        for name in ("data_root", "out", "projectid_map", "manifest_dir"):
            if kwargs.get(name) is not None:
                kwargs[name] = Path(kwargs[name])
        if "formats" in kwargs:
            kwargs["formats"] = tuple(kwargs["formats"])
        return cls(**kwargs, pseudonymizer=pseudonymizer or Pseudonymizer())


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
    reported: int = 0  # lines in the report: skipped and failed files, row problems
    cleaned: str = ""  # de-identified runs: what earlier runs left that was removed

    def line(self) -> str:
        """One human summary line."""
        return (
            f"{self.cases} cases ({self.failed} failed, {self.reused} unchanged), "
            f"{self.rows} rows; "
            f"{self.files} files: {self.images} images + {self.skipped} skipped "
            f"(pydicom's full parse took over for {self.handed_over})"
        )


def run(
    options: RunOptions,
    progress: Callable[[CaseResult | None], None] | None = None,
    on_case: Callable[[str], None] | None = None,
) -> RunSummary:
    """Scan every case under ``options.data_root`` and write the outputs into ``options.out``.

    Cases are taken in project-ID order and their rows streamed into the merged tables
    and the report, so memory does not grow with the number of files. ``progress`` is
    called once per finished case with its result (None for a failed case); ``on_case``
    with the case's label (``P<ProjectID>`` under ``--desensitize``) when the run starts
    waiting for it (the progress display shows a case that takes long).

    With ``options.desensitize`` the log and the report name no case, file or patient:
    cases appear as ``P<ProjectID>`` and files by their position in the case.
    """
    root, out = options.data_root, options.out
    if not root.is_dir():
        raise DataRootError(f"data root {root} does not exist or is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        return _run_locked(options, progress, on_case)


def _run_locked(
    options: RunOptions,
    progress: Callable[[CaseResult | None], None] | None,
    on_case: Callable[[str], None] | None = None,
) -> RunSummary:
    root, out = options.data_root, options.out
    cleaned = ""
    if options.desensitize:  # the folder is to be shareable: nothing earlier may name anyone
        _refuse_foreign_map(options)
        cleaned = remove_identifying_leftovers(out, options.manifest_dir).line()
        if cleaned:
            log.warning("--desensitize: removed from --out %s", cleaned)
    private = options.desensitize
    if options.move_top_level_zips:
        _move_zips(root, private)
    ids = ProjectIdMap(options.projectid_map or out / "case_projectid_map.json")
    case_dirs = iter_case_dirs(root)
    id_of = ids.assign([d.name for d in case_dirs])  # new cases numbered in folder order
    case_dirs.sort(key=lambda d: id_of[d.name])  # merged tables are in project-ID order
    labels = {name: f"P{pid:06d}" for name, pid in id_of.items()}
    manifest = _manifest(options)
    fingerprints, reused = _recorded_cases(manifest, case_dirs, id_of)
    summary = RunSummary(reused=len(reused), cleaned=cleaned)
    outputs = _Outputs(options, labels if private else None)
    try:
        outputs.report(_root_files(root, summary))
        for case_dir, outcome in _scan_all(case_dirs, root, options, reused):
            project_id = id_of[case_dir.name]
            if on_case is not None:
                on_case(labels[case_dir.name] if options.desensitize else case_dir.name)
            result = _finish_case(case_dir, outcome, labels, summary, outputs, options)
            if result is not None:
                rows = with_ids(result.rows, project_id)
                _write_case(options, result, rows)
                if manifest is not None and case_dir.name not in reused:  # after its outputs
                    manifest.store(project_id, fingerprints[case_dir.name], result)
                outputs.rows(rows)
                summary.rows += len(rows)
            if progress:
                progress(result)
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    summary.reported = outputs.reported
    _write_provenance(options)
    return summary


def _finish_case(
    case_dir: Path,
    outcome: Callable[[], CaseResult],
    labels: dict[str, str],
    summary: RunSummary,
    outputs: _Outputs,
    options: RunOptions,
) -> CaseResult | None:
    """The case's result counted and its report lines written; None if the case failed."""
    summary.cases += 1
    shown = labels[case_dir.name] if options.desensitize else case_dir.name
    try:
        result = outcome()
    except (CaseFailedError, OSError) as err:
        summary.failed += 1
        reason = err.reason if isinstance(err, CaseFailedError) else type(err).__name__
        private = "" if isinstance(err, CaseFailedError) else str(err)  # the reason already
        outputs.report([ReportEntry(case_dir.name, case_dir.name, "case_failed", reason, private)])
        log.error("case %s failed: %s", shown, reason if options.desensitize else err)
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


class _Outputs:
    """The merged tables and the report of one run, streamed, committed together at the end."""

    def __init__(self, options: RunOptions, labels: dict[str, str] | None) -> None:
        self.options = options
        out, excel = options.out, options.excel
        self.primary: list[TableStream] = []
        self.hidden: list[TableStream] = []
        self._report = ReportStream(out / REPORT_NAME, excel=excel, labels=labels)
        self.reported = 0
        if not (options.merge_all or options.only_merged):
            return
        target = self.hidden if options.desensitize else self.primary
        for fmt in options.formats:
            target.append(TableStream(out / f"all_cases.{fmt}", fmt, excel=excel))  # type: ignore[arg-type]
        self.hidden.append(TableStream(out / "all_cases_desensitized.csv", "csv", excel=excel))
        if not options.desensitize:
            self.primary.append(TableStream(out / "all_cases_original.csv", "csv", excel=excel))

    def rows(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        for stream in self.primary:
            stream.write(rows)
        if self.hidden:
            hidden = _hidden(self.options, rows)
            for stream in self.hidden:
                stream.write(hidden)

    def report(self, entries: list[ReportEntry]) -> None:
        self._report.write(entries)
        self.reported += len(entries)

    def commit(self) -> None:
        for stream in [*self.primary, *self.hidden]:
            stream.commit()
        self._report.commit()
        if self.options.desensitize and (self.primary or self.hidden):
            stale = self.options.out / "all_cases_original.csv"
            if stale.exists():  # an earlier run's: it holds the names this run must not leave
                stale.unlink()
                log.info("--desensitize: removed all_cases_original.csv of an earlier run")
            log.info(
                "--desensitize: all_cases_original.csv is not written (it would hold patient names)"
            )

    def discard(self) -> None:
        for stream in [*self.primary, *self.hidden]:
            stream.discard()
        self._report.discard()


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
    manifest: Manifest | None, case_dirs: list[Path], ids: dict[str, int]
) -> tuple[dict[str, str], dict[str, CaseResult]]:
    """Every case's fingerprint, and the results of those unchanged since they were recorded."""
    if manifest is None:
        return {}, {}
    fingerprints = {d.name: case_fingerprint(d) for d in case_dirs}
    reused = {}
    for case_dir in case_dirs:
        hit = manifest.load(ids[case_dir.name], fingerprints[case_dir.name])
        if hit is not None:
            reused[case_dir.name] = hit
    return fingerprints, reused


def _scan_all(
    case_dirs: list[Path], root: Path, options: RunOptions, reused: dict[str, CaseResult]
) -> Iterator[tuple[Path, Callable[[], CaseResult]]]:
    """Each case with a callable giving its result (or raising), in case order.

    Cases in ``reused`` are not scanned again. With several workers (or a cluster) the
    others go out in batches (:mod:`dcm_extractor.batches`); a failing case costs only
    itself, a worker process that dies costs the cases of its batch, reported as
    failed, never the run.
    """
    todo = [d for d in case_dirs if d.name not in reused]
    pending: dict[str, Callable[[], CaseResult]] = {}
    pool, close_client = None, None
    if options.scheduler or options.scheduler_file:
        pending, close_client = scan_on_cluster(
            todo, functools.partial(scan_batch, root=root, timeout=options.case_timeout),
            options.scheduler, options.scheduler_file,
        )  # fmt: skip
    elif options.workers > 1 and len(todo) > 1:
        context = multiprocessing.get_context(
            "fork" if sys.platform.startswith("linux") else "spawn"
        )
        pool = ProcessPoolExecutor(options.workers, mp_context=context)
        for batch in case_batches(todo, options.workers):
            future = pool.submit(scan_batch, batch, root, options.case_timeout)
            for index, case_dir in enumerate(batch):
                pending[case_dir.name] = functools.partial(_result_of, case_dir, future, index)
    try:
        for case_dir in case_dirs:
            if case_dir.name in reused:
                yield case_dir, functools.partial(reused.__getitem__, case_dir.name)
            elif case_dir.name in pending:
                yield case_dir, pending.pop(case_dir.name)  # dropped once used: memory stays flat
            else:
                yield case_dir, functools.partial(scan_one, case_dir, root, options.case_timeout)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if close_client is not None:
            close_client()


def _result_of(
    case_dir: Path, future: Future[list[CaseResult | CaseFailedError]], index: int
) -> CaseResult:
    try:
        outcome = future.result()[index]
    except BrokenProcessPool as err:
        raise CaseFailedError(case_dir.name, "its worker process died") from err
    if isinstance(outcome, CaseFailedError):
        raise outcome
    return outcome


def _refuse_foreign_map(options: RunOptions) -> None:
    """A de-identified run must not leave an earlier run's ID map (names -> IDs) in --out;
    it is the key to the project IDs, so it is moved by the user, never deleted here."""
    default = options.out / "case_projectid_map.json"
    in_use = options.projectid_map or default
    if default.exists() and default.resolve() != in_use.resolve():
        raise DcmExtractorError(
            f"{default} is an earlier run's project ID map (it names patients) and this "
            "de-identified run uses another: move it out of --out (it keeps the project IDs "
            "stable: pass it as --projectid-map) or delete it"
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
            ReportEntry("", path.name, "not_in_case", detail, "", f"root-file{index:05d}")
        )
    hidden = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("."))
    for index, folder in enumerate(hidden):
        count = sum(1 for _ in walk_case_files(folder))
        summary.files += count
        summary.skipped += count
        why = f"a hidden folder (its name starts with a dot): its {count} files were not scanned"
        entries.append(
            ReportEntry("", folder.name, "hidden_folder", why, "", f"root-folder{index:05d}")
        )
    return entries


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


def _write_provenance(options: RunOptions) -> None:
    """How the de-identified tables were made (never the key), beside them."""
    pseudonymizer = options.pseudonymizer
    record = {
        "tool": f"medkit dcm_extractor {__version__}",
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
