"""Where cases are scanned: in this process, in a pool of worker processes, or on a Dask
cluster; every way gives each case's result, or the error that cost that case alone,
through :func:`~dcm_extractor.batches.batch_outcome`."""

from __future__ import annotations

import functools
import multiprocessing
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .batches import batch_outcome, case_batches, scan_batch, scan_one
from .cases import CaseResult
from .cluster import scan_on_cluster
from .options import RunOptions

__all__ = ["scan_all"]


def scan_all(
    case_dirs: list[Path], root: Path, options: RunOptions, reused: dict[str, CaseResult]
) -> Iterator[tuple[Path, Callable[[], CaseResult]]]:
    """Each case with a callable giving its result (or raising), in case order.

    Cases in ``reused`` are not scanned again. With several workers (or a cluster) the
    others go out in batches (:mod:`dcm_extractor.batches`); a failing case costs only
    itself, a worker process that dies costs the cases of its batch, reported as
    failed, never the run.
    """
    todo = [d for d in case_dirs if d.name not in reused]
    pending: dict[str, Callable[[], CaseResult]] = {}
    pool, close_client = None, None
    if options.scheduler or options.scheduler_file:
        pending, close_client = scan_on_cluster(
            todo, functools.partial(scan_batch, root=root, timeout=options.case_timeout),
            options.scheduler, options.scheduler_file,
        )  # fmt: skip
    elif options.workers > 1 and len(todo) > 1:
        context = multiprocessing.get_context(
            "fork" if sys.platform.startswith("linux") else "spawn"
        )
        pool = ProcessPoolExecutor(options.workers, mp_context=context)
        for batch in case_batches(todo, options.workers):
            future = pool.submit(scan_batch, batch, root, options.case_timeout)
            for index, case_dir in enumerate(batch):
                pending[case_dir.name] = functools.partial(
                    batch_outcome, case_dir.name, future, index, "its worker process died"
                )
    try:
        for case_dir in case_dirs:
            if case_dir.name in reused:
                yield case_dir, functools.partial(reused.__getitem__, case_dir.name)
            elif case_dir.name in pending:
                yield case_dir, pending.pop(case_dir.name)  # dropped once used: memory stays flat
            else:
                yield case_dir, functools.partial(scan_one, case_dir, root, options.case_timeout)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if close_client is not None:
            close_client()
