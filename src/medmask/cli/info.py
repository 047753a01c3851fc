"""``medmask info``: format, geometry, sizes, codecs and checksum status of an archive."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..ops.inspection import describe_archive
from .common import echo, size, warn

HELP = "Format version, geometry, sizes, codecs and checksum status of an archive."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", type=Path, help="a .mska archive")
    parser.add_argument("--json", action="store_true", help="JSON instead of text")


def run(args: argparse.Namespace) -> int:
    info = describe_archive(args.archive)
    if args.json:
        echo(json.dumps(info.to_dict(), indent=1))
        return 0
    geometry = info.geometry or {}
    lines = [
        ("archive", str(info.path)),
        ("format", f"medmask archive {info.format_version}"),
        ("generation", str(info.generation) if info.generation is not None else "-"),
        ("shape", " x ".join(map(str, geometry.get("shape", [])))),
        ("spacing (mm)", " x ".join(f"{v:g}" for v in geometry.get("spacing", []))),
        ("origin (mm)", ", ".join(f"{v:g}" for v in geometry.get("origin", []))),
        ("masks", f"{info.masks} ({info.empty} empty), groups: {info.groups}"),
        ("file size", size(info.file_bytes)),
        ("mask data", f"{size(info.data_bytes)}, index {size(info.index_bytes)}"),
        ("codecs", ", ".join(f"{k}: {v}" for k, v in sorted(info.codecs.items()))),
    ]
    if info.image_series:  # (pack --source, --series-uid or --series-map recorded it)
        lines += [("image series", info.image_series.get("SeriesInstanceUID", ""))]
    damaged = [slot for slot in info.slots if "damaged" in slot]
    if damaged:
        lines += [("checksums", "DAMAGED: " + "; ".join(damaged))]
    else:
        lines += [("checksums", "superblock, geometry and index ok (blobs: `medmask verify`)")]
    lines += [("superblocks", "; ".join(info.slots))]
    if info.trailing_bytes:
        lines += [("note", f"{info.trailing_bytes} bytes after the last commit")]
    for key, value in lines:
        echo(f"{key + ':':<14}{value}")
    if damaged:
        warn(f"{args.archive}: {len(damaged)} damaged superblock slot(s); see `medmask verify`")
        return 1
    return 0
