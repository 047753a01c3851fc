"""Where cases are scanned: in this process, in a pool of worker processes, or on a Dask
cluster; every way gives each case's result, or the error that cost that case alone,
through :func:`~dcm_extractor.runner.batches.batch_outcome`."""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from ..errors import WorkersError
from ..options import RunOptions
from ..reading.extras import Extras
from ..reading.fastheader import FastReader
from ..sources.cases import CaseResult
from . import isolation
from .batches import (
    DEFAULT_CASE_LIMIT,
    INSTANCE_BATCH_CASES,
    MAX_BATCH_CASES,
    batch_outcome,
    case_batches,
    scan_batch,
    scan_or_fail,
)
from .cluster import scan_on_cluster
from .isolation import CaseFailedError, die_with_parent, main_script_hidden, process_context

__all__ = ["WorkerPool", "scan_all"]

log = logging.getLogger(__name__)

BatchResult = list[CaseResult | CaseFailedError]


class WorkerPool:
    """Batches of cases on a pool of worker processes that outlives a dead worker.

    When a worker process dies (killed, out of memory, a crash in a C library), Python's
    pool fails every batch not yet finished. Here the batch being waited for is scanned
    again one case per child process (so a case that kills its process costs itself
    only), and the unfinished batches go to a fresh pool.
    """

    def __init__(
        self,
        batches: list[list[Path]],
        root: Path,
        timeout: float | None,
        workers: int,
        extras: Extras | None = None,
    ) -> None:
        self.batches, self.root, self.timeout, self.workers = batches, root, timeout, workers
        self.extras = extras
        self.context = process_context()
        self.pool = self._new_pool()
        # batches in flight: submitted ahead of the one being taken, a few per worker (a
        # result waits in this process until its cases are taken: all at once would
        # hold the whole run's rows when the workers run ahead of the writing)
        self.ahead = max(2, 2 * workers)
        self.futures: list[Future[BatchResult] | None] = [None] * len(batches)
        self._left = [len(batch) for batch in batches]  # cases of each batch not yet taken
        self._submitted = 0
        self._submit_up_to(self.ahead)
        self.restarts = 0

    def _submit_up_to(self, end: int) -> None:
        while self._submitted < min(end, len(self.batches)):
            self.futures[self._submitted] = self._submit(self.batches[self._submitted])
            self._submitted += 1

    def _new_pool(self) -> ProcessPoolExecutor:
        """Worker processes that end with this one, however it ends (die_with_parent)."""
        return ProcessPoolExecutor(
            self.workers,
            mp_context=self.context,
            initializer=_start_worker,
            initargs=(os.getpid(), isolation.START_METHOD),
        )

    def _submit(self, batch: list[Path]) -> Future[BatchResult]:
        try:
            with main_script_hidden():  # (spawned workers start as work is submitted)
                return self.pool.submit(scan_batch, batch, self.root, self.timeout, self.extras)
        except BrokenProcessPool as err:  # a worker died since: recovered when it is taken
            failed: Future[BatchResult] = Future()
            failed.set_exception(err)
            return failed

    def outcome(self, number: int, index: int, case: str) -> CaseResult:
        """Case ``index`` of batch ``number``: its result, or raises its CaseFailedError.

        Each case is taken once; a batch's result is let go when its last case is taken."""
        self._submit_up_to(number + 1 + self.ahead)
        future = self.futures[number]
        assert future is not None, f"batch {number} taken after its last case"
        if isinstance(future.exception(), BrokenProcessPool):  # waits for the batch
            future = self._recover(number)
        self._left[number] -= 1
        if not self._left[number]:
            self.futures[number] = None
        return batch_outcome(case, future, index, "its worker process died")

    def _recover(self, number: int) -> Future[BatchResult]:
        broken, self.pool = self.pool, self._new_pool()
        broken.shutdown(wait=False, cancel_futures=True)
        self.restarts += 1
        self._check_workers_start()
        for later in range(number + 1, self._submitted):
            future = self.futures[later]
            if future is not None and (not future.done() or future.exception() is not None):
                self.futures[later] = self._submit(self.batches[later])
        batch = self.batches[number]
        log.warning(
            "a worker process died: the %d case(s) of its batch are scanned again, each in "
            "its own process; the unfinished batches go to a new pool",
            len(batch),
        )
        alone: Future[BatchResult] = Future()
        limit = self.timeout or DEFAULT_CASE_LIMIT
        alone.set_result(scan_batch(batch, self.root, limit, self.extras))
        self.futures[number] = alone
        return alone

    def _check_workers_start(self) -> None:
        """Raise :class:`WorkersError` unless a worker of the new pool can run a task
        that does nothing.

        A worker that ends as it starts breaks every pool made after it, and each batch
        scanned alone would fail case by case, each "its process died": not the cases'
        fault."""
        try:
            with main_script_hidden():
                probe = self.pool.submit(os.getpid)
            probe.result()
        except BrokenProcessPool:
            self.pool.shutdown(wait=False, cancel_futures=True)
            raise WorkersError(
                "the run's worker processes end as they start (what they said, if anything, "
                "is above); --workers 1 scans the cases in this process"
            ) from None

    def shutdown(self, now: bool = False) -> None:
        """Let the workers go once their batches are done; ``now``: stop them at once (the
        run was stopped: SIGTERM to each, which ends it as an error would)."""
        if now:
            stop_workers(self.pool)
        with contextlib.suppress(RuntimeError):  # (Ctrl-C while the pool was starting)
            self.pool.shutdown(wait=not now, cancel_futures=True)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """SIGKILL to each worker process of ``pool`` (they only read: nothing to clean up).
    Python 3.11 has no public way (3.14's ``terminate_workers``): the pool's process
    table. A stopped run would otherwise wait at exit for every worker's case to end (a
    large case: minutes), past a scheduler's grace period (SLURM's 30 s) to its SIGKILL.
    Not a signal the workers handle: an exception raised at any point of a worker (inside
    the result queue's lock) left that lock taken and the pool waiting for ever."""
    processes: dict[int, Any] = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.kill()


def _in_order(
    case_dirs: list[Path],
    reused: dict[str, CaseResult],
    pending: dict[str, Callable[[], CaseResult]],
    here: Callable[[Path], CaseResult],
) -> Iterator[tuple[Path, Callable[[], CaseResult]]]:
    """Each case with the callable giving its result: recorded, pending in a pool or on a
    cluster, or scanned here (``here``)."""
    for case_dir in case_dirs:
        if case_dir.name in reused:
            yield case_dir, functools.partial(reused.__getitem__, case_dir.name)
        elif case_dir.name in pending:
            yield case_dir, pending.pop(case_dir.name)  # dropped once used: memory stays flat
        else:
            yield case_dir, functools.partial(here, case_dir)


def _start_worker(parent: int, start_method: str) -> None:
    """A pool worker: it ends with ``parent`` (:func:`die_with_parent`), leaves Ctrl-C to
    the main process and ends at once on SIGTERM (:func:`_leave_on_interrupt`), and
    starts a case's own process (``--case-timeout``) as its run does (``start_method``)."""
    die_with_parent(parent)
    isolation.START_METHOD = start_method
    _leave_on_interrupt()


def _leave_on_interrupt() -> None:
    """In a worker process: Ctrl-C (SIGINT, which a terminal sends to every process of
    the run) is ignored - the main process says the run was interrupted and stops the
    workers (:func:`stop_workers`); a worker waiting for work printed a traceback of
    multiprocessing's internals each - and SIGTERM ends it at once (a forked worker had
    the run's handler, which raises). Not handlers that raise: an exception at any point
    of a worker could leave the pool's result-queue lock taken and the run waiting for
    ever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _in_a_daemon(workers: int) -> bool:
    """Whether this process is a daemonic one (a Celery or Airflow task's, a Dask
    worker's), where multiprocessing starts no worker processes ("daemonic processes are
    not allowed to have children": the run died so); then the cases are scanned here, one
    at a time, and the log says so."""
    if not multiprocessing.current_process().daemon:
        return False
    log.warning(
        "this process is a daemonic one (a Celery, Airflow or Dask worker's?), which may "
        "not start processes: the cases are scanned in it, one at a time, not by %d "
        "workers",
        workers,
    )
    return True


def scan_all(
    case_dirs: list[Path], root: Path, options: RunOptions, reused: dict[str, CaseResult]
) -> Iterator[tuple[Path, Callable[[], CaseResult]]]:
    """Each case with a callable giving its result (or raising), in case order.

    Cases in ``reused`` are not scanned again. With several workers (or a cluster) the
    others go out in batches (:mod:`dcm_extractor.runner.batches`); a failing case costs only
    itself; after a worker process dies its batch is scanned again case by case
    (:class:`WorkerPool`; on Dask the scheduler reruns it), never the run.
    """
    todo = [d for d in case_dirs if d.name not in reused]
    extras = options.extras or None
    reader = FastReader()  # the cases scanned in this process share it
    pending: dict[str, Callable[[], CaseResult]] = {}
    pool: WorkerPool | None = None
    most = INSTANCE_BATCH_CASES if options.instances else MAX_BATCH_CASES
    close_client = None
    if options.scheduler or options.scheduler_file:
        here = root.absolute()  # (a worker's working folder is not this one's)
        pending, close_client = scan_on_cluster(
            [here / d.relative_to(root) for d in todo],
            functools.partial(
                scan_batch, root=here, timeout=options.case_timeout, extras=extras
            ),
            options.scheduler, options.scheduler_file, most, must_see=here,
        )  # fmt: skip
    elif options.workers > 1 and len(todo) > 1 and not _in_a_daemon(options.workers):
        batches = case_batches(todo, options.workers, most)
        pool = WorkerPool(batches, root, options.case_timeout, options.workers, extras)
        for number, batch in enumerate(batches):
            for index, case_dir in enumerate(batch):
                pending[case_dir.name] = functools.partial(
                    pool.outcome, number, index, case_dir.name
                )
    scan_here = functools.partial(scan_or_fail, root=root, timeout=options.case_timeout,
                                  extras=extras, reader=reader)  # fmt: skip
    try:
        yield from _in_order(case_dirs, reused, pending, scan_here)
    except BaseException:  # Ctrl-C, SIGTERM, an error: the workers' cases are not waited for
        if pool is not None:
            pool.shutdown(now=True)
            pool = None
        raise
    finally:
        if pool is not None:
            pool.shutdown()
        if close_client is not None:
            close_client()
