"""The ``dcm-extract`` command: one module per subcommand, errors to exit codes here.

``dcm-extract [OPTIONS]`` is the extraction with the original tool's options (also run
as ``python -m src.dcm_extractor.extractor`` and ``python -m dcm_extractor``; its parser
and run are :mod:`.extract`); ``dcm-extract sample OUT_DIR``
(:mod:`.sample`) writes generated data, ``dcm-extract keygen FILE`` (:mod:`.keygen`) a new
pseudonym key, ``dcm-extract query OUT "SQL"`` (:mod:`.query`) asks an output folder's
tables, ``dcm-extract --version`` the version. Exit codes: 0 done, 1 a failure (a
case, an unwritable folder), 2 a usage error, 141 when the reader of stdout went away
(``| head``: quietly); every error is one line
``dcm-extract: error: ...`` (docs/cli.md, the style ``medmask`` shares).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from ..errors import DcmExtractorError
from ..version import __version__
from .common import PROG, READER_GONE, CommandParser, ended_as_interrupted, reader_gone, stopped

__all__ = ["SUBCOMMANDS", "main", "subcommand_parser"]

# Each subcommand's module is imported when it runs: the extraction's brings pydicom and
# pyarrow, which ``dcm-extract query`` never needs (its cold start is half without them).
SUBCOMMANDS: tuple[str, ...] = ("sample", "keygen", "query")


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def subcommand_parser(name: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name`` (one of :data:`SUBCOMMANDS`; docs/cli.md shows
    its help)."""
    return _parser(name, _module(name))


def _parser(name: str, module: ModuleType) -> CommandParser:
    parser = CommandParser(prog=f"{PROG} {name}", description=module.HELP)
    module.add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dcm-extract`` with ``argv`` (default: the process arguments); the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--version"]:
        print(f"{PROG} (medkit) {__version__}")
        return 0
    name = args[0] if args and args[0] in SUBCOMMANDS else None
    with ended_as_interrupted():
        return _main(args, name)


def _main(args: list[str], name: str | None) -> int:
    try:
        if name is None:
            from . import extract  # noqa: PLC0415 - (SUBCOMMANDS)

            code: int = extract.main(args, prog=PROG)
        else:
            module = _module(name)
            parser = _parser(name, module)
            parsed = parser.parse_args(args[1:])
            try:
                code = module.run(parsed)
            except argparse.ArgumentTypeError as err:
                parser.error(str(err))
        sys.stdout.flush()  # (a reader gone shows here, not in Python's flush at exit)
        return code
    except (DcmExtractorError, OSError) as err:
        if isinstance(err, BrokenPipeError) and reader_gone():  # `query ... | head`: quietly
            return READER_GONE
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except SystemExit as done:  # argparse: 0 after --help, 2 on usage errors
        return int(done.code or 0)
    except KeyboardInterrupt as stop:  # Ctrl-C (a query's; a run's says more): no traceback
        what, code = stopped(stop)
        print(f"{PROG}: {what}", file=sys.stderr)
        return code


def _one_line(err: Exception) -> str:
    """An error as its line: a file's error as ``path: what`` (as ``medmask`` says it)."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err)


if __name__ == "__main__":
    sys.exit(main())
