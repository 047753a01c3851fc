"""The ``dcm-extract`` command: one module per subcommand, errors to exit codes here.

``dcm-extract [OPTIONS]`` is the extraction with the original tool's options (also run
as ``python -m src.dcm_extractor.extractor`` and ``python -m dcm_extractor``; its parser
and run are :mod:`.extract`); ``dcm-extract sample OUT_DIR``
(:mod:`.sample`) writes generated data, ``dcm-extract keygen FILE`` (:mod:`.keygen`) a new
pseudonym key, ``dcm-extract query OUT "SQL"`` (:mod:`.query`) asks an output folder's
tables, ``dcm-extract --version`` the version. Exit codes: 0 done, 1 a failure (a
case, an unwritable folder), 2 a usage error; every error is one line
``dcm-extract: error: ...`` (docs/cli.md, the style ``medmask`` shares).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from ..errors import DcmExtractorError
from ..version import __version__
from . import extract, keygen, query, sample
from .common import PROG, CommandParser

__all__ = ["SUBCOMMANDS", "main"]

SUBCOMMANDS: dict[str, ModuleType] = {"sample": sample, "keygen": keygen, "query": query}


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
    module = SUBCOMMANDS.get(args[0]) if args else None
    try:
        if module is None:
            return extract.main(args, prog=PROG)
        parser = _parser(args[0], module)
        parsed = parser.parse_args(args[1:])
        try:
            code: int = module.run(parsed)
        except argparse.ArgumentTypeError as err:
            parser.error(str(err))
        return code
    except (DcmExtractorError, OSError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except SystemExit as done:  # argparse: 0 after --help, 2 on usage errors
        return int(done.code or 0)


if __name__ == "__main__":
    sys.exit(main())
