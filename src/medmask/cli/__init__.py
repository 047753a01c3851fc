"""The ``medmask`` command: one module per subcommand, errors mapped to exit codes here.

Each subcommand module (``pack``, ``ls``, ``info``, ``unpack``, ``export_seg``,
``export_rtstruct``, ``export_slicer``, ``verify``, ``preview``, ``convert``, ``sample``,
``catalog``, ``query``, ``report``) holds ``HELP``, ``add_arguments(parser)`` and ``run(args) ->
int``; the work is in the library (:mod:`medmask.ops` and below). :func:`main` parses,
runs, and turns what the library raises into one line and an exit code: 0 ok, 1 a
failed or damaged input, 2 a usage error (``--debug`` adds the traceback). The style is
the one ``dcm-extract`` follows (docs/cli.md).
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Final

from ..errors import MaskNotFoundError, MedmaskError, OutputExistsError
from ..version import __version__
from . import (
    catalog,
    convert,
    export_rtstruct,
    export_seg,
    export_slicer,
    info,
    ls,
    pack,
    preview,
    query,
    report,
    sample,
    unpack,
    verify,
)
from .common import (
    PROG,
    READER_GONE,
    CommandParser,
    UsageError,
    ended_as_interrupted,
    reader_gone,
    stopped,
    warn,
)

__all__ = ["COMMANDS", "build_parser", "main"]

# name -> module, in the order --help lists them
COMMANDS: dict[str, ModuleType] = {
    "pack": pack,
    "ls": ls,
    "info": info,
    "unpack": unpack,
    "export-seg": export_seg,
    "export-rtstruct": export_rtstruct,
    "export-slicer": export_slicer,
    "verify": verify,
    "preview": preview,
    "convert": convert,
    "sample": sample,
    "catalog": catalog,
    "query": query,
    "report": report,
}


def build_parser() -> CommandParser:
    """The ``medmask`` parser with every subcommand (the CLI reference is tested against it)."""
    parser = CommandParser(
        prog=PROG, description="Store, inspect and convert segmentation-mask archives."
    )
    parser.add_argument("--version", action="version", version=f"medmask (medkit) {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for name, module in COMMANDS.items():
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        # (also after the command, where dcm-extract takes it: `medmask pack ... -q`)
        sub.add_argument(
            "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
            help="no progress bars",
        )  # fmt: skip
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``medmask`` with ``argv`` (default: the process arguments); the exit code."""
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments:
        parser.print_help()
        return 2
    try:
        args = parser.parse_args(arguments)
    except UsageError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as done:  # --help, --version
        return int(done.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The subcommand, with library errors as one line each and warnings as lines."""
    try:
        with warnings.catch_warnings(), ended_as_interrupted():
            warnings.simplefilter("always")
            for category in _DEVELOPERS_WARNINGS:  # (after "always": checked before it)
                warnings.simplefilter("ignore", category)
            warnings.showwarning = _show_warning
            code: int = args.run(args)
            sys.stdout.flush()  # (a reader gone shows here, not in Python's flush at exit)
            return code
    except UsageError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C, SIGTERM: a line, not Python's traceback
        what, code = stopped(stop)
        print(f"{PROG}: {what}; {KEPT}", file=sys.stderr)
        return code
    except (MedmaskError, OSError, ValueError) as err:
        if isinstance(err, BrokenPipeError) and reader_gone():  # `ls x.mska | head`: quietly
            return READER_GONE
        if args.debug:
            traceback.print_exc()
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 1


# Warnings for developers, which Python itself shows users only from their own script
# (a library's DeprecationWarning on a newer Python: pynrrd's utcnow() on 3.12 printed
# "medmask: warning: datetime.datetime.utcnow() is deprecated ..." on every export-slicer).
_DEVELOPERS_WARNINGS: Final = (
    DeprecationWarning,
    PendingDeprecationWarning,
    ResourceWarning,
    ImportWarning,
)

KEPT = (
    "what was finished is kept and nothing half-written is left (a cohort pack goes on "
    "from there when run again)"
)


def _one_line(err: Exception) -> str:
    if isinstance(err, OutputExistsError):
        return f"{err.path} exists; pass --overwrite to replace it"
    if isinstance(err, MaskNotFoundError | KeyError) and err.args:
        return str(err.args[0])
    if isinstance(err, OSError) and err.filename and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err)


def _show_warning(message: Any, category: Any, *_: Any, **__: Any) -> None:
    warn(str(message))
