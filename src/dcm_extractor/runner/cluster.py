"""Cases on a Dask cluster: the same batches of cases as the local pool, on remote workers.

Dask is optional (``pip install medkit[dask]``) and imported only here, when asked for.
Dask cannot cancel a running task, so a case's risky work runs in a child process with
a deadline when ``--case-timeout`` is given (as locally). When a worker dies, the
scheduler runs its cases again elsewhere; their results arrive as if nothing happened.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DcmExtractorError
from ..sources.cases import CaseResult
from .batches import MAX_BATCH_CASES, batch_outcome, case_batches
from .isolation import CaseFailedError

__all__ = ["ClusterError", "scan_on_cluster"]


class ClusterError(DcmExtractorError):
    """Dask is not installed, or the scheduler cannot be reached."""


def _client(address: str | None, scheduler_file: str | None) -> Any:
    try:
        from distributed import Client  # noqa: PLC0415 - optional dependency
    except ImportError as err:
        raise ClusterError("--scheduler needs Dask: pip install 'medkit[dask]'") from err
    if scheduler_file is not None and not Path(scheduler_file).is_file():
        raise ClusterError(f"no Dask scheduler file at {scheduler_file}: is a scheduler running?")
    try:
        if scheduler_file is not None:
            return Client(scheduler_file=scheduler_file, timeout="30s")
        return Client(address, timeout="30s")
    except (OSError, TimeoutError, ValueError) as err:
        where = scheduler_file or address
        raise ClusterError(f"cannot reach the Dask scheduler at {where}: {err}") from err


class _GatheredOnce:
    """A batch's Dask future, its result fetched once.

    Dask's ``Future.result()`` fetches a result from its worker and unpickles it on every
    call (distributed 2026.8). Taken case by case, a batch of n cases came n times: n^2
    case results unpickled in this process, n times the bytes over the network. Once
    fetched, the future is let go, so the workers may drop the result.
    """

    def __init__(self, future: Any) -> None:
        self._future: Any = future
        self._results: list[CaseResult | CaseFailedError] = []
        self._error: Exception | None = None

    def result(self) -> list[CaseResult | CaseFailedError]:
        """The batch's results, or the error its task raised (every time asked)."""
        if self._future is not None:
            future, self._future = self._future, None
            try:
                self._results = future.result()
            except Exception as err:  # KilledWorker, the task's own error: each case says so
                self._error = err
        if self._error is not None:
            raise self._error
        return self._results


def scan_on_cluster(
    case_dirs: list[Path],
    scan: Callable[[list[Path]], list[CaseResult | CaseFailedError]],
    address: str | None,
    scheduler_file: str | None,
    most: int = MAX_BATCH_CASES,
) -> tuple[dict[str, Callable[[], CaseResult]], Callable[[], None]]:
    """Submit ``case_dirs`` in batches (of at most ``most`` cases).

    Returns a callable per case giving its result (or raising
    :class:`~dcm_extractor.runner.isolation.CaseFailedError`), and one that closes the client.
    """
    client = _client(address, scheduler_file)
    try:
        workers = max(1, sum(client.nthreads().values()))
        batches = case_batches(case_dirs, workers, most)
        futures = client.map(scan, batches, pure=False)
    except BaseException:
        client.close()
        raise
    out: dict[str, Callable[[], CaseResult]] = {}
    for batch, future in zip(batches, futures, strict=True):
        once = _GatheredOnce(future)
        for index, case_dir in enumerate(batch):
            out[case_dir.name] = functools.partial(
                batch_outcome, case_dir.name, once, index, "its Dask task failed"
            )
    return out, client.close
