"""Cases on a Dask cluster: the same per-case batches as the local pool, on remote workers.

Dask is optional (``pip install medkit[dask]``) and imported only here, when asked for.
Dask cannot cancel a running task, so a case's risky work runs in a child process with
a deadline when ``--case-timeout`` is given (as locally). When a worker dies, the
scheduler runs its cases again elsewhere; their results arrive as if nothing happened.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .cases import CaseResult
from .errors import DcmExtractorError

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


def scan_on_cluster(
    case_dirs: list[Path],
    reused: dict[str, CaseResult],
    scan: Callable[[Path], CaseResult],
    address: str | None,
    scheduler_file: str | None,
) -> Iterator[tuple[Path, Callable[[], CaseResult]]]:
    """Submit every case not in ``reused``; give each case's result (or error) in case order."""
    client = _client(address, scheduler_file)
    try:
        todo = [d for d in case_dirs if d.name not in reused]
        futures = dict(zip([d.name for d in todo], client.map(scan, todo, pure=False), strict=True))
        for case_dir in case_dirs:
            if case_dir.name in reused:
                yield case_dir, functools.partial(reused.__getitem__, case_dir.name)
            else:
                yield case_dir, futures[case_dir.name].result
    finally:
        client.close()
