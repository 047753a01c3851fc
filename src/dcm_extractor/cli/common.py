"""What every ``dcm-extract`` subcommand shares (the style of docs/cli.md, as ``medmask``'s)."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any, Final

__all__ = ["PROG", "READER_GONE", "CommandParser", "echo", "positive", "reader_gone"]

PROG = "dcm-extract"


# The exit code of a command whose reader went away (``| head``): a shell's for a process
# that SIGPIPE ended, as ``yes | head -1`` gives, so that ``set -o pipefail`` sees the same.
READER_GONE = 128 + 13


def reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (``dcm-extract query OUT SQL | head``);
    then stdout is pointed at /dev/null, so that Python's flush at exit cannot fail too.

    Asked of the pipe itself (``poll`` reports an error on a pipe without readers), as a
    BrokenPipeError may also come from elsewhere (a worker process that died), which
    is an error to report."""
    import os  # noqa: PLC0415 - (only on an error)
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


class CommandParser(argparse.ArgumentParser):
    """argparse without abbreviated options: ``--merge-al`` is a typo, not ``--merge-all``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


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


_SHOWN: Final = "dcm_extractor.shown"  # (the error handler below, registered under this name)


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


def positive(text: str) -> int:
    """A whole number of 1 or more (argparse ``type``)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
