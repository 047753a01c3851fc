"""The ``dcm-extract`` command: argument parsing and exit codes only; the work is in the library."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from . import __version__
from .errors import DcmExtractorError
from .extractor import main as extract_main
from .privacy import generate_key
from .sample import generate_dicom_dataset

app = typer.Typer(
    name="dcm-extract",
    help="Per-case DICOM metadata tables from folders and zip files.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)  # subcommands only; the extractor itself parses its own options (extractor.build_parser)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"dcm-extract (medkit) {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Per-case DICOM metadata tables from folders and zip files."""


@app.command("sample")
def _sample(
    out_dir: Annotated[str, typer.Argument(help="Folder for dicom_cases/ and ground_truth.json.")],
    seed: Annotated[int, typer.Option(help="Same seed, same files.")] = 0,
    bulk_cases: Annotated[int, typer.Option(min=0, help="Extra benchmark cases.")] = 0,
    series_per_case: Annotated[int, typer.Option(min=1)] = 2,
    images_per_series: Annotated[int, typer.Option(min=1)] = 3,
    image_size: Annotated[int, typer.Option(min=1, help="Rows and Columns of each image.")] = 32,
    template: Annotated[
        str | None, typer.Option(help="A real CT file whose header every image reuses.")
    ] = None,
    showcase: Annotated[bool, typer.Option(help="Write the showcase cases.")] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing data set.")] = False,
) -> None:
    """Generate DICOM cases in every layout the extractor must handle, with ground truth."""
    try:
        result = generate_dicom_dataset(
            out_dir,
            seed=seed,
            showcase=showcase,
            bulk_cases=bulk_cases,
            series_per_case=series_per_case,
            images_per_series=images_per_series,
            image_size=image_size,
            template=template,
            overwrite=overwrite,
        )
    except (DcmExtractorError, OSError) as err:
        typer.echo(f"dcm-extract: error: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(f"{result.file_count} files in {result.cases_root}")
    typer.echo(f"ground truth: {result.truth_path}")


@app.command("keygen")
def _keygen(
    path: Annotated[str, typer.Argument(help="Where to write the new key (mode 0600).")],
) -> None:
    """Write a new secret key for keyed pseudonyms; keep it outside the outputs."""
    try:
        fingerprint = generate_key(path)
    except (DcmExtractorError, OSError) as err:
        typer.echo(f"dcm-extract: error: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(f"new pseudonym key in {path} (fingerprint {fingerprint})")
    typer.echo("back it up and keep it private: the same key gives the same pseudonyms")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dcm-extract`` with ``argv`` (default: the process arguments); return the exit code.

    ``dcm-extract sample ...`` and ``dcm-extract --version`` are subcommands; everything
    else is the extractor's own command line (the original tool's options).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] not in (["sample"], ["keygen"], ["--version"]):
        return extract_main(args)
    command = typer.main.get_command(app)
    try:
        command.main(args=args, prog_name="dcm-extract")
    except SystemExit as done:  # click exits 0 on success, 2 on usage errors
        return int(done.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
