"""What a run may write and say about patients, decided once (docs/privacy.md).

A :class:`PrivacyPolicy` is built once from the run's options (``RunOptions.privacy``);
every place that names a case, writes rows, logs an error or keeps a file asks it,
instead of each reading the ``desensitize`` flag and deciding on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .pseudonyms import DateMode, Pseudonymizer, deidentify_rows, shift_date

# Series table columns that PS3.15 Table E.1-1 lists as free text or identifying: blank in
# de-identified series rows unless --allow-phi-columns (dates follow --keep/--shift-dates).
SERIES_FREE_TEXT: Final = (
    "StudyDescription",
    "SeriesDescription",
    "ProtocolName",
    "ContrastBolusAgent",
)

__all__ = ["PrivacyPolicy"]


@dataclass(frozen=True)
class PrivacyPolicy:
    """Identified or de-identified outputs, and how cases are named in them.

    Parameters
    ----------
    deidentify
        Every output (tables, report, log, console, file names) is to be shareable:
        ``--desensitize``.
    pseudonymizer
        Makes the pseudonyms of the de-identified tables (written by every run).
    dates
        What de-identified tables do with StudyDate (and the series table's SeriesDate;
        SeriesTime is kept only with ``keep``).
    allow_phi
        ``--allow-phi-columns``: identifying ``--columns`` and the series table's free
        text stay in de-identified tables.
    identifying_columns
        The headers of the ``--columns`` that can identify a patient; blanked in
        de-identified rows unless ``allow_phi``.

    Examples
    --------
    >>> policy = PrivacyPolicy(deidentify=True)
    >>> policy.case_name("Zhang San", 1), policy.table_stem("Zhang San", 1)
    ('P000001', 'P000001')
    """

    deidentify: bool = False
    pseudonymizer: Pseudonymizer = field(default_factory=Pseudonymizer)
    dates: DateMode = "remove"
    allow_phi: bool = False
    identifying_columns: tuple[str, ...] = ()

    # -- names --------------------------------------------------------------------------

    @staticmethod
    def label(project_id: int) -> str:
        """A case's pseudonymous name, ``P<ProjectID>`` (six digits)."""
        return f"P{project_id:06d}"

    def case_name(self, case: str, project_id: int) -> str:
        """How the log, the console and the progress display name a case."""
        return self.label(project_id) if self.deidentify else case

    def table_stem(self, case: str, project_id: int | None) -> str:
        """The file name (without suffix) of a case's own tables."""
        if self.deidentify and project_id is not None:
            return self.label(project_id)
        return case

    def report_labels(self, ids: Mapping[str, int]) -> dict[str, str] | None:
        """What the report names cases by (case -> ``P<ProjectID>``); None: by their folder
        names and paths."""
        return {case: self.label(pid) for case, pid in ids.items()} if self.deidentify else None

    @property
    def names_moved_files(self) -> bool:
        """Whether the log may list moved zips by name (zip names carry patient names)."""
        return not self.deidentify

    # -- rows ---------------------------------------------------------------------------

    def shared_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The de-identified copy of ``rows`` (pseudonyms, dates as asked, no file names,
        identifying ``--columns`` blank unless allowed)."""
        shared = deidentify_rows(rows, self.pseudonymizer, self.dates)
        for row in shared if not self.allow_phi else []:
            for header in self.identifying_columns:
                if header in row:
                    row[header] = ""
        return shared

    def shared_series(
        self,
        series: list[dict[str, Any]],
        rows: list[dict[str, Any]],
        shared: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """The de-identified copy of a case's ``series`` rows.

        ``rows`` and ``shared`` are the case's table rows and their de-identified copy:
        the series' sources are renamed as the rows' FileNames were.
        """
        renamed = {r["FileName"]: s["FileName"] for r, s in zip(rows, shared, strict=True)}
        blank = () if self.allow_phi else (*SERIES_FREE_TEXT, *self.identifying_columns)
        out = []
        for row in series:
            new = dict(row)
            patient = str(row.get("PatientID") or "")
            new["PatientID"] = self.pseudonymizer.pseudonym("PatientID", patient)
            for column in ("StudyDate", "SeriesDate"):
                value = str(row.get(column) or "")
                if self.dates == "remove":
                    new[column] = ""
                elif self.dates == "shift" and value:
                    new[column] = shift_date(value, self.pseudonymizer.date_shift_days(patient))
            if self.dates != "keep":
                new["SeriesTime"] = ""
            for column in blank:
                if column in new:
                    new[column] = ""
            sources = str(row.get("Sources") or "").split("; ")
            new["Sources"] = "; ".join(renamed.get(s, "") for s in sources if s)
            out.append(new)
        return out

    def shown_instances(
        self, columns: dict[str, Sequence[Any]], project_id: int
    ) -> dict[str, Sequence[Any]]:
        """What the instance table shows of a case's rows, given column by column
        (:meth:`InstanceRows.columns <dcm_extractor.sources.instances.InstanceRows.columns>`):
        the columns, or under ``deidentify`` paths by position (``P<ProjectID>/file00004``,
        ``member00002``), acquisition dates as StudyDate's, times blank unless dates are
        kept, identifying ``--columns`` blank unless allowed."""
        if not self.deidentify:
            return columns
        count = len(columns["ProjectID"])
        blank = [""] * count
        label = self.label(project_id)
        shown = dict(columns)
        shown["FilePath"] = [f"{label}/{file}" for file in columns["_AnonymousFile"]]
        shown["ZipMember"] = columns["_AnonymousMember"]
        if self.dates == "remove":
            shown["AcquisitionDate"] = blank
        elif self.dates == "shift":
            days = self.pseudonymizer.date_shift_days
            shown["AcquisitionDate"] = [
                shift_date(str(date), days(str(patient))) if date else ""
                for date, patient in zip(
                    columns["AcquisitionDate"], columns["_PatientID"], strict=True
                )
            ]
        if self.dates != "keep":
            shown["AcquisitionTime"] = blank
        for column in () if self.allow_phi else self.identifying_columns:
            if column in shown:
                shown[column] = blank
        return shown

    def primary_series(
        self, series: list[dict[str, Any]], shared: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """What the primary series table holds: the rows, or their de-identified copy."""
        return shared if self.deidentify else series

    def primary_rows(
        self, rows: list[dict[str, Any]], shared: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """What the primary tables hold: the rows, or their de-identified copy
        (``shared`` when already made)."""
        if not self.deidentify:
            return rows
        return shared if shared is not None else self.shared_rows(rows)

    @property
    def writes_identified_tables(self) -> bool:
        """Whether ``all_cases_original.csv`` and identified primary tables are written."""
        return not self.deidentify

    # -- errors and files ---------------------------------------------------------------

    def error_text(self, reason: str, error: BaseException) -> str:
        """What the log says about a failed case: the fixed reason under de-identification
        (an error's message can quote a path or a value), else the error itself."""
        return reason if self.deidentify else str(error)

    @property
    def manifest_in_out(self) -> bool:
        """Whether the resume manifest (rows with names) may live in ``--out``."""
        return not self.deidentify

    @property
    def cleans_out(self) -> bool:
        """Whether identifying leftovers of earlier runs are removed from ``--out`` (and the
        log started afresh) before the run."""
        return self.deidentify
