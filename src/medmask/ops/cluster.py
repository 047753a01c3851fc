"""A Dask cluster for cohort work: the connection ``pack`` and ``catalog`` share
(``--scheduler tcp://HOST:PORT`` or ``--scheduler-file``, as dcm-extract's)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import MedmaskError

__all__ = ["dask_client", "worker_threads"]


@contextmanager
def dask_client(address: str | None, scheduler_file: str | None) -> Iterator[Any]:
    """A ``distributed.Client`` of the scheduler at ``address`` or in ``scheduler_file``,
    closed on leaving.

    Raises
    ------
    MedmaskError
        Dask is not installed, the scheduler file is missing, or the scheduler cannot be
        reached within 30 s.
    """
    try:
        from distributed import Client  # noqa: PLC0415 - optional dependency
    except ImportError as err:
        raise MedmaskError("--scheduler needs Dask: pip install 'medkit[dask]'") from err
    if scheduler_file is not None and not Path(scheduler_file).is_file():
        raise MedmaskError(f"no Dask scheduler file at {scheduler_file}: is a scheduler running?")
    try:
        client = (
            Client(scheduler_file=scheduler_file, timeout="30s")
            if scheduler_file is not None
            else Client(address, timeout="30s")
        )
    except (OSError, TimeoutError, ValueError) as err:
        where = scheduler_file or address
        raise MedmaskError(f"cannot reach the Dask scheduler at {where}: {err}") from err
    try:
        yield client
    finally:
        client.close()


def worker_threads(client: Any) -> int:
    """The threads of the cluster's workers, together (at least 1)."""
    threads: dict[str, int] = client.nthreads()
    return max(1, sum(threads.values()))
