"""Cases on a Dask cluster: the same batches of cases as the local pool, on remote workers.

Dask is optional (``pip install medkit[dask]``) and imported only here, when asked for.
Dask cannot cancel a running task, so a case's risky work runs in a child process with
a deadline when ``--case-timeout`` is given (as locally). When a worker dies, the
scheduler runs its cases again elsewhere; their results arrive as if nothing happened.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from ..errors import DcmExtractorError
from ..sources.cases import CaseResult
from .batches import MAX_BATCH_CASES, batch_outcome, case_batches
from .isolation import CaseFailedError

log = logging.getLogger(__name__)

__all__ = [
    "AHEAD_PER_THREAD",
    "MIN_AHEAD",
    "PREFETCH",
    "WINDOW_READ_EVERY",
    "ClusterError",
    "check_cluster",
    "scan_on_cluster",
]

# Batches submitted beyond the one being taken: per worker thread of the cluster, and at
# least (a cluster that starts with no workers, as dask-jobqueue's do, is given work)
AHEAD_PER_THREAD: Final = 2
MIN_AHEAD: Final = 4
WINDOW_READ_EVERY: Final = 1.0  # seconds between two readings of the cluster's threads
# Batches after the one being taken whose results are fetched as soon as they are done:
# so many wait here, whatever the cluster's size (the others wait on the workers)
PREFETCH: Final = 2
FETCH_WAIT: Final = 5.0  # seconds a fetch waits before it asks whether the client is closed


class ClusterError(DcmExtractorError):
    """Dask is not installed, or the scheduler cannot be reached."""


def _client(address: str | None, scheduler_file: str | None, must_see: Path | None = None) -> Any:
    try:
        from distributed import Client  # noqa: PLC0415 - optional dependency
    except ImportError as err:
        raise ClusterError("--scheduler needs Dask: pip install 'medkit[dask]'") from err
    if scheduler_file is not None and not Path(scheduler_file).is_file():
        raise ClusterError(f"no Dask scheduler file at {scheduler_file}: is a scheduler running?")
    where = scheduler_file or address
    try:  # (waiting for the scheduler - to connect, or to come back when lost - Dask's
        # connect timeout: 30 s unless distributed.comm.timeouts.connect says otherwise)
        with warnings.catch_warnings(record=True) as heard:
            warnings.simplefilter("always")
            client = _started(
                lambda: Client(scheduler_file=scheduler_file) if scheduler_file else Client(address)
            )
    except (OSError, TimeoutError, ValueError) as err:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {where}: {err}{_hint(where)}"
        ) from err
    for warning in heard:  # (Dask's table of packages that differ: into the log, not bare)
        log.warning("the Dask cluster at %s: %s", where, str(warning.message).strip())
    try:
        check_cluster(
            client, f"the Dask cluster at {where}", () if must_see is None else (must_see,)
        )
    except BaseException:
        client.close()
        raise
    return client


def _started(make: Callable[[], Any], attempts: int = 3) -> Any:
    """``make()`` - a Dask client - tried again when its event loop's thread did not start
    within the 10 s Dask gives it, which a machine busy on every core can take: Dask then
    fails an ``assert`` (distributed 2026.8, ``LoopRunner._start_unlocked``), a traceback
    that said nothing of the cause (seen in a test run with both cores busy)."""
    for attempt in range(attempts):
        try:
            return make()
        except AssertionError as err:
            if attempt == attempts - 1:
                raise TimeoutError(
                    f"the Dask client's event loop did not start, {attempts} times in 10 s "
                    "(this machine too busy?)"
                ) from err
    raise AssertionError("unreachable")  # pragma: no cover


_DISTRIBUTION: Final = "medkit"
_NEEDED: Final = "import dcm_extractor.runner.batches"  # what the tasks' functions need


def check_cluster(client: Any, where: str, folders: tuple[Path, ...] = ()) -> None:
    """Raise :class:`ClusterError` unless the scheduler and every worker of ``client``'s
    cluster can import dcm_extractor, in this medkit version, and every worker sees each
    of ``folders`` (absolute paths) as a folder.

    Without this, a cluster started from another environment (a SLURM job's Python without
    medkit, or an older one) failed every case alone, "its Dask task failed
    (RuntimeError)", the reason only in the scheduler's log. Workers that join later are
    not asked.
    """
    try:
        here = importlib.metadata.version(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # (run from a source tree: no version)
        here = ""
    install = f"install medkit {here or '(this one)'} where the cluster runs"
    try:
        client.run_on_scheduler(exec, _NEEDED, {})
    except Exception as err:
        raise ClusterError(
            f"{where}: its scheduler cannot import dcm_extractor ({type(err).__name__}: "
            f"{err}): {install}; the scheduler and the workers need it"
        ) from err
    imported = client.run(exec, _NEEDED, {}, on_error="return")
    versions = client.run(importlib.metadata.version, _DISTRIBUTION, on_error="return")
    failed = {w: r for w, r in imported.items() if isinstance(r, BaseException)}
    if failed:
        worker, why = next(iter(failed.items()))
        raise ClusterError(
            f"{where}: {len(failed)} of its {len(imported)} workers cannot import "
            f"dcm_extractor ({worker}: {type(why).__name__}: {why}): {install}"
        )
    # (a worker running from a source tree has no version to compare: only its import)
    other = {w: v for w, v in versions.items() if here and isinstance(v, str) and v != here}
    if other:
        worker, version = next(iter(other.items()))
        raise ClusterError(
            f"{where}: {len(other)} of its {len(versions)} workers run medkit "
            f"{version} ({worker}), this is {here}: {install}, so that every case is "
            "read the same way"
        )
    for folder in folders:
        seen = client.run(os.path.isdir, str(folder), on_error="return")
        blind = [w for w, found in seen.items() if found is not True]
        if blind:
            raise ClusterError(
                f"{where}: {len(blind)} of its {len(seen)} workers do not see the folder "
                f"{folder} ({blind[0]}): the workers read the cases where this process "
                "sees them, so the data must be on a file system they share, under the "
                "same path"
            )


class _Fetched:
    """A batch's Dask future, its result fetched once.

    Dask's ``Future.result()`` fetches a result from its worker and unpickles it on every
    call (distributed 2026.8). Taken case by case, a batch of n cases came n times: n^2
    case results unpickled in this process, n times the bytes over the network. Here the
    result is fetched once - by Dask's callback thread as soon as the task is done, once
    :meth:`prefetch` asked for it (so the transfer overlaps the main thread's writing), or
    by the first case taken, whichever comes first - and the future is let go, so the
    workers may drop the result.
    """

    def __init__(self, future: Any, error: Exception | None = None) -> None:
        self._lock = threading.Lock()
        self._future: Any = future
        self._results: list[CaseResult | CaseFailedError] = []
        self._error = error  # (no future: why the batch could not be submitted)
        self._asked = False

    def prefetch(self) -> None:
        """Fetch the result when the task is done (now if it is), in a thread of its own."""
        if not self._asked and self._future is not None:
            self._asked = True
            self._future.add_done_callback(self._when_done)

    def _when_done(self, future: Any) -> None:
        """Dask calls this in its callback thread also when a task did not finish: cancelled
        as the client closes, lost with the scheduler. Fetching such a result waits for
        ever, and Python joins that thread at exit: a run (and the test suite) that never
        ended. So only a finished task's result is fetched here, and in a daemon thread
        (a transfer cut by a lost scheduler cannot hold the process); any other's is the
        main thread's to ask, which then gets the error."""
        if future.status == "finished":
            threading.Thread(target=self._fetch, name="dcm-extract-prefetch", daemon=True).start()

    def _fetch(self, _: Any = None) -> None:
        with self._lock:  # (the callback thread and the main thread: one of them fetches)
            if self._future is None:
                return
            future, self._future = self._future, None
            try:
                self._results = _result(future)
            except Exception as err:  # KilledWorker, the task's own error: each case says so
                self._error = err

    def killed(self) -> bool:
        """Whether the task failed because its workers died (Dask's KilledWorker)."""
        try:
            self.result()
        except Exception as err:
            return type(err).__name__ == "KilledWorker"
        return False

    def result(self) -> list[CaseResult | CaseFailedError]:
        """The batch's results, or the error its task raised (every time asked)."""
        self._fetch()
        if self._error is not None:
            raise self._error
        return self._results


def _result(future: Any) -> Any:
    """``future.result()``, in waits of :data:`FETCH_WAIT` seconds between which the
    client is asked whether it still has a scheduler: a fetch that a lost scheduler cut
    waits for ever otherwise, even after the client closed (distributed 2026.8)."""
    while True:
        try:
            return future.result(timeout=FETCH_WAIT)
        except TimeoutError:
            if future.client.status in ("closing", "closed"):
                raise ClusterError("the scheduler was lost and the Dask client closed") from None


class _ClusterBatches:
    """The batches of a run on a Dask cluster, a bounded number submitted at a time.

    Batches are submitted in order, at most :meth:`ahead` beyond the one whose cases are
    being taken; the next go out as cases are taken. So results wait - on the workers,
    or here once fetched - for at most that many batches, however much faster the cluster
    scans than this process writes (with ``--instances`` a batch's result holds a row per
    file). The window follows the cluster: it is :data:`AHEAD_PER_THREAD` batches per
    worker thread, the threads read from the scheduler again as batches are taken (at most
    every :data:`WINDOW_READ_EVERY` seconds), so a cluster that grows during the run
    (dask-jobqueue, adaptive scaling) is given more; never fewer than :data:`MIN_AHEAD`.
    The results of the :data:`PREFETCH` batches after the one being taken are fetched as
    soon as they are done (the transfer overlaps the writing); the others wait on the
    workers, so this process holds a bounded number of results whatever the cluster's size.
    """

    def __init__(
        self,
        client: Any,
        scan: Callable[[list[Path]], list[CaseResult | CaseFailedError]],
        batches: list[list[Path]],
    ) -> None:
        self.client, self.scan, self.batches = client, scan, batches
        self._fetched: list[_Fetched | None] = [None] * len(batches)
        self._left = [len(batch) for batch in batches]  # cases of each batch not yet taken
        self._submitted = 0
        self._ahead, self._read_at = MIN_AHEAD, -math.inf  # the window, when to read it again
        self._submit_for(0)

    def ahead(self) -> int:
        """How many batches may be submitted beyond the one being taken."""
        threads: int = sum(self.client.nthreads().values())
        return max(MIN_AHEAD, AHEAD_PER_THREAD * threads)

    def _submit_for(self, number: int) -> None:
        now = time.monotonic()
        if now >= self._read_at:  # (a question to the scheduler: ~0.5 ms, so not per batch)
            with contextlib.suppress(Exception):  # (the scheduler gone: the window kept)
                self._ahead = self.ahead()
            self._read_at = now + WINDOW_READ_EVERY
        end = min(len(self.batches), number + 1 + self._ahead)
        if self._submitted >= end:
            return
        try:
            if self.client.status in ("closing", "closed"):  # (its tasks would never end)
                raise ClusterError("the scheduler was lost and the Dask client closed")
            futures = self.client.map(self.scan, self.batches[self._submitted : end], pure=False)
            fetched = [_Fetched(future) for future in futures]
        except Exception as err:  # the scheduler gone mid-run: these cases fail, not the run
            fetched = [_Fetched(None, err) for _ in range(self._submitted, end)]
        self._fetched[self._submitted : end] = fetched
        self._submitted = end

    def outcome(self, number: int, index: int, case: str) -> CaseResult:
        """Case ``index`` of batch ``number``: its result, or raises its CaseFailedError.

        Each case is taken once; a batch is let go when its last case is taken."""
        if self._left[number] == len(self.batches[number]):  # the batch's first case taken
            self._submit_for(number)
            for later in self._fetched[number + 1 : number + 1 + PREFETCH]:
                if later is not None:
                    later.prefetch()
        fetched = self._fetched[number]
        assert fetched is not None, f"batch {number} taken after its last case"
        self._left[number] -= 1
        if not self._left[number]:
            self._fetched[number] = None
        if fetched.killed():
            return self._alone(number, index, case)
        return batch_outcome(case, fetched, index, "its Dask task failed")

    def _alone(self, number: int, index: int, case: str) -> CaseResult:
        """Case ``index`` of batch ``number``, whose workers died running it (out of memory?)
        as often as the scheduler allows (KilledWorker), scanned again in a task of its
        own, when taken: one of the batch's cases may be the cause, or the batch ran beside
        the cause on the dying workers; so each case costs itself only, and one at a time,
        nothing of this batch dies beside the cause again."""
        if index == 0:
            log.warning(
                "the Dask workers running a batch of %d case(s) died (out of memory?): each "
                "case is scanned again in a task of its own",
                len(self.batches[number]),
            )
        try:
            alone = _Fetched(self.client.submit(self.scan, [self.batches[number][index]],
                                                pure=False))  # fmt: skip
        except Exception as err:  # the scheduler gone
            alone = _Fetched(None, err)
        return batch_outcome(
            case, alone, 0, "its Dask worker died scanning it (out of memory?), also alone"
        )


def scan_on_cluster(
    case_dirs: list[Path],
    scan: Callable[[list[Path]], list[CaseResult | CaseFailedError]],
    address: str | None,
    scheduler_file: str | None,
    most: int = MAX_BATCH_CASES,
    must_see: Path | None = None,
) -> tuple[dict[str, Callable[[], CaseResult]], Callable[[], None]]:
    """Submit ``case_dirs`` in batches (of at most ``most`` cases), a bounded number at a
    time (:class:`_ClusterBatches`), once the cluster is known to run this dcm_extractor
    and its workers to see ``must_see`` (:func:`check_cluster`).

    Returns a callable per case giving its result (or raising
    :class:`~dcm_extractor.runner.isolation.CaseFailedError`), and one that closes the client.
    """
    client = _client(address, scheduler_file, must_see)
    try:
        workers = max(1, sum(client.nthreads().values()))
        batches = case_batches(case_dirs, workers, most)
        queue = _ClusterBatches(client, scan, batches)
    except BaseException:
        client.close()
        raise
    out: dict[str, Callable[[], CaseResult]] = {}
    for number, batch in enumerate(batches):
        for index, case_dir in enumerate(batch):
            out[case_dir.name] = functools.partial(queue.outcome, number, index, case_dir.name)
    return out, client.close


def _hint(where: str | None) -> str:
    """What to say of an address that is the dashboard's (copied from a notebook)."""
    if where is not None and where.lower().startswith(("http://", "https://")):
        return (
            "; that is the address of the scheduler's dashboard (a web page), not of the "
            "scheduler: give tcp://HOST:PORT as `dask scheduler` prints it (port 8786 by "
            "default) or --scheduler-file"
        )
    return ""
