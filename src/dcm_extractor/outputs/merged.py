"""What a run writes, all of it through :class:`RunOutputs`: the merged tables and the
report (streamed, committed together), the per-case tables, the de-identification record
and report.html."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import sys
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from ..options import RunOptions
from ..sources.cases import CaseResult, ReportEntry
from ..sources.instances import InstanceRows
from ..version import __version__
from .atomic import fitting_name, name_max, write_atomic
from .cohort import Cohort
from .htmlreport import render_report
from .studies import STUDY_TABLE, StudyTally
from .tables import (
    CASE_TABLE,
    INSTANCE_TABLE,
    SERIES_TABLE,
    ReportStream,
    TableStream,
    formula_like,
    write_csv,
    write_json,
)

__all__ = [
    "CASE_FILES_AHEAD",
    "HTML_REPORT_NAME",
    "REPORT_NAME",
    "CaseFiles",
    "RunOutputs",
    "case_file_stem",
    "with_ids",
    "write_case",
    "write_html_report",
    "write_provenance",
]

log = logging.getLogger(__name__)

REPORT_NAME = "extraction_report.csv"
HTML_REPORT_NAME = "report.html"


CASE_FILES_AHEAD: Final = 8  # cases whose own files may wait for the writer thread


class CaseFiles:
    """Each case's own files (and what must follow them, the resume record), written in
    order by one thread beside the run.

    Every file is fsynced before it is renamed into place (:mod:`.atomic`): ~1.5 ms a
    file here, two files a case. Waited for in the run's one thread, those waits bound a
    run whose scanning is in worker processes; in this thread they overlap the next
    cases. At most :data:`CASE_FILES_AHEAD` cases wait; an error writing a case's files
    is raised in the run's thread at the next case or at :meth:`wait`, as it would have
    been where the files were written.
    """

    def __init__(self, ahead: int = CASE_FILES_AHEAD) -> None:
        self.ahead = ahead
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="dcm-extract-case-files")
        self._pending: deque[Future[None]] = deque()

    def submit(self, work: Callable[[], None]) -> None:
        """Run ``work`` after the work submitted before it (raising any earlier error)."""
        pending = self._pending
        while pending and (pending[0].done() or len(pending) >= self.ahead):
            pending.popleft().result()
        pending.append(self._thread.submit(work))

    def wait(self) -> None:
        """Wait for everything submitted; the first error raised."""
        pending = self._pending
        while pending:
            pending.popleft().result()

    def close(self) -> None:
        """Wait for everything submitted, errors dropped (the run failed already), and end
        the thread."""
        for future in self._pending:
            future.exception()
        self._pending.clear()
        self._thread.shutdown(wait=True)


def with_ids(rows: list[dict[str, Any]], project_id: int | None) -> list[dict[str, Any]]:
    """Table rows with their case's ProjectID."""
    return [{**row, "ProjectID": project_id} for row in rows]


class RunOutputs:
    """Everything one run writes. The merged tables and the report are streamed and
    committed together at the end.

    :meth:`case` writes a case's tables and appends its rows and report lines; ``report``
    appends lines; :meth:`finish` makes every file appear at once (atomic renames), then
    writes the de-identification record and report.html; :meth:`discard` removes the
    partial files of a run that failed.
    """

    def __init__(self, options: RunOptions, labels: dict[str, str] | None) -> None:
        self.options = options
        out, excel = options.out, options.excel
        self.primary: list[TableStream] = []
        self.hidden: list[TableStream] = []
        self.series_primary: list[TableStream] = []
        self.series_hidden: list[TableStream] = []
        self.instance_streams: list[TableStream] = []
        self.study_streams: list[TableStream] = []  # (made at the end: commit)
        self.studies = StudyTally() if options.series else None
        self._report = ReportStream(out / REPORT_NAME, excel=excel, labels=labels)
        self.reported = 0
        self.case_files = CaseFiles()
        self._case_formulas: Counter[str] = Counter()  # --excel: (formula_like) by column
        self._stems: dict[str, int] = {}  # case files' stems (casefolded) -> ProjectID
        self.cohort = Cohort() if options.html_report else None
        try:
            self._open_streams()
        except BaseException:  # (a full disk: the temporary files made so far go)
            self.discard()
            raise

    def _open_streams(self) -> None:
        options = self.options
        out, excel = options.out, options.excel
        headers = options.extras.headers
        policy = options.privacy
        if options.series:
            shape = SERIES_TABLE.with_columns(headers)
            target = self.series_primary if policy.writes_identified_tables else self.series_hidden
            for fmt in options.formats:
                target.append(TableStream(out / f"all_series.{fmt}", fmt, excel=excel, shape=shape))  # type: ignore[arg-type]
            hidden = TableStream(
                out / "all_series_desensitized.csv", "csv", excel=excel, shape=shape
            )
            self.series_hidden.append(hidden)
        if options.instances:  # Parquet (10^7 rows stay small), and where asked others
            shape = INSTANCE_TABLE.with_columns(headers)
            for fmt in options.instance_formats:
                stream = TableStream(out / f"all_instances.{fmt}", fmt, excel=excel, shape=shape)  # type: ignore[arg-type]
                self.instance_streams.append(stream)
        if not (options.merge_all or options.only_merged):
            return
        shape = CASE_TABLE.with_columns(headers)
        target = self.primary if policy.writes_identified_tables else self.hidden
        for fmt in options.formats:
            target.append(TableStream(out / f"all_cases.{fmt}", fmt, excel=excel, shape=shape))  # type: ignore[arg-type]
        self.hidden.append(
            TableStream(out / "all_cases_desensitized.csv", "csv", excel=excel, shape=shape)
        )
        if policy.writes_identified_tables:
            self.primary.append(
                TableStream(out / "all_cases_original.csv", "csv", excel=excel, shape=shape)
            )

    def case(
        self, result: CaseResult, project_id: int, then: Callable[[], None] | None = None
    ) -> None:
        """A finished case: its report lines, its own tables, its rows and series rows.

        The case's own tables are written by :class:`CaseFiles`' thread, then ``then`` is
        called there (the resume record, which must not precede the files)."""
        stem, note = self._own_stem(result, project_id)
        self.report([*result.report, note] if note is not None else result.report)
        rows = with_ids(result.rows, project_id)
        if self.options.excel and not self.options.only_merged:  # (the case's own CSVs)
            for row in rows:
                self._case_formulas.update(k for k, v in row.items() if formula_like(v))
        self.case_files.submit(
            functools.partial(_write_case_then, self.options, result, rows, then, stem, project_id)
        )
        self.rows(rows)
        self.series(with_ids(result.series, project_id), rows)
        self.instances(result.instances, project_id)

    def _own_stem(self, result: CaseResult, project_id: int) -> tuple[str, ReportEntry | None]:
        """The stem of the case's own files (identified runs: :func:`case_file_stem`, and
        ``~P<ProjectID>`` added where an earlier case of this run has that stem, in any
        letter case: a GBK-named 张三 beside a UTF-8 one, ``Zhang`` beside ``zhang`` on a
        share that ignores case), and the report's note when it is not the case's name."""
        out = self.options.out
        if self.options.only_merged or not self.options.privacy.writes_identified_tables:
            return case_file_stem(result.name, out), None  # (P<ProjectID> files, or none)
        stem = case_file_stem(result.name, out)
        why = "" if stem == result.name else _renamed_why(result.name, out)
        if self._stems.setdefault(stem.casefold(), project_id) != project_id:
            mark = f"~P{project_id:06d}"
            stem = fitting_name(stem, name_max(out) - len(_LONGEST_SUFFIX) - len(mark)) + mark
            self._stems[stem.casefold()] = project_id
            why = "an earlier case's files have its name (names that read alike)"
        if not why:
            return stem, None
        detail = f"{why}: its own tables are named after it with ~ and a hash or its ProjectID"
        return stem, ReportEntry(
            result.name, result.name, "case_files_renamed", detail, f"{stem}.csv", ""
        )

    def instances(self, rows: InstanceRows, project_id: int) -> None:
        """A case's instance rows (de-identified under --desensitize)."""
        if not rows or not self.instance_streams:
            return
        shown = self.options.privacy.shown_instances(rows.columns(project_id), project_id)
        for stream in self.instance_streams:
            stream.write_columns(shown, len(rows))

    def finish(self, summary: Mapping[str, Any], seconds: float) -> None:
        """Commit the streamed files; then deidentification.json and (when asked for)
        report.html, which states ``summary`` (the run's counts) and ``seconds``."""
        self.commit()
        write_provenance(self.options)
        if self.cohort is not None:
            write_html_report(self.options, self.cohort, summary, seconds)

    def excel_notes(self) -> list[str]:
        """Under ``--excel``: which CSV tables hold cells a spreadsheet takes for formulas
        (:func:`~.tables.formula_like`), by column, as one note; else none."""
        if not self.options.excel:
            return []
        found = [("each case's tables", self._case_formulas)] if self._case_formulas else []
        found += [(s.path.name, s.formula_cells) for s in self._streams if s.formula_cells]
        if not found:
            return []
        where = "; ".join(
            f"{table}: " + ", ".join(f"{column} {count:,}" for column, count in cells.items())
            for table, cells in found
        )
        return [
            f"--excel: cells begin with = + - or @ ({where}); Excel takes such a cell for a "
            "formula and shows an error such as #NAME? instead of its text (a PatientName "
            "of only its ideographic group, =张三, or a position like -125\\-130\\55). The "
            "CSV holds the values as read: open the tables with --format xlsx, where every "
            "text stays text"
        ]

    @property
    def _streams(self) -> list[TableStream]:
        return [
            *self.primary, *self.hidden, *self.series_primary, *self.series_hidden,
            *self.instance_streams, *self.study_streams,
        ]  # fmt: skip

    def rows(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        for stream in self.primary:
            stream.write(rows)
        if self.hidden:
            hidden = self.options.privacy.shared_rows(rows)
            for stream in self.hidden:
                stream.write(hidden)

    def series(self, series: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
        """A case's series rows (``rows``: its table rows, which name the sources)."""
        if not series:
            return
        policy = self.options.privacy
        shared = policy.shared_series(series, rows, policy.shared_rows(rows))
        for stream in self.series_primary:
            stream.write(series)
        for stream in self.series_hidden:
            stream.write(shared)
        if self.studies is not None:  # what all_series.<format> holds
            self.studies.add(series if policy.writes_identified_tables else shared)
        if self.cohort is not None:
            self.cohort.add_series(policy.primary_series(series, shared))

    def report(self, entries: list[ReportEntry]) -> None:
        self._report.write(entries)
        self.reported += len(entries)
        if self.cohort is not None:
            self.cohort.add_report(entries, self._report.labels)

    def commit(self) -> None:
        self.case_files.wait()
        self.case_files.close()
        self._add_study_streams()
        for stream in self._streams:  # (on an error the run discards them all)
            stream.commit()
        self._report.commit()
        if not self.options.privacy.writes_identified_tables and (self.primary or self.hidden):
            stale = self.options.out / "all_cases_original.csv"
            if stale.exists():  # an earlier run's: it holds the names this run must not leave
                stale.unlink()
                log.info("--desensitize: removed all_cases_original.csv of an earlier run")
            log.info(
                "--desensitize: all_cases_original.csv is not written (it would hold patient names)"
            )

    def _add_study_streams(self) -> None:
        """all_studies in each format, its rows from the series given (none without
        --series), among the streams (:meth:`discard` drops them too)."""
        if self.studies is None:
            return
        rows = self.studies.rows()
        for fmt in self.options.formats:
            path = self.options.out / f"all_studies.{fmt}"
            stream = TableStream(path, fmt, excel=self.options.excel, shape=STUDY_TABLE)  # type: ignore[arg-type]
            self.study_streams.append(stream)
            stream.write(rows)

    def discard(self) -> None:
        """Drop every table's temporary file (each, whatever the others do: a run ended by
        a full disk leaves none behind), after the case files' thread has stopped."""
        try:
            self.case_files.close()
        finally:
            for stream in [*self._streams, self._report]:
                stream.discard()


def _write_case_then(
    options: RunOptions,
    result: CaseResult,
    rows: list[dict[str, Any]],
    then: Callable[[], None] | None,
    stem: str | None = None,
    project_id: int | None = None,
) -> None:
    write_case(options, result, rows, stem, project_id)
    if then is not None:
        then()


def write_case(
    options: RunOptions,
    result: CaseResult,
    rows: list[dict[str, Any]],
    stem: str | None = None,
    project_id: int | None = None,
) -> None:
    """A case's own tables (unless only merged tables are asked for), named by
    ``project_id`` (default: its rows') under ``--desensitize`` (an earlier identified
    run's files of the case removed), else ``stem`` (default: :func:`case_file_stem`)."""
    if options.only_merged:
        return
    out, excel, policy = options.out, options.excel, options.privacy
    hidden = policy.shared_rows(rows)
    primary = policy.primary_rows(rows, hidden)
    shape = CASE_TABLE.with_columns(options.extras.headers)
    if project_id is None and rows:
        project_id = rows[0]["ProjectID"]
    name = policy.table_stem(result.name, project_id)  # (a case without rows has its ID too)
    if name != result.name:
        earlier = case_file_stem(result.name, out)
        for stale in (f"{earlier}.csv", f"{earlier}.desensitized.csv", f"{earlier}.json"):
            (out / stale).unlink(missing_ok=True)  # an earlier, identifying run's files
    else:
        name = stem or case_file_stem(name, out)
    write_csv(out / f"{name}.csv", primary, excel=excel, shape=shape)
    write_csv(out / f"{name}.desensitized.csv", hidden, excel=excel, shape=shape)
    if options.export_json:
        write_json(out / f"{name}.json", primary, shape=shape)


_LONGEST_SUFFIX: Final = ".desensitized.csv"  # of a case's own files
# The run's own files' stems: a case of one of these names must not overwrite them (nor
# they its files), whatever the letter case (a share may ignore it)
_RUN_FILES: Final = frozenset(
    {"all_cases", "all_cases_desensitized", "all_cases_original", "all_series",
     "all_series_desensitized", "all_studies", "all_instances", "extraction_report",
     "case_projectid_map", "deidentification"}
)  # fmt: skip
# What a file name cannot hold on Windows, macOS's SMB shares and the FAT and exFAT of USB
# drives (a folder name on Linux may hold any of them: "CT 08:30", "what?"), and the names
# Windows keeps for devices ("CON.csv" cannot be opened there as a file)
_NOT_PORTABLE: Final = frozenset('<>:"\\|?*').union(map(chr, range(32)))
_WINDOWS_DEVICES: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
     *(f"LPT{i}" for i in range(1, 10))}
)  # fmt: skip


def case_file_stem(case: str, out: Path) -> str:
    """The stem of a case's own files in ``out``: the case's name, unless that would
    overwrite other files or not be a file name, then its first characters, ``~`` and 8
    hex digits of the SHA-256 of the whole name (two such names stay two files):

    * a name of the run's own files (a case folder named ``all_cases`` or
      ``case_projectid_map``: its tables would overwrite the merged table, or the project
      ID map, or be overwritten);
    * a name ending in ``.desensitized`` (``X.desensitized.csv`` is case ``X``'s);
    * a name too long for ``<name>.desensitized.csv`` (255 bytes on most file systems:
      80 Chinese characters, 3 bytes each in UTF-8);
    * a name that is not a file name on Windows or a USB drive (FAT, exFAT), where the
      output may be written or copied: one with ``< > : " \\ | ? *`` or a control
      character (each becomes ``_``), or a device's name (``CON``, ``NUL``, ``COM1`` ...).

    A run also keeps two cases whose names read alike apart, and the report says so
    (:class:`RunOutputs`)."""
    room = name_max(out) - len(_LONGEST_SUFFIX)
    folded = case.casefold()
    size = _stored_size(case)
    if (
        size is not None
        and size <= room
        and folded not in _RUN_FILES
        and not folded.endswith(".desensitized")
        and _portable(case)
    ):
        return case
    # (the hash of the name's UTF-8, the same in any locale; its bytes where not UTF-8)
    mark = "~" + hashlib.sha256(case.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return fitting_name(_storable(case), room - len(mark)) + mark


def _stored_size(name: str) -> int | None:
    """The bytes ``name`` takes as a file name here; None when the locale's encoding of
    file names cannot hold it (a UTF-8 folder named Øle under LANG=zh_CN.GBK)."""
    try:
        return len(os.fsencode(name))
    except UnicodeEncodeError:
        return None


def _portable(name: str) -> bool:
    """Whether ``name`` (a stem: ``.csv`` follows) is a file name on Windows and USB
    drives too (:data:`_NOT_PORTABLE`, :data:`_WINDOWS_DEVICES`)."""
    return _NOT_PORTABLE.isdisjoint(name) and not _is_device(name)


def _is_device(name: str) -> bool:
    return name.split(".", maxsplit=1)[0].rstrip(" ").upper() in _WINDOWS_DEVICES


def _storable(name: str) -> str:
    """``name`` with each character the locale's file names cannot hold, or Windows' and
    USB drives' (:data:`_NOT_PORTABLE`), as ``_``; and ``_`` after a device's name
    (``CON.x`` -> ``CON_.x``: Windows takes ``CON.<anything>`` for the device too)."""
    if _is_device(name):
        device, dot, rest = name.partition(".")
        name = f"{device}_{dot}{rest}"
    if _stored_size(name) is not None and _NOT_PORTABLE.isdisjoint(name):
        return name
    return "".join(
        "_" if char in _NOT_PORTABLE or _stored_size(char) is None else char for char in name
    )


def _renamed_why(case: str, out: Path) -> str:
    """Why :func:`case_file_stem` does not name the case's files after it."""
    size = _stored_size(case)
    if size is None:
        return (
            "the case's name has characters file names cannot hold in this locale "
            f"({sys.getfilesystemencoding()})"
        )
    if size > name_max(out) - len(_LONGEST_SUFFIX):
        return "the case's name is longer than a file name may be"
    if not _NOT_PORTABLE.isdisjoint(case):
        shown = "".join(sorted({repr(c)[1:-1] for c in _NOT_PORTABLE.intersection(case)}))
        return (
            f"the case's name has characters ({shown}) file names cannot hold on Windows "
            "and USB drives (FAT, exFAT), where the output may be copied"
        )
    if _is_device(case):
        return "the case's name is one Windows keeps for a device (CON, NUL, COM1 ...)"
    return (
        "the case's name would overwrite other files (a name of the run's own files, "
        "or one ending in .desensitized)"
    )


def write_html_report(
    options: RunOptions, cohort: Cohort, summary: Mapping[str, Any], seconds: float
) -> None:
    """``report.html``: the cohort at a glance (:mod:`dcm_extractor.outputs.htmlreport`)."""
    policy = options.privacy
    page = render_report(
        cohort,
        summary=summary,
        options=options.to_dict(),
        seconds=seconds,
        deidentified=policy.deidentify,
    )
    write_atomic(options.out / HTML_REPORT_NAME, page.encode("utf-8"))


def write_provenance(options: RunOptions) -> None:
    """How the de-identified tables were made (never the key), beside them."""
    policy = options.privacy
    pseudonymizer = policy.pseudonymizer
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
        }[policy.dates],
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
        + ("" if policy.writes_identified_tables else ", and with --desensitize every table"),
        # whether the other tables hold names and real paths (no: --desensitize); read by
        # `dcm-extract query --paths`, whose paths are then positions, not files
        "identified_tables": policy.writes_identified_tables,
    }
    text = json.dumps(record, ensure_ascii=False, indent=1) + "\n"
    write_atomic(options.out / "deidentification.json", text.encode("utf-8"))
