"""A Dask cluster for cohort work: the connection ``pack`` and ``catalog`` share
(``--scheduler tcp://HOST:PORT`` or ``--scheduler-file``, as dcm-extract's)."""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from ..errors import MedmaskError, MedmaskWarning

__all__ = [
    "WORKERS_PER_CORE",
    "check_cluster",
    "check_workers",
    "dask_client",
    "worker_threads",
    "workers_problem",
]


WORKERS_PER_CORE: Final = 4  # far more processes than cores only compete for the same cores


def check_workers(workers: int) -> None:
    """Refuse a number of local worker processes outside 1 to four a core (500 by a slip
    would start 500 processes, each with numpy and a case in memory), as dcm-extract's
    ``RunOptions`` does.

    Raises
    ------
    ValueError
        ``workers`` is not 1 to :data:`WORKERS_PER_CORE` times the machine's cores.
    """
    why = workers_problem(workers, "a Dask scheduler")
    if why is not None:
        raise ValueError(f"workers {workers!r}: {why}")


def workers_problem(workers: object, more: str) -> str | None:
    """Why ``workers`` local processes are too many or too few for this machine (``more``:
    what takes more machines), or None."""
    cores = os.cpu_count() or 1
    most = WORKERS_PER_CORE * cores
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= most:
        return f"this machine has {cores} core(s); use 1 to {most} (more machines: {more})"
    return None


def _started(make: Callable[[], Any], attempts: int = 3) -> Any:
    """``make()`` - a Dask client - tried again when its event loop's thread did not start
    within the 10 s Dask gives it, which a machine busy on every core can take: Dask then
    fails an ``assert`` (distributed 2026.8, ``LoopRunner._start_unlocked``), a traceback
    that said nothing of the cause."""
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


@contextmanager
def dask_client(
    address: str | None, scheduler_file: str | None, folders: Iterable[Iterable[Path]] = ()
) -> Iterator[Any]:
    """A ``distributed.Client`` of the scheduler at ``address`` or in ``scheduler_file``,
    closed on leaving, whose workers run this medmask and see, for each group of paths in
    ``folders`` (the cases, the archives), the folder holding the group
    (:func:`check_cluster`).

    Raises
    ------
    MedmaskError
        Dask is not installed, the scheduler file is missing, the scheduler cannot be
        reached within 30 s, or the cluster cannot run medmask (:func:`check_cluster`).
    """
    try:
        from distributed import Client  # noqa: PLC0415 - optional dependency
    except ImportError as err:
        raise MedmaskError("--scheduler needs Dask: pip install 'medkit[dask]'") from err
    if scheduler_file is not None and not Path(scheduler_file).is_file():
        raise MedmaskError(f"no Dask scheduler file at {scheduler_file}: is a scheduler running?")
    where = scheduler_file or address
    try:
        with warnings.catch_warnings(record=True) as heard:
            warnings.simplefilter("always")
            client = _started(
                lambda: (
                    Client(scheduler_file=scheduler_file, timeout="30s")
                    if scheduler_file is not None
                    else Client(address, timeout="30s")
                )
            )
    except (OSError, TimeoutError, ValueError) as err:
        raise MedmaskError(
            f"cannot reach the Dask scheduler at {where}: {err}{_hint(where)}"
        ) from err
    try:
        for warning in heard:  # (Dask's table of packages that differ, said once, named)
            text = str(warning.message).strip()
            warnings.warn(MedmaskWarning(f"the Dask cluster at {where}: {text}"), stacklevel=3)
        shared = tuple(dict.fromkeys(f for f in map(_shared_folder, folders) if f is not None))
        check_cluster(client, f"the Dask cluster at {where}", shared)
        yield client
    finally:
        client.close()


_NEEDED: Final = "import medmask.ops.pack, medmask.ops.catalog"  # the tasks' functions


def _shared_folder(paths: Iterable[Path]) -> Path | None:
    """The folder holding all of ``paths`` (absolute; the nearest that exists here)."""
    listed = [str(Path(p).absolute()) for p in paths]
    if not listed:
        return None
    folder = Path(os.path.commonpath(listed))
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_cluster(client: Any, where: str, folders: tuple[Path, ...] = ()) -> None:
    """Raise :class:`~medmask.errors.MedmaskError` unless the scheduler and every worker of
    ``client``'s cluster can import medmask, in this medkit version, and every worker sees
    each of ``folders`` (absolute paths).

    Without this, a cluster started from another environment (a SLURM job's Python without
    medkit, or an older one) failed every case alone ("its Dask task failed"), the reason
    only in the scheduler's log. Workers that join later are not asked.
    """
    try:
        here = importlib.metadata.version("medkit")
    except importlib.metadata.PackageNotFoundError:  # (run from a source tree: no version)
        here = ""
    install = f"install medkit {here or '(this one)'} where the cluster runs"
    try:
        client.run_on_scheduler(exec, _NEEDED, {})
    except Exception as err:
        raise MedmaskError(
            f"{where}: its scheduler cannot import medmask ({type(err).__name__}: {err}): "
            f"{install}; the scheduler and the workers need it"
        ) from err
    imported = client.run(exec, _NEEDED, {}, on_error="return")
    failed = {w: r for w, r in imported.items() if isinstance(r, BaseException)}
    if failed:
        worker, why = next(iter(failed.items()))
        raise MedmaskError(
            f"{where}: {len(failed)} of its {len(imported)} workers cannot import medmask "
            f"({worker}: {type(why).__name__}: {why}): {install}"
        )
    versions = client.run(importlib.metadata.version, "medkit", on_error="return")
    # (a worker running from a source tree has no version to compare: only its import)
    other = {w: v for w, v in versions.items() if here and isinstance(v, str) and v != here}
    if other:
        worker, version = next(iter(other.items()))
        raise MedmaskError(
            f"{where}: {len(other)} of its {len(versions)} workers run medkit {version} "
            f"({worker}), this is {here}: {install}, so that every case is read the same way"
        )
    for folder in folders:
        seen = client.run(os.path.isdir, str(folder), on_error="return")
        blind = [w for w, found in seen.items() if found is not True]
        if blind:
            raise MedmaskError(
                f"{where}: {len(blind)} of its {len(seen)} workers do not see the folder "
                f"{folder} ({blind[0]}): the workers read and write the files where this "
                "process sees them, so they must be on a file system the workers share, "
                "under the same path"
            )


def worker_threads(client: Any) -> int:
    """The threads of the cluster's workers, together (at least 1)."""
    threads: dict[str, int] = client.nthreads()
    return max(1, sum(threads.values()))


def _hint(where: str | None) -> str:
    """What to say of an address that is the dashboard's (copied from a notebook)."""
    if where is not None and where.lower().startswith(("http://", "https://")):
        return (
            "; that is the address of the scheduler's dashboard (a web page), not of the "
            "scheduler: give tcp://HOST:PORT as `dask scheduler` prints it (port 8786 by "
            "default) or --scheduler-file"
        )
    return ""
