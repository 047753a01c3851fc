"""The ``medmask`` command: argument parsing and exit codes only; the work is in the library."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated

import typer

from . import __version__
from .errors import MedmaskError
from .sample import generate_masks

app = typer.Typer(
    name="medmask",
    help="Store, inspect and convert segmentation-mask archives.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)


class _Scale(StrEnum):
    small = "small"
    medium = "medium"
    full = "full"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"medmask (medkit) {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Store, inspect and convert segmentation-mask archives."""


@app.command("sample")
def _sample(
    out_dir: Annotated[
        str, typer.Argument(help="Folder for the per-organ masks and multi-label file.")
    ],
    seed: Annotated[int, typer.Option(help="Same seed, same masks.")] = 0,
    scale: Annotated[
        _Scale, typer.Option(help="Grid size: small, medium, or full body (512x512x600).")
    ] = _Scale.small,
    overwrite: Annotated[bool, typer.Option(help="Replace masks generated earlier.")] = False,
) -> None:
    """Write generated organ masks (TotalSegmentator layout) to OUT_DIR."""
    try:
        result = generate_masks(out_dir, seed=seed, scale=scale.value, overwrite=overwrite)
    except (MedmaskError, ValueError, OSError) as err:
        typer.echo(f"medmask: error: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(f"{len(result.names)} masks in {result.masks_dir}")
    typer.echo(f"multi-label: {result.multilabel_path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``medmask`` with ``argv`` (default: the process arguments); return the exit code."""
    command = typer.main.get_command(app)
    try:
        command.main(args=list(argv) if argv is not None else None, prog_name="medmask")
    except SystemExit as done:  # click exits 0 on success, 2 on usage errors
        return int(done.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
