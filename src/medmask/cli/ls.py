"""``medmask ls``: the masks of an archive, with labels, voxels, volume and bounding box."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..ops.inspection import list_masks
from .common import columns, echo, echo_json, pad

HELP = "List the masks of an archive: labels, voxels, volume, bounding box."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", type=Path, help="a .mska archive")
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    rows = list_masks(args.archive)
    if args.json:
        echo_json(json.dumps(rows, indent=1, ensure_ascii=False))
        return 0
    width = max([4, *(columns(r["name"]) for r in rows)])
    echo(f"{pad('name', width)}  {'labels':<8} {'voxels':>11} {'ml':>10}  bounding box")
    for row in rows:
        box = "-" if row["bbox"] is None else " ".join(f"{a}:{b}" for a, b in row["bbox"])
        labels = ",".join(str(v) for v in row["labels"].values())
        kind = f"  group of {len(row['members'])}" if "members" in row else ""
        echo(
            f"{pad(row['name'], width)}  {labels:<8} {row['voxel_count']:>11,} "
            f"{row['volume_ml']:>10.2f}  {box}{kind}"
        )
    echo(f"{len(rows)} masks")
    return 0
