"""What a run did: :class:`RunSummary`, the one object that keeps its counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sources.cases import CaseResult

__all__ = ["RunSummary"]


@dataclass
class RunSummary:
    """The counts of a run, kept here only: ``files == images + skipped`` over the
    completed cases and the data root's own files."""

    cases: int = 0
    failed: int = 0
    rows: int = 0
    files: int = 0
    images: int = 0
    skipped: int = 0
    # headers the fast reader left to pydicom's full parse, by reason (HANDOVER_REASONS)
    handovers: dict[str, int] = field(default_factory=dict)
    reused: int = 0  # cases unchanged since a recorded run, not scanned again
    reported: int = 0  # lines in the report: skipped and failed files, row problems
    series: int = 0  # rows of the series table
    cleaned: str = ""  # de-identified runs: what earlier runs left that was removed
    notes: list[str] = field(default_factory=list)  # what the run's user should look at

    @property
    def handed_over(self) -> int:
        """Headers the fast reader left to pydicom's full parse."""
        return sum(self.handovers.values())

    def add_files(self, result: CaseResult) -> None:
        """A scanned case's files (or the data root's own), images, skips and hand-overs."""
        self.files += result.files
        self.images += result.images
        self.skipped += result.skipped
        for reason, count in result.handovers.items():
            self.handovers[reason] = self.handovers.get(reason, 0) + count

    def add_case(self, result: CaseResult | None) -> None:
        """A case done: its result (its rows and series counted too), or None: it failed."""
        self.cases += 1
        if result is None:
            self.failed += 1
            return
        self.add_files(result)
        self.rows += len(result.rows)
        self.series += len(result.series)

    def line(self) -> str:
        """One human summary line."""
        most_first = sorted(self.handovers.items(), key=lambda item: (-item[1], item[0]))
        reasons = ", ".join(f"{count} {reason}" for reason, count in most_first)
        return (
            f"{self.cases} cases ({self.failed} failed, {self.reused} unchanged), "
            f"{self.rows} rows"
            + (f", {self.series} series; " if self.series else "; ")
            + f"{self.files} files: {self.images} images + {self.skipped} skipped "
            f"(pydicom's full parse took over for {self.handed_over}"
            + (f": {reasons})" if reasons else ")")
        )
