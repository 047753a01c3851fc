"""Run one case in a child process with a deadline: a hang or crash costs that case only."""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .cases import CaseResult, scan_case
from .errors import DcmExtractorError
from .extras import Extras

__all__ = ["CaseFailedError", "scan_case_isolated"]


class CaseFailedError(DcmExtractorError):
    """A case did not finish: it ran past its time limit or its process died.

    ``reason`` says why without naming the case (for de-identified reports).
    """

    def __init__(self, case: str, reason: str) -> None:
        super().__init__(case, reason)  # both in args: the error pickles across processes
        self.case, self.reason = case, reason

    def __str__(self) -> str:
        return f"{self.case}: {self.reason}"


def _child(connection: Connection, case_dir: str, data_root: str, extras: Extras | None) -> None:
    try:
        connection.send(("ok", scan_case(case_dir, data_root, extras=extras)))
    except BaseException as err:  # report every failure to the parent, then exit
        connection.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        connection.close()


_REAP_SECONDS = 60.0  # how long a process whose pipe closed may take to end


def scan_case_isolated(
    case_dir: str | os.PathLike[str],
    data_root: str | os.PathLike[str],
    timeout: float,
    extras: Extras | None = None,
) -> CaseResult:
    """:func:`~dcm_extractor.cases.scan_case` in a child process, killed after ``timeout`` seconds.

    Raises
    ------
    CaseFailedError
        The case timed out, raised, or its process died.
    """
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    context: Any = multiprocessing.get_context(method)  # typeshed lacks Process on BaseContext
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(sender, str(case_dir), str(data_root), extras), daemon=True
    )
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
        raise CaseFailedError(Path(case_dir).name, f"failed: {payload}")
    assert isinstance(payload, CaseResult)
    return payload
