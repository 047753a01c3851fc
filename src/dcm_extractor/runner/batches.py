"""Cases grouped into batches: the unit of work sent to a worker process or a Dask worker.

A batch is several small cases, or one large one, so that a data set of many one-file
cases is not one task per file, and a batch's result is one message. Within a batch each
case stands alone: a case that fails (time limit, crash, unexpected error) comes back as
its :class:`~dcm_extractor.runner.isolation.CaseFailedError`; the others' results are kept.
"""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Final

from ..reading.extras import Extras
from ..reading.fastheader import FastReader
from ..sources.cases import CaseResult, scan_case
from ..sources.names import nameless, readable
from .isolation import CaseFailedError, scan_case_isolated

__all__ = [
    "DEFAULT_CASE_LIMIT",
    "INSTANCE_BATCH_CASES",
    "MAX_BATCH_CASES",
    "batch_outcome",
    "case_batches",
    "scan_batch",
    "scan_one",
    "scan_or_fail",
]

MAX_BATCH_CASES: Final = 32
# With --instances a result holds a row per file (~1.3 KB), and a batch's result waits
# whole in the main process until its last case is written: smaller batches keep the main
# process's peak near a run without the table (100,000 files, 2 workers: 166 MB with 32
# cases a batch, 158 with 4; 145 without --instances).
INSTANCE_BATCH_CASES: Final = 4
# Without --case-timeout no case may run longer than this (a stalled network share):
# generous, as 10^5 files of one case scan in a few minutes here.
DEFAULT_CASE_LIMIT: Final = 3600.0
BATCHES_PER_WORKER: Final = 16  # enough to even out cases of different sizes


def case_batches(
    case_dirs: Sequence[Path], workers: int, most: int = MAX_BATCH_CASES
) -> list[list[Path]]:
    """Consecutive cases in batches: about 16 per worker (to even out uneven cases), at
    most ``most`` cases (:data:`INSTANCE_BATCH_CASES` when results hold instance rows)."""
    per_batch = len(case_dirs) // max(1, workers * BATCHES_PER_WORKER)
    size = max(1, min(most, per_batch))
    return [list(case_dirs[i : i + size]) for i in range(0, len(case_dirs), size)]


def scan_one(
    case_dir: Path,
    root: Path,
    timeout: float | None,
    *,
    default_limit: float = DEFAULT_CASE_LIMIT,
    extras: Extras | None = None,
    reader: FastReader | None = None,
) -> CaseResult:
    """One case: in a child process killed at ``timeout`` (``--case-timeout``), or in this
    process under the generous ``default_limit``.

    The default limit costs nothing per case (a child process per case costs ~10 ms): a
    timer signal interrupts the scan in this process's main thread. Where there is no main
    thread to interrupt (a Dask worker's thread), only ``--case-timeout`` limits a case.
    ``extras``: what to read beyond the fixed columns (:mod:`dcm_extractor.reading.extras`);
    ``reader``: the header reader the caller's cases share (a child process makes its own).
    """
    if timeout:
        return scan_case_isolated(case_dir, root, timeout, extras)
    if threading.current_thread() is not threading.main_thread() or not default_limit:
        return scan_case(case_dir, root, extras=extras, reader=reader)
    return _scan_with_alarm(case_dir, root, default_limit, extras, reader)


class _PastLimitError(BaseException):
    """The timer's interrupt: a BaseException, so the per-file ``except Exception`` that
    keeps one bad file from costing its case cannot swallow it (as KeyboardInterrupt)."""


# After the limit the timer fires again this often until the case stops: an interrupt that
# came while Python could not deliver it (in a garbage-collector callback or a __del__,
# whose exceptions Python prints and drops) is not the last.
ALARM_RETRY: Final = 1.0


class _Alarm:
    """The default limit's SIGALRM handler for one case."""

    __slots__ = ("stopping",)

    def __init__(self) -> None:
        self.stopping = False

    def fire(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:  # (the case is over: a late timer must not raise in its clean-up)
            return
        if _in_gc_callback(frame):  # its exception would be dropped: soon again, elsewhere
            signal.setitimer(signal.ITIMER_REAL, ALARM_RETRY / 100)
            return
        signal.setitimer(signal.ITIMER_REAL, ALARM_RETRY)  # (should this one be dropped too)
        raise _PastLimitError


def _in_gc_callback(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs in one of :data:`gc.callbacks` (or in what one calls)."""
    codes = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    codes.discard(None)
    while frame is not None and codes:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


def _scan_with_alarm(
    case_dir: Path, root: Path, limit: float, extras: Extras | None, reader: FastReader | None
) -> CaseResult:
    alarm = _Alarm()
    previous = signal.signal(signal.SIGALRM, alarm.fire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        return scan_case(case_dir, root, extras=extras, reader=reader)
    except _PastLimitError:
        # (first, and nothing in this line lets Python run a signal handler before it)
        alarm.stopping = True
        reason = f"stopped after the {limit:g} s default time limit (--case-timeout sets it)"
        raise CaseFailedError(readable(case_dir.name), reason) from None
    finally:
        alarm.stopping = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def scan_batch(
    case_dirs: Sequence[Path], root: Path, timeout: float | None, extras: Extras | None = None
) -> list[CaseResult | CaseFailedError]:
    """Each case's result, or the error that cost that case alone. The batch's cases
    share one header reader (:class:`~dcm_extractor.reading.fastheader.FastReader`: its
    bounded caches live as long as the batch; a Dask worker's threads never share one)."""
    results: list[CaseResult | CaseFailedError] = []
    reader = FastReader()
    for case_dir in case_dirs:
        try:
            results.append(scan_or_fail(case_dir, root, timeout, extras=extras, reader=reader))
        except CaseFailedError as err:
            results.append(err)
    return results


def scan_or_fail(
    case_dir: Path,
    root: Path,
    timeout: float | None,
    *,
    extras: Extras | None = None,
    reader: FastReader | None = None,
) -> CaseResult:
    """:func:`scan_one`, an error no file of the case accounts for (each file's own are in
    its report) becoming the case's :class:`CaseFailedError`: the case fails, not the run.
    Its reason is the error's kind (its message may quote a path, which names the
    patient: kept as ``private``, for identified reports only)."""
    try:
        return scan_one(case_dir, root, timeout, extras=extras, reader=reader)
    except CaseFailedError:
        raise
    except Exception as err:
        reason = f"failed: {nameless(err, message=False)}"
        raise CaseFailedError(readable(case_dir.name), reason, str(err)) from err


def batch_outcome(case: str, future: Any, index: int, lost: str) -> CaseResult:
    """Case ``index`` of a batch's future (a process pool's or Dask's): its result, or its
    CaseFailedError; ``lost`` says why when the whole batch's task failed."""
    try:
        outcome = future.result()[index]
    except Exception as err:  # BrokenProcessPool, KilledWorker: the task itself is gone
        raise CaseFailedError(case, f"{lost} ({type(err).__name__})") from err
    if isinstance(outcome, CaseFailedError):
        raise outcome
    assert isinstance(outcome, CaseResult)
    return outcome
