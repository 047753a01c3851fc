"""The ``medmask`` command: argument parsing, output and exit codes; the work is in the library.

Exit codes: 0 ok, 1 damaged or failed input, 2 usage error. Errors are one line on
stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from . import __version__
from .codecs import DEFAULT_LEVEL
from .errors import MaskNotFoundError, MedmaskError, OutputExistsError
from .files.archive import MaskArchive, convert_legacy_archive
from .ops.inspection import describe_archive, verify_archive
from .ops.pack import PackFailure, PackResult, natural_key, pack, pack_many, parse_group
from .ops.preview import render_preview
from .ops.unpack import unpack_archive, write_multilabel
from .sample import generate_masks

app = typer.Typer(
    name="medmask",
    help="Store, inspect and convert segmentation-mask archives.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)


class _Options:
    debug = False
    quiet = False


class _Scale(StrEnum):
    small = "small"
    medium = "medium"
    full = "full"


class _Overlap(StrEnum):
    error = "error"
    first = "first"
    last = "last"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"medmask (medkit) {__version__}")
        raise typer.Exit()


def _fail(message: str) -> NoReturn:
    typer.echo(f"medmask: error: {message}", err=True)
    raise typer.Exit(1)


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    """Library errors as one line and exit code 1 (with the traceback under --debug).

    Warnings (overlaps, unnamed labels) become one ``medmask: warning:`` line each.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _warn
            yield
    except (MedmaskError, OSError, ValueError) as err:
        if _Options.debug:
            traceback.print_exc()
        if isinstance(err, OutputExistsError):
            _fail(f"{err.path} exists; pass --overwrite to replace it")
        if isinstance(err, MaskNotFoundError | KeyError) and err.args:
            _fail(str(err.args[0]))
        if isinstance(err, OSError) and err.filename and err.strerror:
            _fail(f"{err.filename}: {err.strerror}")
        _fail(str(err))


def _warn(message: Any, category: Any, *_: Any, **__: Any) -> None:
    typer.echo(f"medmask: warning: {message}", err=True)


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover - the loop always returns


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Store, inspect and convert segmentation-mask archives."""
    _Options.debug, _Options.quiet = debug, quiet


@app.command("pack")
def _pack(
    sources: Annotated[
        list[Path],
        typer.Argument(help="Folder(s) of per-organ NIfTI masks, or multi-label NIfTI file(s)."),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Archive file (one SRC) or folder for <SRC name>.mska."
        ),
    ],
    group: Annotated[
        list[str] | None,
        typer.Option(help="NAME=GLOB: store NAME as the union of the matching masks; repeatable."),
    ] = None,
    level: Annotated[
        int,
        typer.Option(min=1, max=22, help="Level 1-22: 19 smallest, 3 faster and a little larger."),
    ] = DEFAULT_LEVEL,
    workers: Annotated[int, typer.Option(min=1, help="Sources packed at once.")] = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace existing archives.")] = False,
    strict_geometry: Annotated[
        bool,
        typer.Option(help="Refuse files whose geometry differs from the first's at all."),
    ] = False,
    source: Annotated[
        Path | None,
        typer.Option(help="DICOM SEG input: its image series (folder), to read it onto."),
    ] = None,
    like: Annotated[
        Path | None,
        typer.Option(help="DICOM SEG input: an archive or NIfTI whose grid to read it onto."),
    ] = None,
) -> None:
    """Pack NIfTI masks or DICOM SEG files into .mska archives (one per SRC)."""
    try:
        groups = dict(parse_group(text) for text in group or [])
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--group") from err
    many = len(sources) > 1 or output.is_dir() or str(output).endswith(("/", "\\"))
    if (source or like) and (many or (source and like)):
        raise typer.BadParameter("give one SRC and one of --source / --like", param_hint="--source")
    with _reported():
        if not many:
            reference = _reference_space(source, like)
            packed = pack(
                sources[0], output, groups=groups, level=level, overwrite=overwrite,
                strict_geometry=strict_geometry, reference=reference,
            )  # fmt: skip
            _print_pack(packed)
            return
        outcomes = _pack_with_progress(
            sources, output, groups, level, workers, overwrite, strict_geometry
        )
    failed = [o for o in outcomes if isinstance(o, PackFailure)]
    for outcome in outcomes:
        if isinstance(outcome, PackResult):
            _print_pack(outcome)
        else:
            typer.echo(f"medmask: error: {outcome.reason}", err=True)
    typer.echo(f"{len(outcomes) - len(failed)} packed, {len(failed)} failed, in {output}")
    if failed:
        raise typer.Exit(1)


def _reference_space(source: Path | None, like: Path | None) -> Any:
    """The grid ``--source`` (an image series) or ``--like`` (an archive, a NIfTI) names."""
    if source is not None:
        from .exchange.dicom.source import read_source_series  # noqa: PLC0415 - pydicom when asked

        return read_source_series(source)  # pack checks the SEG is of this series
    if like is None:
        return None
    if like.suffix == ".mska":
        with MaskArchive(like) as opened:
            return opened.space
    from .exchange.nifti import read_nifti  # noqa: PLC0415

    return read_nifti(like).space


def _pack_with_progress(
    sources: Sequence[Path],
    output: Path,
    groups: dict[str, str],
    level: int,
    workers: int,
    overwrite: bool,
    strict_geometry: bool,
) -> list[PackResult | PackFailure]:
    run = functools.partial(
        pack_many, sources, output, groups=groups, level=level, workers=workers,
        overwrite=overwrite, strict_geometry=strict_geometry,
    )  # fmt: skip
    if _Options.quiet or not sys.stderr.isatty():
        return run()
    from rich.progress import Progress  # noqa: PLC0415 - only on a terminal

    with Progress(transient=True) as bar:
        task = bar.add_task("packing", total=len(sources))
        return run(on_done=lambda _: bar.advance(task))


def _print_pack(result: PackResult) -> None:
    for name, reason in result.skipped:
        typer.echo(f"medmask: warning: {result.source}: skipped {name}: {reason}", err=True)
    groups = f" + {len(result.groups)} group(s)" if result.groups else ""
    empty = f" ({len(result.empty)} empty)" if result.empty else ""
    typer.echo(
        f"{result.target}: {len(result.masks)} masks{empty}{groups}, "
        f"{_size(result.input_bytes)} of {_input_kind(result.source)} -> "
        f"{_size(result.archive_bytes)} "
        f"({_ratio(result.input_bytes, result.archive_bytes)})"
    )


def _input_kind(source: Path) -> str:
    """What a pack source was, for its summary line."""
    from .exchange.nifti import is_nifti  # noqa: PLC0415

    if source.name.lower().endswith(".seg.nrrd"):
        return "Slicer .seg.nrrd"
    if source.is_file():
        return "NIfTI" if is_nifti(source) else "DICOM SEG"
    has_nifti = any(is_nifti(p) for p in source.iterdir() if p.is_file())
    return "NIfTI" if has_nifti else "DICOM SEG"


def _ratio(before: int, after: int) -> str:
    """``317:1`` for a file that shrank, ``1:2.5`` for one that grew (tiny inputs)."""
    if after <= 0 or before <= 0:
        return "-"
    ratio = before / after
    if ratio >= 1:
        return f"{ratio:.0f}:1" if ratio >= 10 else f"{ratio:.1f}:1"
    return f"1:{1 / ratio:.1f}"


@app.command("ls")
def _ls(
    archive: Annotated[Path, typer.Argument(help="A .mska archive.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List the masks of an archive: labels, voxels, volume, bounding box."""
    with _reported(), MaskArchive(archive) as opened:
        stats = opened.statistics()
        mappings = opened.read_all_mapping()
        groups = opened.groups()
    rows = []
    for name, stat in stats.items():
        row = stat.to_dict()
        row["labels"] = mappings[name].to_dict()
        if name in groups:
            row["members"] = list(groups[name])
        rows.append(row)
    if as_json:
        typer.echo(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    width = max([4, *(len(r["name"]) for r in rows)])
    typer.echo(f"{'name':<{width}}  {'labels':<8} {'voxels':>11} {'ml':>10}  bounding box")
    for row in rows:
        box = "-" if row["bbox"] is None else " ".join(f"{a}:{b}" for a, b in row["bbox"])
        labels = ",".join(str(v) for v in row["labels"].values())
        kind = f"  group of {len(row['members'])}" if "members" in row else ""
        typer.echo(
            f"{row['name']:<{width}}  {labels:<8} {row['voxel_count']:>11,} "
            f"{row['volume_ml']:>10.2f}  {box}{kind}"
        )
    typer.echo(f"{len(rows)} masks")


@app.command("info")
def _info(
    archive: Annotated[Path, typer.Argument(help="A .mska archive.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text.")] = False,
) -> None:
    """Format version, geometry, sizes, codecs and checksum status of an archive."""
    with _reported():
        info = describe_archive(archive)
    if as_json:
        typer.echo(json.dumps(info.to_dict(), indent=1))
        return
    geometry = info.geometry or {}
    lines = [
        ("archive", str(info.path)),
        ("format", f"medmask archive {info.format_version}"),
        ("generation", str(info.generation) if info.generation is not None else "-"),
        ("shape", " x ".join(map(str, geometry.get("shape", [])))),
        ("spacing (mm)", " x ".join(f"{v:g}" for v in geometry.get("spacing", []))),
        ("origin (mm)", ", ".join(f"{v:g}" for v in geometry.get("origin", []))),
        ("masks", f"{info.masks} ({info.empty} empty), groups: {info.groups}"),
        ("file size", _size(info.file_bytes)),
        ("mask data", f"{_size(info.data_bytes)}, index {_size(info.index_bytes)}"),
        ("codecs", ", ".join(f"{k}: {v}" for k, v in sorted(info.codecs.items()))),
    ]
    damaged = [slot for slot in info.slots if "damaged" in slot]
    if damaged:
        lines += [("checksums", "DAMAGED: " + "; ".join(damaged))]
    else:
        lines += [("checksums", "superblock, geometry and index ok (blobs: `medmask verify`)")]
    lines += [("superblocks", "; ".join(info.slots))]
    if info.trailing_bytes:
        lines += [("note", f"{info.trailing_bytes} bytes after the last commit")]
    for key, value in lines:
        typer.echo(f"{key + ':':<14}{value}")
    if damaged:
        _warn(f"{archive}: {len(damaged)} damaged superblock slot(s); see `medmask verify`", None)
        raise typer.Exit(1)


@app.command("unpack")
def _unpack(
    archive: Annotated[Path, typer.Argument(help="A .mska archive.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder for <name>.nii.gz files.")
    ] = None,
    name: Annotated[
        list[str] | None, typer.Option("--name", "-n", help="Only this mask; repeatable.")
    ] = None,
    multilabel: Annotated[
        Path | None,
        typer.Option(help="Write one multi-label NIfTI with label names instead."),
    ] = None,
    overlap: Annotated[
        _Overlap,
        typer.Option(help="Multi-label only: where masks overlap, refuse or let first/last win."),
    ] = _Overlap.error,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """Write an archive's masks back to NIfTI with their exact geometry."""
    if (output is None) == (multilabel is None):
        raise typer.BadParameter("give either --output DIR or --multilabel FILE", param_hint="-o")
    with _reported():
        if multilabel is not None:
            result = write_multilabel(
                archive, multilabel, names=name, overlap=overlap.value, overwrite=overwrite
            )
            for (kept, lost), voxels in result.overlaps.items():
                typer.echo(f"medmask: warning: {voxels} voxels of {lost} given to {kept}", err=True)
            typer.echo(f"{result.path}: {len(result.mapping)} labels")
            return
        assert output is not None  # checked above
        written = unpack_archive(archive, output, names=name, overwrite=overwrite)
    typer.echo(f"{len(written)} masks written to {output}")


class _Syntax(StrEnum):
    deflated = "deflated"
    explicit = "explicit"


@app.command("export-seg")
def _export_seg(
    archive: Annotated[Path, typer.Argument(help="A .mska archive.")],
    source: Annotated[
        Path, typer.Option(help="Folder of the image series (CT/MR) the masks were made on.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="DICOM SEG file to write.")],
    name: Annotated[
        list[str] | None, typer.Option("--name", "-n", help="Only this mask; repeatable.")
    ] = None,
    groups: Annotated[bool, typer.Option(help="Also write the archive's groups.")] = False,
    algorithm: Annotated[
        str, typer.Option(help="Algorithm named in the SEG; 'manual' for hand-drawn masks.")
    ] = "medmask",
    algorithm_version: Annotated[str, typer.Option(help="Its version.")] = "",
    transfer_syntax: Annotated[
        _Syntax, typer.Option(help="deflated (small) or explicit (uncompressed).")
    ] = _Syntax.deflated,
    series_uid: Annotated[
        str | None, typer.Option(help="Which series of --source, when it holds several.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing OUTPUT.")] = False,
) -> None:
    """Write an archive's masks as a DICOM Segmentation (BINARY) on their image series."""
    from .exchange.dicom.exchange import export_seg  # noqa: PLC0415 - pydicom only for this command

    with _reported():
        result = export_seg(
            archive, source, output, names=name, groups=groups,
            algorithm=None if algorithm.lower() == "manual" else algorithm,
            algorithm_version=algorithm_version, transfer_syntax=transfer_syntax.value,
            series_uid=series_uid, overwrite=overwrite,
        )  # fmt: skip
    if result.empty:
        listed = ", ".join(sorted(result.empty, key=natural_key)[:8])
        more = f" and {len(result.empty) - 8} more" if len(result.empty) > 8 else ""
        typer.echo(
            f"medmask: warning: {len(result.empty)} empty masks have no voxels and are not "
            f"segments of the SEG: {listed}{more}",
            err=True,
        )
    typer.echo(
        f"{result.path}: {len(result.segments)} segments, {result.frames} frames, "
        f"{_size(result.file_bytes)} ({result.transfer_syntax})"
    )


@app.command("export-slicer")
def _export_slicer(
    archive: Annotated[Path, typer.Argument(help="A .mska archive.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .seg.nrrd file to write.")],
    name: Annotated[
        list[str] | None, typer.Option("--name", "-n", help="Only this mask; repeatable.")
    ] = None,
    groups: Annotated[bool, typer.Option(help="Also write the archive's groups.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing OUTPUT.")] = False,
) -> None:
    """Write an archive's masks as a 3D Slicer segmentation (.seg.nrrd), overlaps as layers."""
    from .exchange.slicer import export_seg_nrrd  # noqa: PLC0415 - pynrrd only for this command

    if not str(output).lower().endswith(".seg.nrrd"):
        raise typer.BadParameter("the file name must end in .seg.nrrd", param_hint="-o")
    with _reported():
        result = export_seg_nrrd(archive, output, names=name, groups=groups, overwrite=overwrite)
    typer.echo(
        f"{result.path}: {len(result.segments)} segments in {result.layers} layer(s), "
        f"{_size(result.file_bytes)}"
    )


@app.command("verify")
def _verify(
    archives: Annotated[list[Path], typer.Argument(help="Archives to check.")],
) -> None:
    """Check every checksum and decode every mask; exit 1 if anything is damaged."""
    damaged = 0
    for path in archives:
        result = verify_archive(path)
        for note in result.notes:
            typer.echo(f"medmask: note: {path}: {note}", err=True)
        if result.ok:
            typer.echo(f"ok       {path} ({result.checked} masks)")
            continue
        damaged += 1
        typer.echo(f"DAMAGED  {path}")
        for line in result.damaged:
            typer.echo(f"  {line}")
    if damaged:
        typer.echo(f"{damaged} of {len(archives)} archives damaged", err=True)
        raise typer.Exit(1)


@app.command("preview")
def _preview(
    archive: Annotated[Path, typer.Argument(help="A .mska archive.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG file to write.")],
    name: Annotated[
        list[str] | None, typer.Option("--name", "-n", help="Only this mask; repeatable.")
    ] = None,
    image: Annotated[
        Path | None, typer.Option(help="CT (or other) NIfTI of the same scan to draw under.")
    ] = None,
    window_center: Annotated[float, typer.Option(help="Image window centre.")] = 40.0,
    window_width: Annotated[float, typer.Option(min=1e-3, help="Image window width.")] = 400.0,
) -> None:
    """Draw axial, coronal and sagittal slices through the masks, with a legend."""
    window = (window_center - window_width / 2, window_center + window_width / 2)
    with _reported():
        result = render_preview(archive, output, names=name, image=image, window=window)
    cuts = ", ".join(f"{view} {index}" for view, index in result.cuts.items())
    typer.echo(f"{result.path}: {len(result.shown)} masks shown ({cuts})")
    if result.hidden:
        hidden = sorted(result.hidden, key=natural_key)
        more = f" and {len(hidden) - 8} more" if len(hidden) > 8 else ""
        typer.echo(f"not in these slices: {', '.join(hidden[:8])}{more}")
    if result.empty:
        typer.echo(f"{len(result.empty)} empty masks (no voxels) not drawn")


@app.command("convert")
def _convert(
    source: Annotated[Path, typer.Argument(help="A medmask 0.1.3 (or any) archive.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="New .mska file.")],
    level: Annotated[
        int, typer.Option(min=1, max=22, help="19 smallest, 3 faster.")
    ] = DEFAULT_LEVEL,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing OUTPUT.")] = False,
) -> None:
    """Copy an archive (e.g. medmask 0.1.3's) into the current format."""
    with _reported():
        count = convert_legacy_archive(source, output, level=level, overwrite=overwrite)
    typer.echo(f"{output}: {count} masks converted from {source}")


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
    ct_series: Annotated[
        bool, typer.Option(help="Also write the CT as a DICOM series (for export-seg).")
    ] = False,
) -> None:
    """Write generated organ masks (TotalSegmentator layout) to OUT_DIR."""
    with _reported():
        result = generate_masks(
            out_dir, seed=seed, scale=scale.value, overwrite=overwrite, ct_series=ct_series
        )
    typer.echo(f"{len(result.names)} masks in {result.masks_dir}")
    typer.echo(f"multi-label: {result.multilabel_path}")
    if result.ct_series_dir is not None:
        typer.echo(f"CT series: {result.ct_series_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``medmask`` with ``argv`` (default: the process arguments); return the exit code."""
    command = typer.main.get_command(app)
    _Options.debug = _Options.quiet = False
    try:
        command.main(args=list(argv) if argv is not None else None, prog_name="medmask")
    except SystemExit as done:  # click exits 0 on success, 2 on usage errors
        return int(done.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
