"""What every ``medmask`` command shares: printing, sizes and ratios, usage errors.

The style both tools follow (docs/cli.md): argparse, one module per command with
``add_arguments(parser)`` and ``run(args) -> int``; results on stdout; ``<tool>: error:``,
``<tool>: warning:`` and ``<tool>: note:`` lines on stderr; exit 0 ok, 1 a failed or
damaged input, 2 a usage error, 141 when the reader of stdout went away (``| head``:
quietly), 130 after Ctrl-C and 143 after SIGTERM (:func:`ended_as_interrupted`), each
error one line (``--debug`` adds the traceback).
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import os
import signal
import sys
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, NoReturn

from ..ops.cluster import workers_problem

__all__ = [
    "PROG",
    "READER_GONE",
    "CommandParser",
    "UsageError",
    "echo",
    "note",
    "ratio",
    "reader_gone",
    "size",
    "warn",
]

PROG = "medmask"


# The exit code of a command whose reader went away (``| head``): a shell's for a process
# that SIGPIPE ended, as ``yes | head -1`` gives, so that ``set -o pipefail`` sees the same.
READER_GONE = 128 + 13


def reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (``medmask ls x.mska | head``);
    then stdout is pointed at /dev/null, so that Python's flush at exit cannot fail too.

    Asked of the pipe itself (``poll`` reports an error on a pipe without readers), as a
    BrokenPipeError may also come from elsewhere (a worker process that died), which
    is an error to report."""
    import select  # noqa: PLC0415

    try:
        descriptor = sys.stdout.fileno()
        poller = select.poll()
        poller.register(descriptor, select.POLLOUT)
        gone = any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # (no real stdout: a test's capture)
        return False
    if gone:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, descriptor)
        os.close(devnull)
    return gone


class UsageError(Exception):
    """A command line that cannot run (exit 2); the message is one line."""


class CommandParser(argparse.ArgumentParser):
    """argparse without its usage block on errors and without abbreviated options
    (``--over`` is not ``--overwrite``): a usage error is one line, as every error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def echo(text: str = "") -> None:
    """A result line on stdout, in its encoding (the locale's: GBK on a Chinese server or
    Windows' console redirected to a file). A character it cannot hold is written as its
    escape (``\\xd8`` for Ø under GBK), the rest of the line as it is; a name whose bytes
    on disk are not text in that encoding, as those bytes (as ``ls`` prints it)."""
    try:
        print(text, flush=True)
    except UnicodeEncodeError:
        sys.stdout.flush()
        encoding = sys.stdout.encoding or "utf-8"
        sys.stdout.buffer.write((text + "\n").encode(encoding, _SHOWN))
        sys.stdout.buffer.flush()


def echo_json(text: str) -> None:
    """JSON on stdout, in UTF-8 whatever the locale: JSON is UTF-8 by its definition
    (RFC 8259), and ``jq`` reads nothing else; a GBK terminal's encoding would give GBK
    bytes, or escapes that are not JSON's."""
    stream = sys.stdout
    encoding = getattr(stream, "encoding", None)
    if not hasattr(stream, "buffer") or not encoding or codecs.lookup(encoding).name == "utf-8":
        echo(text)
        return
    stream.flush()
    stream.buffer.write((text + "\n").encode("utf-8", "surrogateescape"))
    stream.buffer.flush()


_SHOWN: Final = "medmask.shown"  # (the error handler below, registered under this name)


def _shown(err: UnicodeError) -> tuple[bytes, int]:
    """An encoding's error handler: a name's undecodable bytes (surrogate escapes) as
    those bytes, any other character the encoding lacks as its backslash escape."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    out = bytearray()
    for char in err.object[err.start : err.end]:
        if "\udc80" <= char <= "\udcff":
            out.append(ord(char) - 0xDC00)
        else:
            out += char.encode("ascii", "backslashreplace")
    return bytes(out), err.end


codecs.register_error(_SHOWN, _shown)


def warn(text: str) -> None:
    """A ``medmask: warning:`` line on stderr."""
    print(f"{PROG}: warning: {text}", file=sys.stderr, flush=True)


def note(text: str) -> None:
    """A ``medmask: note:`` line on stderr."""
    print(f"{PROG}: note: {text}", file=sys.stderr, flush=True)


def columns(text: str) -> int:
    """Columns ``text`` takes on a terminal: Chinese, Japanese and Korean letters take two.

    Examples
    --------
    >>> columns("liver"), columns("肝脏")
    (5, 4)
    """
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, width: int) -> str:
    """``text`` with spaces after it to fill ``width`` terminal columns."""
    return text + " " * (width - columns(text))


def size(n: float) -> str:
    """Bytes for people: ``1,234 bytes``, ``5.1 MB``.

    Examples
    --------
    >>> size(5_367_103)
    '5.1 MB'
    """
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover - the loop always returns


def ratio(before: int, after: int) -> str:
    """``317:1`` for a file that shrank, ``1:2.5`` for one that grew (tiny inputs).

    Examples
    --------
    >>> ratio(5_367_103, 16_930), ratio(100, 250)
    ('317:1', '1:2.5')
    """
    if after <= 0 or before <= 0:
        return "-"
    shrink = before / after
    if shrink >= 1:
        return f"{shrink:.0f}:1" if shrink >= 10 else f"{shrink:.1f}:1"
    return f"1:{1 / shrink:.1f}"


def level(text: str) -> int:
    """A compression level 1-22 (argparse ``type``)."""
    value = int(text)
    if not 1 <= value <= 22:
        raise argparse.ArgumentTypeError(f"level must be 1 to 22, got {value}")
    return value


def workers(text: str) -> int:
    """A number of worker processes for this machine (argparse ``type``): 1 to four a
    core, as dcm-extract takes (500 by a slip of the finger would start 500 processes,
    each with numpy and a case in memory)."""
    value = int(text)
    why = workers_problem(value, "--scheduler")
    if why is not None:
        raise argparse.ArgumentTypeError(f"{value}: {why}")
    return value


def add_export_arguments(parser: argparse.ArgumentParser, output_help: str) -> None:
    """The arguments every export onto a DICOM series takes (export-seg, export-rtstruct):
    the archive, ``--source``, ``-o``, ``-n``, ``--groups``, ``--series-uid``, ``--overwrite``."""
    parser.add_argument("archive", type=Path, help="a .mska archive")
    parser.add_argument(
        "--source", type=Path, required=True,
        help="folder of the image series (CT/MR) the masks were made on",
    )  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, required=True, help=output_help)
    parser.add_argument(
        "-n", "--name", action="append", help="only this mask; repeatable", metavar="NAME"
    )
    parser.add_argument("--groups", action="store_true", help="also write the archive's groups")
    parser.add_argument("--series-uid", help="which series of --source, when it holds several")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")


class Terminated(KeyboardInterrupt):
    """SIGTERM (SLURM's ``scancel``, ``docker stop``, ``timeout``): the command ends as
    on Ctrl-C - what is being written cleaned up, one line, exit :data:`TERMINATED`."""


INTERRUPTED = 128 + 2  # the exit code after Ctrl-C (SIGINT), as shells report it
TERMINATED = 128 + 15  # after SIGTERM


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def ended_as_interrupted() -> Iterator[None]:
    """While the command runs, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt)
    in the main thread, as SIGINT raises KeyboardInterrupt: it killed the process at
    once before, leaving temporary files and no word. Not where another handler is set
    (a program calling ``main``) or off the main thread."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def stopped(stop: KeyboardInterrupt) -> tuple[str, int]:
    """What to say of a command ended by ``stop``, and its exit code."""
    if isinstance(stop, Terminated):
        return "terminated (SIGTERM)", TERMINATED
    return "interrupted", INTERRUPTED
