"""Run one case in a child process with a deadline: a hang or crash costs that case only."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

from ..errors import DcmExtractorError
from ..reading.extras import Extras
from ..sources.cases import CaseResult, scan_case
from ..sources.names import nameless

__all__ = ["CaseFailedError", "process_context", "scan_case_isolated"]

# How this run starts its processes (worker pool, a case's own process): fork on Linux,
# where it costs no imports; spawn elsewhere (macOS and Windows, where fork is unsafe or
# absent). A pool worker takes its run's (executors._start_worker); tests set it to run
# the spawn path on Linux.
START_METHOD: str = "fork" if sys.platform.startswith("linux") else "spawn"
_HIDING = threading.Lock()  # main_script_hidden's


def process_context() -> Any:
    """multiprocessing's context for :data:`START_METHOD` (typed ``Any``: typeshed's
    contexts lack ``Process``)."""
    return multiprocessing.get_context(START_METHOD)


@contextlib.contextmanager
def main_script_hidden() -> Iterator[None]:
    """Start spawned processes that do not run the caller's script again.

    A spawned process first runs the parent's ``__main__`` (its file, or its module under
    ``python -m``), so that functions defined there can be found. A script calling
    :func:`~dcm_extractor.run` with workers but without ``if __name__ == "__main__":``
    then started the run again in every worker, which died ("its process died" for every
    case). Workers run dcm_extractor's functions only: while processes start, ``__main__``
    shows neither file nor module name, as in a notebook, and they skip it. (Forked
    processes run nothing again: unchanged.)
    """
    main = sys.modules.get("__main__")
    hidden = {key: getattr(main, key) for key in ("__file__", "__spec__") if hasattr(main, key)}
    if START_METHOD == "fork" or main is None or not hidden:
        yield
        return
    with _HIDING:  # (threads starting processes at once: one hides and restores)
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


class CaseFailedError(DcmExtractorError):
    """A case did not finish: it ran past its time limit, its process died, or an error
    no file of it accounts for stopped it.

    ``reason`` says why without naming the case or any path (for de-identified reports);
    ``private`` holds the error's own message (which may quote a path: identified reports
    and logs only).
    """

    def __init__(self, case: str, reason: str, private: str = "") -> None:
        super().__init__(case, reason, private)  # in args: the error pickles across processes
        self.case, self.reason, self.private = case, reason, private

    def __str__(self) -> str:
        return f"{self.case}: {self.reason}"


_PR_SET_PDEATHSIG: Final = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Make this (child) process end when ``parent``, the process that started it, ends.

    However the run ends (Ctrl-C, ``kill``, ``kill -9``, out of memory), its worker
    processes must not live on: orphans kept scanning, blocked on a pipe nobody reads.
    On Linux the kernel sends SIGKILL to this process when its parent ends
    (``prctl(PR_SET_PDEATHSIG)``); if the parent is gone already, this process exits now.
    Elsewhere only the second check applies.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it ended before the request took effect
        os._exit(1)


def _child(
    connection: Connection,
    case_dir: str,
    data_root: str,
    extras: Extras | None,
    parent: int,
) -> None:
    die_with_parent(parent)
    try:
        connection.send(("ok", scan_case(case_dir, data_root, extras=extras)))
    except BaseException as err:  # report every failure to the parent, then exit
        connection.send(("error", (nameless(err, message=False), str(err))))
    finally:
        connection.close()


_REAP_SECONDS = 60.0  # how long a process whose pipe closed may take to end
_STARTING = threading.Lock()


@contextlib.contextmanager
def _children_allowed() -> Iterator[None]:
    """Let this process start a child even when it is a daemonic process itself.

    A Dask worker under its nanny (the default, ``distributed.worker.daemon``) is one,
    and multiprocessing refuses children there ("daemonic processes are not allowed to
    have children"): with ``--case-timeout`` on a cluster every case failed so. The rule
    guards against orphans a killed daemon would leave; a case's process cannot outlive
    its parent (:func:`die_with_parent`) and is joined or killed before the case ends.
    The flag is multiprocessing's own (``current_process()._config``), cleared while the
    child starts and put back, under a lock (a worker's threads start cases at once).
    """
    config: dict[str, Any] = getattr(multiprocessing.current_process(), "_config", {})
    if not config.get("daemon"):
        yield
        return
    with _STARTING:
        config["daemon"] = False
        try:
            yield
        finally:
            config["daemon"] = True


def scan_case_isolated(
    case_dir: str | os.PathLike[str],
    data_root: str | os.PathLike[str],
    timeout: float,
    extras: Extras | None = None,
) -> CaseResult:
    """:func:`~dcm_extractor.sources.cases.scan_case` in a child process, killed after
    ``timeout`` seconds.

    Raises
    ------
    CaseFailedError
        The case timed out, raised, or its process died.
    """
    context = process_context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child,
        args=(sender, str(case_dir), str(data_root), extras, os.getpid()),
        daemon=True,
    )
    with _children_allowed(), main_script_hidden():
        process.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            process.kill()
            limit = f"stopped after the {timeout:g} s time limit"
            raise CaseFailedError(Path(case_dir).name, limit)
        try:
            status, payload = receiver.recv()
        except EOFError:
            # the pipe closed: the process is ending; join it before asking how (on a
            # busy machine it is often not reaped yet, and exitcode would be None)
            process.join(_REAP_SECONDS)
            code = process.exitcode
            died = (
                f"its process died (exit code {code})"
                if code is not None
                else f"its process closed its pipe and had not ended {_REAP_SECONDS:g} s later"
            )
            raise CaseFailedError(Path(case_dir).name, died) from None
    finally:
        receiver.close()
        process.join(5)
    if status != "ok":
        reason, private = payload
        raise CaseFailedError(Path(case_dir).name, f"failed: {reason}", private)
    assert isinstance(payload, CaseResult)
    return payload
