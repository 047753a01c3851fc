"""NIfTI masks into archives: one folder or multi-label file per archive, many in parallel.

``pack`` streams: it holds one mask in memory at a time, so a 117-organ full-body case
needs the memory of one volume, not of 117. An archive appears under its final name
only when complete; a failed pack leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import glob
import multiprocessing
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from spacetransformer import Space

from ..errors import GeometryMismatchError, MedmaskError, MedmaskWarning
from ..exchange.nifti import nifti_stem
from ..files.archive import MaskArchive
from ..files.atomic import atomic_path, check_writable
from ..files.names import readable
from .allocator import roomy_allocator
from .cluster import check_workers, dask_client, worker_threads
from .sources import natural_key, source_kind

if TYPE_CHECKING:
    from ..exchange.dicom.source import SourceSeries

__all__ = [
    "PackFailure",
    "PackResult",
    "archive_name_for",
    "case_masks",
    "natural_key",
    "pack",
    "pack_many",
    "parse_group",
    "parse_groups",
    "run_jobs",
]


TOTALSEG_FOLDER = "segmentations"


@dataclass(frozen=True)
class PackResult:
    """What one :func:`pack` call stored."""

    source: Path
    target: Path
    masks: list[str]
    groups: dict[str, list[str]]
    empty: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    input_bytes: int = 0
    archive_bytes: int = 0
    drift: list[tuple[str, float]] = field(default_factory=list)  # files whose geometry
    # differs from the first one's by float noise: (file name, largest difference, mm)
    kind: str = ""  # the source's kind (medmask.ops.sources.SOURCE_KINDS): "dicom-seg" ...
    kind_label: str = ""  # how a summary line calls it: "NIfTI", "DICOM SEG" ...
    notes: list[str] = field(default_factory=list)  # what reading changed, said as warnings
    # (a SEG's FRACTIONAL thresholds, a file turned onto the first one's axis order)


@dataclass(frozen=True)
class PackFailure:
    """A source :func:`pack_many` could not pack, and why."""

    source: Path
    reason: str

    @classmethod
    def of(cls, source: Path, err: Exception) -> PackFailure:
        """``source``'s failure, said as one line naming the file at fault: an OSError's
        file and the system's reason, else the error's message after ``source``."""
        reason = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        if isinstance(err, OSError) and err.strerror:
            reason = f"{err.filename or source}: {err.strerror}"
        elif str(source) not in reason:
            reason = f"{source}: {reason}"
        return cls(source, reason)


def parse_group(text: str) -> tuple[str, str]:
    """``"ribs_left=rib_left_*"`` -> ``("ribs_left", "rib_left_*")``.

    Raises
    ------
    ValueError
        Not of the form ``NAME=GLOB`` with both parts non-empty.
    """
    name, sep, pattern = text.partition("=")
    if not sep or not name.strip() or not pattern.strip():
        raise ValueError(f"group {text!r} is not NAME=GLOB (e.g. ribs_left='rib_left_*')")
    return name.strip(), pattern.strip()


def parse_groups(texts: Sequence[str]) -> dict[str, str]:
    """Every ``--group NAME=GLOB`` as ``{name: glob}`` (:func:`parse_group`).

    Raises
    ------
    ValueError
        One is not of the form ``NAME=GLOB``, or a name is given twice (the later would
        replace the earlier without a word).
    """
    groups: dict[str, str] = {}
    for text in texts:
        name, pattern = parse_group(text)
        if name in groups:
            raise ValueError(
                f"group {name!r} is given twice ({groups[name]!r}, {pattern!r}); one glob a "
                "group, or give the group another name"
            )
        groups[name] = pattern
    return groups


def case_masks(source: str | os.PathLike[str]) -> Path:
    """What of ``source`` is packed: its ``segmentations/`` folder when it is a case
    folder as TotalSegmentator's data set lays one out (``<case>/ct.nii.gz`` beside
    ``<case>/segmentations/``: the image is no mask), else ``source`` itself."""
    path = Path(source)
    nested = path / TOTALSEG_FOLDER
    return nested if path.is_dir() and nested.is_dir() else path


def archive_name_for(source: str | os.PathLike[str]) -> str:
    """The archive file name :func:`pack_many` gives a source: ``<folder or stem>.mska``.

    TotalSegmentator writes ``<case>/segmentations/``: such a folder is named after the case.
    """
    path = Path(source)
    if path.is_file():
        return nifti_stem(path) + ".mska"
    path = path.resolve()
    if path.name == TOTALSEG_FOLDER and path.parent.name:
        return path.parent.name + ".mska"
    return path.name + ".mska"


def pack(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    groups: Mapping[str, str] | None = None,
    level: int | None = None,
    overwrite: bool = False,
    strict_geometry: bool = False,
    reference: Space | SourceSeries | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    study_uid: str | None = None,
) -> PackResult:
    """Pack per-organ NIfTI masks, a multi-label NIfTI or a DICOM SEG into an archive.

    Parameters
    ----------
    source : str or os.PathLike
        A folder of ``<name>.nii.gz`` masks (TotalSegmentator layout; every file one
        mask named after the file), a multi-label ``.nii``/``.nii.gz`` whose label
        names come from its label table or JSON sidecar (each label one mask), or a
        DICOM SEG file (or a folder of one segmentation's SEG instances; each segment
        one mask named by its label), or a 3D Slicer ``.seg.nrrd`` (each segment one
        mask, overlapping layers included).
    target : str or os.PathLike
        The ``.mska`` file to write.
    groups : Mapping[str, str], optional
        ``{group name: glob}``: each group is stored as the union of the masks whose
        names match the glob (``{"ribs_left": "rib_left_*"}``).
    level : int, optional
        compression level (1-22); default :data:`medmask.codecs.DEFAULT_LEVEL` (small),
        :data:`medmask.codecs.FAST_LEVEL` writes faster and a little larger.
    overwrite : bool
        Replace an existing ``target``.
    strict_geometry : bool
        Refuse files whose geometry differs from the first file's at all. By default
        differences up to :data:`medmask.model.space.GEOMETRY_TOLERANCE` (float noise) are
        accepted, listed in :attr:`PackResult.drift` and warned about (the archive
        keeps the first file's geometry).
    reference : spacetransformer.Space or medmask.exchange.dicom.source.SourceSeries, optional
        DICOM SEG only: the grid to place its frames on, by default the grid the frames
        span. The image series the SEG was drawn on (``read_source_series(ct)``): its
        grid, once the SEG is checked to be of that series (frame of reference,
        referenced series, patient; :class:`SourceMismatchError` otherwise); or a Space
        (an archive's) to read it onto. A series is recorded in the archive as the one
        the masks were drawn on (its Series, Frame of Reference and Study UIDs).
    series_uid : str, optional
        The SeriesInstanceUID of the image series the masks were drawn on, recorded in
        the archive (catalogs join on it); with ``reference`` a series, it must be its.
    frame_of_reference_uid, study_uid : str, optional
        That series' FrameOfReferenceUID and StudyInstanceUID, recorded with it (only with
        ``series_uid``).

    Returns
    -------
    PackResult

    Raises
    ------
    MedmaskError
        The source holds no masks, a group matches no mask or clashes with a mask's
        name, or ``target`` exists; :class:`FormatError` when a file is not a readable
        mask or its geometry differs from the others.
    """
    src, dst = case_masks(source), Path(target)
    if not src.exists():
        raise MedmaskError(f"{src}: no such file or folder")
    check_writable(dst, overwrite)
    if level is not None and not 1 <= level <= 22:
        raise MedmaskError(f"level must be between 1 and 22, got {level}")
    if (frame_of_reference_uid or study_uid) and not series_uid:
        raise MedmaskError("a frame of reference or study UID is recorded with a series UID")
    series = _image_series(reference, series_uid, frame_of_reference_uid, study_uid)
    kind = source_kind(src)
    read = kind.read(src, strict_geometry=strict_geometry, reference=reference)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as partial, MaskArchive(partial, "w", level=level) as archive:
        names = []
        for name, mask, file_label in read.masks:
            archive.add_mask(mask, name, file_label=file_label, meaning=read.meanings.get(name))
            names.append(name)
        if not names:
            raise MedmaskError(f"{src}: {read.nothing}")
        if reference is not None and kind.name not in _READ_ONTO_A_GRID:
            _on_the_grid(src, archive.space, reference)
        if series is not None:
            archive.set_image_series(*series)
        stats = archive.statistics()
        empty = [name for name in names if stats[name].voxel_count == 0]
        stored_groups = _add_groups(archive, groups or {}, names)
    result = PackResult(
        src, dst, names, stored_groups, empty, read.skipped, read.input_bytes,
        dst.stat().st_size, read.drift, kind.name, kind.label, read.notes,
    )  # fmt: skip
    _warn(result)
    return result


# the sources that --source and --like place onto a grid (the others bring their own)
_READ_ONTO_A_GRID = frozenset({"dicom-seg", "dicom-rtstruct"})


def _on_the_grid(src: Path, space: Space | None, reference: object) -> None:
    """Refuse masks of a file that brings its own grid (NIfTI, NRRD, Slicer) when that
    grid is not the ``--source`` series' (or a box of its voxels) or the ``--like`` grid:
    the series would be recorded as the one the masks were drawn on, and a catalog would
    join them to it."""
    from ..exchange.dicom.grid import describe_space, map_axes  # noqa: PLC0415 - numpy only
    from ..model.space import spaces_close  # noqa: PLC0415

    if space is None:
        return
    folder = getattr(reference, "folder", None)
    grid = getattr(reference, "grid", None)
    why = (
        f"{src}: masks of these files keep their own grid; --source and --like read a "
        "DICOM SEG or RTSTRUCT onto a grid, and record the series the masks were drawn on"
    )
    if grid is not None:
        try:
            map_axes(space, grid, f"the source series in {folder}")
        except GeometryMismatchError as err:
            raise GeometryMismatchError(f"{why}: {err}") from err
    elif isinstance(reference, Space) and not spaces_close(space, reference):
        raise GeometryMismatchError(
            f"{why}: the masks' grid ({describe_space(space)}) is not the --like grid "
            f"({describe_space(reference)})"
        )


def _image_series(
    reference: object, series_uid: str | None, frame: str | None, study: str | None
) -> tuple[str, str | None, str | None] | None:
    """(Series, Frame of Reference, Study UIDs) to record: the reference series', or the
    one given."""
    known = getattr(reference, "series_instance_uid", None)
    if known is not None:
        if series_uid is not None and series_uid != known:
            raise MedmaskError(f"--series-uid {series_uid} is not the series of --source ({known})")
        header = getattr(reference, "header", None)
        study = str(header.get("StudyInstanceUID", "")) if header is not None else ""
        return known, getattr(reference, "frame_of_reference_uid", None) or None, study or None
    return None if series_uid is None else (series_uid, frame, study)


def _warn(result: PackResult) -> None:
    """Say what reading changed (:attr:`PackResult.notes`) and which files' geometry the
    archive did not keep (float noise, but not silent); in a worker process nothing (the
    main process says it, :func:`_pack_in_worker`)."""
    if getattr(_HEARD, "notes", None) is not None:
        return
    for note in result.notes:
        warnings.warn(MedmaskWarning(note), stacklevel=3)
    if not result.drift:
        return
    file, largest = max(result.drift, key=lambda item: item[1])
    warnings.warn(
        MedmaskWarning(
            f"{result.source}: {len(result.drift)} of {len(result.masks)} files differ from "
            f"the first one's geometry by float noise, up to {largest:.3g} mm ({file}); the "
            "archive keeps the first one's (strict_geometry / --strict-geometry refuses them)"
        ),
        stacklevel=3,
    )


def pack_many(
    sources: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    groups: Mapping[str, str] | None = None,
    level: int | None = None,
    overwrite: bool = False,
    workers: int = 1,
    on_done: Callable[[PackResult | PackFailure], None] | None = None,
    strict_geometry: bool = False,
) -> list[PackResult | PackFailure]:
    """Pack each source into ``out_dir/<name>.mska``, ``workers`` at a time.

    A source that fails costs only its own archive: it is returned as a
    :class:`PackFailure` with the reason, and the others go on. Results come back in
    the order of ``sources``; ``on_done`` is called as each finishes (for progress).

    Raises
    ------
    MedmaskError
        Two sources would write the same archive name.
    ValueError
        ``workers`` is not 1 to four a core (:func:`~medmask.ops.cluster.check_workers`).
    """
    check_workers(workers)
    out = Path(out_dir)
    targets: dict[str, Path] = {}
    for source in sources:
        name = archive_name_for(source)
        if name in targets:
            raise MedmaskError(f"{targets[name]} and {source} would both be packed into {name}")
        targets[name] = Path(source)
    out.mkdir(parents=True, exist_ok=True)
    jobs: list[Job] = [(Path(s), out / archive_name_for(s), {}) for s in sources]
    results: dict[Path, PackResult | PackFailure] = {}
    options = {
        "groups": groups, "level": level, "overwrite": overwrite,
        "strict_geometry": strict_geometry,
    }  # fmt: skip
    for source, outcome in run_jobs(jobs, options, workers):
        results[source] = outcome
        if on_done is not None:
            on_done(outcome)
    return [results[source] for source, _, _ in jobs]


# (source, target, the keywords of pack() this job adds to the options all jobs share)
Job = tuple[Path, Path, Mapping[str, Any]]


def run_jobs(
    jobs: Sequence[Job],
    options: Mapping[str, Any],
    workers: int = 1,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
) -> Iterator[tuple[Path, PackResult | PackFailure]]:
    """Pack each ``(source, target, own)`` with ``options`` and ``own`` (:func:`pack`'s
    keywords: ``series_uid``, ... of this source), here,
    in ``workers`` local processes or on a Dask cluster; ``(source, outcome)`` as each
    finishes. A source that fails, or whose worker dies, is a :class:`PackFailure`.

    Raises
    ------
    MedmaskError
        Dask is not installed, or its scheduler cannot be reached.
    """
    if scheduler is not None or scheduler_file is not None:
        yield from _on_cluster(jobs, options, scheduler, scheduler_file)
    elif workers <= 1 or len(jobs) <= 1 or _in_a_daemon(workers):
        for source, target, own in jobs:
            yield source, _pack_or_fail(source, target, **options, **own)
    else:
        pool = _LocalPool(workers)
        done: set[Path] = set()
        try:
            for source, outcome in pool.outcomes(jobs, options):
                done.add(source)
                yield source, outcome
        except BaseException:  # (Ctrl-C, SIGTERM: the workers' cases are not waited for)
            pool.stop([target for source, target, _ in jobs if source not in done])
            raise
        pool.close()


class _LocalPool:
    """Jobs on ``workers`` local processes, outliving a worker that dies.

    When a worker process dies (the kernel's out-of-memory killer, a crash in a C
    library), Python's pool fails every job not finished: one case too large for the
    machine cost all the cases after it ("worker failed: BrokenProcessPool"). Here the
    jobs the workers were running - the first ``workers`` unfinished ones, as the pool
    hands out jobs in order - are packed again, each alone in a process of its own (a
    case that kills its process costs itself only, and says how it died), and the other
    unfinished jobs go to a new pool. Spawned processes: zstd's and numpy's threads in
    this process make fork unsafe.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = self._new_pool()
        self.alone: Any = None  # the process packing a job alone, while it runs

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers, mp_context=get_context("spawn"), initializer=_leave_on_interrupt
        )

    def outcomes(
        self, jobs: Sequence[Job], options: Mapping[str, Any]
    ) -> Iterator[tuple[Path, PackResult | PackFailure]]:
        """``(source, outcome)`` of every job, as each finishes."""
        left = list(jobs)
        while left:
            with _main_script_not_run():  # (the processes start as the jobs are submitted)
                futures: dict[Future[PackResult | PackFailure], tuple[int, Job]] = {
                    self.pool.submit(_pack_in_worker, job[0], job[1], **options, **job[2]): (
                        number, job
                    )
                    for number, job in enumerate(left)
                }  # fmt: skip
            unfinished: list[tuple[int, Job]] = []
            for future in as_completed(futures):
                number, job = futures.pop(future)  # its result is not kept past here
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    unfinished.append((number, job))
                    continue
                except Exception as err:  # (a result that could not be sent back)
                    outcome = PackFailure(job[0], f"worker failed: {err!r}")
                if isinstance(outcome, PackResult):
                    _warn(outcome)  # warnings of worker processes stay there
                yield job[0], outcome
            left = [job for _, job in sorted(unfinished, key=lambda item: item[0])]
            if not left:
                return
            suspects, left = left[: self.workers], left[self.workers :]
            broken, self.pool = self.pool, self._new_pool()
            broken.shutdown(wait=False, cancel_futures=True)
            held = ", ".join(readable(str(source)) for source, _, _ in suspects)
            warnings.warn(
                MedmaskWarning(
                    f"a worker process died (killed? out of memory?): the case(s) the "
                    f"workers held ({held}) are packed again, each in a process of its own; "
                    f"the other {len(left)} go on in new worker processes"
                ),
                stacklevel=2,
            )
            for source, target, own in suspects:
                _remove_partials([target])  # (what the dead worker was writing)
                yield source, self._alone(source, target, {**options, **own})

    def _alone(
        self, source: Path, target: Path, options: Mapping[str, Any]
    ) -> PackResult | PackFailure:
        """One job packed in a process of its own; how the process died, if it did."""
        context = get_context("spawn")
        receiving, sending = context.Pipe(duplex=False)
        process = context.Process(
            target=_pack_into_pipe, args=(sending, source, target, dict(options)), daemon=True
        )
        with _main_script_not_run():
            process.start()
        self.alone = process
        sending.close()
        outcome: PackResult | PackFailure | None
        try:
            outcome = receiving.recv()
        except EOFError:  # it died
            outcome = None
        finally:
            receiving.close()
            process.join()
            self.alone = None
        if outcome is None:
            _remove_partials([target])
            return PackFailure(
                source,
                f"{source}: its worker process died ({_death(process.exitcode)}) while "
                "packing it, also when packed alone",
            )
        if isinstance(outcome, PackResult):
            _warn(outcome)
        return outcome

    def close(self) -> None:
        """Let the workers go (every job is done)."""
        self.pool.shutdown()

    def stop(self, targets: list[Path]) -> None:
        """Stop at once (:func:`_stop_workers`), the process packing a job alone too."""
        if self.alone is not None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                self.alone.kill()
        _stop_workers(self.pool, targets)


def _pack_into_pipe(
    sending: Any, source: Path, target: Path, options: dict[str, Any]
) -> None:  # pragma: no cover - runs in a child process (coverage does not follow it)
    """In a process of its own: :func:`_pack_in_worker`'s outcome sent back."""
    _leave_on_interrupt()
    sending.send(_pack_in_worker(source, target, **options))
    sending.close()


def _death(code: int | None) -> str:
    """How a process ended, from its exit code."""
    if code is None or code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    if -code == signal.SIGKILL:
        return f"killed by {name}: out of memory?"
    return f"killed by {name}"


def _stop_workers(pool: ProcessPoolExecutor, targets: list[Path]) -> None:
    """Kill the workers of a stopped run at once, then remove the temporary files of the
    archives they were writing (:func:`~medmask.files.atomic.atomic_path`'s
    ``.<name>.<random>.tmp``). SIGKILL, not a signal they handle: an exception raised at
    any point of a worker could leave the pool's result-queue lock taken, the run waiting
    for ever. Python 3.11 has no public way (3.14's ``terminate_workers``): the pool's
    process table."""
    processes: list[Any] = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.kill()
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
            process.join(10)
    with contextlib.suppress(RuntimeError):  # (stopped while the pool was starting: its
        pool.shutdown(wait=False, cancel_futures=True)  # thread not started yet)
    _remove_partials(targets)


def _remove_partials(targets: list[Path]) -> None:
    """The temporary files of ``targets`` a stopped or dead worker left."""
    for target in targets:
        for partial in target.parent.glob(f".{glob.escape(target.name)}*.tmp"):
            partial.unlink(missing_ok=True)


def _leave_on_interrupt() -> None:
    """In a worker process: Ctrl-C (SIGINT, which a terminal sends to every process of
    the run) is ignored - the main process says the run was interrupted and stops the
    workers (:func:`_stop_workers`); a worker waiting for work printed a traceback of
    multiprocessing's internals each. Not a handler that raises: an exception at any
    point of a worker could leave the pool's result-queue lock taken."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _main_script_not_run() -> Iterator[None]:
    """Start processes that do not run the caller's script again.

    A spawned process first runs the parent's ``__main__`` (its file, or its module under
    ``python -m``) so that functions defined there can be found; a script calling
    ``pack_cohort(..., workers=2)`` without ``if __name__ == "__main__":`` then packed
    nothing ("worker failed: BrokenProcessPool" for every case, each child printing
    multiprocessing's bootstrapping error). The workers run medmask's functions only, so
    while the pool starts them ``__main__`` shows neither file nor module name, as in a
    notebook, and the children skip it.
    """
    main = sys.modules.get("__main__")
    hidden = {key: getattr(main, key) for key in ("__file__", "__spec__") if hasattr(main, key)}
    if main is None or not hidden:
        yield
        return
    for key in hidden:
        if key == "__spec__":
            main.__spec__ = None  # (multiprocessing reads it: None, as a script's is)
        else:
            delattr(main, key)
    try:
        yield
    finally:
        for key, value in hidden.items():
            setattr(main, key, value)


def _in_a_daemon(workers: int) -> bool:
    """Whether this process is a daemonic one (a Celery or Airflow task's, a Dask
    worker's), where multiprocessing starts no worker processes ("daemonic processes are
    not allowed to have children"); then the cases are packed here, one at a time, with
    a warning."""
    if not multiprocessing.current_process().daemon:
        return False
    warnings.warn(
        MedmaskWarning(
            "this process is a daemonic one (a Celery, Airflow or Dask worker's?), which "
            f"may not start processes: the cases are packed in it, one at a time, not by "
            f"{workers} workers"
        ),
        stacklevel=4,
    )
    return True


def _on_cluster(
    jobs: Sequence[Job],
    options: Mapping[str, Any],
    address: str | None,
    scheduler_file: str | None,
) -> Iterator[tuple[Path, PackResult | PackFailure]]:
    """The jobs on a Dask cluster's workers, in batches of consecutive cases."""
    folders = ([source for source, _, _ in jobs], [target.parent for _, target, _ in jobs])
    with dask_client(address, scheduler_file, folders) as client:
        from distributed import as_completed as completed  # noqa: PLC0415 - optional

        threads = worker_threads(client)
        size = max(1, min(_MAX_BATCH, len(jobs) // (threads * _BATCHES_PER_THREAD)))
        batches = [list(jobs[i : i + size]) for i in range(0, len(jobs), size)]

        def submit(batch: list[Job]) -> Any:
            # absolute paths: a worker's working folder need not be this process's
            return client.submit(
                _pack_batch, [(s.absolute(), t.absolute(), own) for s, t, own in batch],
                dict(options), pure=False,
            )  # fmt: skip

        futures = {submit(batch): batch for batch in batches}
        suspects: list[Job] = []
        for future in completed(futures):
            batch = futures.pop(future)  # released: the cluster forgets its result
            try:
                outcomes = future.result()
            except Exception as err:  # the task itself failed (a worker lost, ...)
                if type(err).__name__ != "KilledWorker":
                    outcomes = [PackFailure(s, _task_failed(s, err)) for s, _, _ in batch]
                else:
                    # workers died running it (out of memory?) as often as the scheduler
                    # allows; one of its cases may be the cause, or it ran beside the
                    # cause on the dying workers: each case once more at the end, alone
                    # on the cluster (nothing dies beside it)
                    suspects += batch
                    continue
            yield from _named(batch, outcomes)
        for job in suspects:
            try:
                outcomes = submit([job]).result()
            except Exception as err:
                outcomes = [PackFailure(job[0], _task_failed(job[0], err))]
            yield from _named([job], outcomes)


def _named(
    batch: list[Job], outcomes: list[PackResult | PackFailure]
) -> Iterator[tuple[Path, PackResult | PackFailure]]:
    """A Dask task's outcomes, named as the caller named the cases (the workers were given
    absolute paths), warnings said."""
    for (source, target, _), there in zip(batch, outcomes, strict=True):
        if isinstance(there, PackResult):
            here = dataclasses.replace(there, source=source, target=target)
            _warn(here)
            yield source, here
        else:
            yield source, PackFailure(source, there.reason)


def _task_failed(source: Path, err: BaseException) -> str:
    """Why a case's Dask task failed."""
    if type(err).__name__ == "KilledWorker":
        return (
            f"{source}: its Dask worker died packing it (out of memory?), each time the "
            f"scheduler tried it: {err}"
        )
    return f"{source}: its Dask task failed: {err!r}"


# Cases per Dask task: a task costs the scheduler milliseconds and the workers a round
# trip, so consecutive cases go together - about 16 tasks per worker thread (to even out
# uneven cases), at most 8 cases each (the last batches end close together: a worker
# finishing early waits at most 8 cases for the other).
_BATCHES_PER_THREAD = 16
_MAX_BATCH = 8


def _pack_batch(batch: list[Job], options: dict[str, Any]) -> list[PackResult | PackFailure]:
    with roomy_allocator():  # Dask's workers return every freed buffer (ops/allocator.py)
        return [_pack_in_worker(source, target, **options, **own) for source, target, own in batch]


_HEARD = threading.local()  # .notes: the warnings of the pack this thread runs, or None
_HOOK = threading.Lock()
_hooked = [False]


def _pack_in_worker(source: Path, target: Path, **options: Any) -> PackResult | PackFailure:
    """:func:`_pack_or_fail` in a worker process (a pool's or a Dask worker's), what it
    warns of carried back in the result's notes, for the main process to say.

    A worker's warnings stayed there: printed raw to its stderr (file, line and source
    line of medmask's code) by a local pool, repeats of one line dropped (Python shows a
    warning once per place and process), in a Dask worker's log or nowhere. Collected per
    thread (a Dask worker runs several packs at once): a hook on ``warnings.showwarning``
    installed once per process, MedmaskWarnings always shown (to the hook).
    """
    _hear_warnings()
    heard: list[str] = []
    _HEARD.notes = heard
    try:
        outcome = _pack_or_fail(source, target, **options)
    finally:
        _HEARD.notes = None
    if isinstance(outcome, PackResult) and heard:
        notes = list(dict.fromkeys([*heard, *outcome.notes]))
        outcome = dataclasses.replace(outcome, notes=notes)
    return outcome


def _hear_warnings() -> None:
    """Send this process's MedmaskWarnings to the pack its thread runs (:data:`_HEARD`),
    every one of them; others as before. Once per process."""
    with _HOOK:
        if _hooked[0]:
            return
        shown = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            notes = getattr(_HEARD, "notes", None)
            if notes is not None and issubclass(category, MedmaskWarning):
                notes.append(str(message))
                return
            shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        warnings.filterwarnings("always", category=MedmaskWarning)
        _hooked[0] = True


def _pack_or_fail(
    source: Path,
    target: Path,
    groups: Mapping[str, str] | None,
    level: int | None,
    overwrite: bool,
    strict_geometry: bool = False,
    series: tuple[str, str | None, str | None] | None = None,
) -> PackResult | PackFailure:
    try:
        return pack(
            source, target, groups=groups, level=level, overwrite=overwrite,
            strict_geometry=strict_geometry, series_uid=series[0] if series else None,
            frame_of_reference_uid=series[1] if series else None,
            study_uid=series[2] if series else None,
        )  # fmt: skip
    except (MedmaskError, OSError, ValueError) as err:
        return PackFailure.of(source, err)


def _add_groups(
    archive: MaskArchive, groups: Mapping[str, str], names: list[str]
) -> dict[str, list[str]]:
    stored = {}
    for group, pattern in groups.items():
        if group in names:
            raise MedmaskError(f"group {group!r} has the name of a mask; choose another name")
        members = sorted((n for n in names if fnmatch.fnmatchcase(n, pattern)), key=natural_key)
        if not members:
            raise MedmaskError(f"group {group!r}: no mask name matches {pattern!r}")
        archive.add_group(group, members)
        stored[group] = members
    return stored
