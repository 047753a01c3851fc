"""Cases grouped into batches: the unit of work sent to a worker process or a Dask worker.

A batch is several small cases, or one large one, so that a data set of many one-file
cases is not one task per file, and a batch's result is one message. Within a batch each
case stands alone: a case that fails (time limit, crash, unexpected error) comes back as
its :class:`~dcm_extractor.isolation.CaseFailedError`; the others' results are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from .cases import CaseResult, scan_case
from .isolation import CaseFailedError, scan_case_isolated

__all__ = ["MAX_BATCH_CASES", "case_batches", "scan_batch", "scan_one"]

MAX_BATCH_CASES: Final = 32
BATCHES_PER_WORKER: Final = 16  # enough to even out cases of different sizes


def case_batches(case_dirs: Sequence[Path], workers: int) -> list[list[Path]]:
    """Consecutive cases in batches: about 16 per worker (to even out uneven cases), <= 32 cases."""
    per_batch = len(case_dirs) // max(1, workers * BATCHES_PER_WORKER)
    size = max(1, min(MAX_BATCH_CASES, per_batch))
    return [list(case_dirs[i : i + size]) for i in range(0, len(case_dirs), size)]


def scan_one(case_dir: Path, root: Path, timeout: float | None) -> CaseResult:
    """One case: in this process, or in a child process with a deadline."""
    if timeout:
        return scan_case_isolated(case_dir, root, timeout)
    return scan_case(case_dir, root)


def scan_batch(
    case_dirs: Sequence[Path], root: Path, timeout: float | None
) -> list[CaseResult | CaseFailedError]:
    """Each case's result, or the error that cost that case alone."""
    results: list[CaseResult | CaseFailedError] = []
    for case_dir in case_dirs:
        try:
            results.append(scan_one(case_dir, root, timeout))
        except CaseFailedError as err:
            results.append(err)
        except Exception as err:
            results.append(CaseFailedError(case_dir.name, f"failed: {type(err).__name__}: {err}"))
    return results
