"""`make demo`: generate the sample data, run both tools on it, say where everything is.

Later issues add steps here (packing the masks, extracting the DICOM tables); each
step goes through the same command-line entry points users call.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from dcm_extractor.cli import main as dcm_extract
from medmask.cli import main as medmask


def run(tool: str, command: Callable[[list[str]], int], argv: list[str]) -> None:
    """Run one command like a user would, stop the demo if it fails."""
    print(f"\n$ {tool} {' '.join(argv)}", flush=True)
    code = command(argv)
    if code != 0:
        sys.exit(f"demo: `{tool} {' '.join(argv)}` failed with exit code {code}")


def summarize_dicom(truth_path: Path) -> None:
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    roles = Counter(record["role"] for case in truth["cases"] for record in case["files"])
    junk = Counter(r["reason"] for c in truth["cases"] for r in c["files"] if r["role"] == "junk")
    rows = sum(len(case["rows"]) for case in truth["cases"])
    print(f"  {len(truth['cases'])} cases, {rows} expected table rows")
    print(
        f"  {roles['image']} images, {roles['duplicate']} extracted duplicates, junk: {dict(junk)}"
    )


def summarize_masks(truth_path: Path) -> None:
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    shape = "x".join(map(str, truth["shape"]))
    print(f"  {len(truth['labels'])} masks on a {shape} grid, {len(truth['empty'])} empty")
    for overlap in truth["overlaps"]:
        a, b = overlap["names"]
        print(f"  overlap {a} / {b}: {overlap['voxels']} voxels")


def main(out: str = "demo") -> None:
    root = Path(out)
    dicom_dir, masks_dir = root / "dicom", root / "masks"
    run("dcm-extract", dcm_extract, ["--version"])
    run("dcm-extract", dcm_extract, ["sample", str(dicom_dir), "--bulk-cases", "4", "--overwrite"])
    summarize_dicom(dicom_dir / "ground_truth.json")
    run("medmask", medmask, ["--version"])
    run("medmask", medmask, ["sample", str(masks_dir), "--overwrite"])
    summarize_masks(masks_dir / "ground_truth.json")
    print("\nResults:")
    print(f"  DICOM cases:        {dicom_dir / 'dicom_cases'}")
    print(f"  DICOM ground truth: {dicom_dir / 'ground_truth.json'}")
    print(f"  organ masks:        {masks_dir / 'segmentations'}")
    print(f"  multi-label mask:   {masks_dir / 'multilabel.nii.gz'}")
    print(f"  synthetic CT:       {masks_dir / 'ct.nii.gz'}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
