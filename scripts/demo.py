"""`make demo`: generate the sample data, run both tools on it, say where everything is.

Each step goes through the entry points users call: the command lines, and medmask's
Python API for the archive (its command line comes with a later issue).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from dcm_extractor.cli import main as dcm_extract
from medmask import MaskArchive, SegmentationMask
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


def pack_masks(masks_dir: Path, archive_path: Path) -> None:
    """Pack the generated per-organ masks into one archive, as a user's script would."""
    print(f"\n$ python: pack {masks_dir / 'segmentations'} into {archive_path}", flush=True)
    masks = SegmentationMask.from_nifti_folder(masks_dir / "segmentations")
    with MaskArchive(archive_path, mode="w") as archive:
        for name, mask in masks.items():
            archive.add_mask(mask, name)
        archive.add_group("ribs_left", [f"rib_left_{i}" for i in range(1, 13)])
    nifti_bytes = sum(p.stat().st_size for p in (masks_dir / "segmentations").glob("*.nii.gz"))
    size = archive_path.stat().st_size
    print(f"  {len(masks)} masks + 1 group: {nifti_bytes:,} bytes of .nii.gz -> {size:,} bytes")


def main(out: str = "demo") -> None:
    root = Path(out)
    dicom_dir, masks_dir = root / "dicom", root / "masks"
    tables = dicom_dir / "output"
    run("dcm-extract", dcm_extract, ["--version"])
    run("dcm-extract", dcm_extract, ["sample", str(dicom_dir), "--bulk-cases", "4", "--overwrite"])
    summarize_dicom(dicom_dir / "ground_truth.json")
    extract = ["-d", str(dicom_dir / "dicom_cases"), "-o", str(tables), "--merge-all"]
    extract += [
        "--move-top-level-zips",
        "--format",
        "csv,parquet",
        "--log",
        str(root / "extractor.log"),
    ]
    run("dcm-extract", dcm_extract, extract)
    run("medmask", medmask, ["--version"])
    run("medmask", medmask, ["sample", str(masks_dir), "--overwrite"])
    summarize_masks(masks_dir / "ground_truth.json")
    pack_masks(masks_dir, masks_dir / "organs.mska")
    print("\nResults:")
    print(f"  DICOM cases:        {dicom_dir / 'dicom_cases'}")
    print(f"  DICOM ground truth: {dicom_dir / 'ground_truth.json'}")
    print(f"  metadata tables:    {tables} (all_cases.csv, extraction_report.csv, ...)")
    print(f"  organ masks:        {masks_dir / 'segmentations'}")
    print(f"  multi-label mask:   {masks_dir / 'multilabel.nii.gz'}")
    print(f"  synthetic CT:       {masks_dir / 'ct.nii.gz'}")
    print(f"  mask archive:       {masks_dir / 'organs.mska'}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
