"""`make demo`: generate the sample data, run both tools on it, say where everything is.

Each step goes through the entry points users call: the two command lines, and
medmask's Python API once, as a user's script would.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from dcm_extractor.cli import main as dcm_extract
from medmask import MaskArchive
from medmask.cli import main as medmask


def shell_word(text: str) -> str:
    """``text`` as a shell takes it: bare, in double quotes (SQL with its single quotes
    reads as written), or shlex's quoting."""
    if shlex.quote(text) == text:
        return text
    if not set(text) & set('"$`\\!'):
        return f'"{text}"'
    return shlex.quote(text)


def run(tool: str, command: Callable[[list[str]], int], argv: list[str]) -> None:
    """Run one command like a user would, stop the demo if it fails."""
    print(f"\n$ {tool} {' '.join(map(shell_word, argv))}", flush=True)
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


def open_from_python(archive_path: Path) -> None:
    """Read the archive back through MedMask's API, as a user's script would."""
    print(f"\n$ python: MaskArchive({str(archive_path)!r}).load_mask('liver')", flush=True)
    with MaskArchive(archive_path) as archive:
        liver = archive.load_mask("liver")
        crop, offset = archive.load_crop("ribs_left")
    print(f"  liver: {liver!r}")
    print(f"  ribs_left (a group of 12 ribs): crop {crop.shape} at voxel {offset}")


def dicom_demo(root: Path, dicom_dir: Path) -> tuple[Path, Path]:
    """dcm-extract on its sample: the tables, then SQL over them; (tables, workbook)."""
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
        "--series",
        "--instances",
        "--report",
        "--columns",
        "KVP,ConvolutionKernel,(0009,04,GEMS_IDEN_01)",
    ]
    run("dcm-extract", dcm_extract, extract)
    print(f"  series table: {tables / 'all_series.csv'}; cohort report: {tables / 'report.html'}")
    # the tables as an index: SQL over them, a spreadsheet, the files of one series
    objects = (
        "SELECT Modality, IsImage, Reason, count(*) AS objects FROM instances "
        "GROUP BY ALL ORDER BY objects DESC"
    )
    run("dcm-extract", dcm_extract, ["query", str(tables), objects])
    studies = tables / "studies.xlsx"
    run(
        "dcm-extract",
        dcm_extract,
        ["query", str(tables), "SELECT * FROM studies", "-o", str(studies)],
    )
    one_series = (
        "SELECT FilePath, ZipMember FROM instances WHERE IsImage = 'yes' AND SeriesInstanceUID = "
        "(SELECT min(SeriesInstanceUID) FROM series WHERE Modality = 'CT') "
        "ORDER BY FilePath, ZipMember LIMIT 3"
    )
    run("dcm-extract", dcm_extract, ["query", str(tables), one_series, "--paths"])
    return tables, studies


def main(out: str = "demo") -> None:
    root = Path(out)
    dicom_dir, masks_dir = root / "dicom", root / "masks"
    tables, studies = dicom_demo(root, dicom_dir)
    run("medmask", medmask, ["--version"])
    sample = ["sample", str(masks_dir), "--scale", "medium", "--overwrite", "--ct-series"]
    run("medmask", medmask, sample)
    summarize_masks(masks_dir / "ground_truth.json")
    archive = masks_dir / "organs.mska"
    pack = ["pack", str(masks_dir / "segmentations"), "-o", str(archive), "--overwrite"]
    run("medmask", medmask, [*pack, "--group", "ribs_left=rib_left_*", "--group", "ribs=rib_*"])
    run("medmask", medmask, ["ls", str(archive)])
    run("medmask", medmask, ["verify", str(archive)])
    preview = masks_dir / "preview.png"
    run(
        "medmask",
        medmask,
        ["preview", str(archive), "-o", str(preview), "--image", str(masks_dir / "ct.nii.gz")],
    )
    seg, slicer = masks_dir / "organs_seg.dcm", masks_dir / "organs.seg.nrrd"
    ct_series = masks_dir / "ct_dicom"
    export = ["export-seg", str(archive), "--source", str(ct_series), "-o", str(seg)]
    run("medmask", medmask, [*export, "--algorithm", "medkit-sample", "--overwrite"])
    back = masks_dir / "from_seg.mska"
    run(
        "medmask",
        medmask,
        ["pack", str(seg), "-o", str(back), "--like", str(archive), "--overwrite"],
    )
    run("medmask", medmask, ["export-slicer", str(archive), "-o", str(slicer), "--overwrite"])
    catalog = masks_dir / "catalog.parquet"
    run("medmask", medmask, ["catalog", str(masks_dir), "-o", str(catalog)])
    question = (
        "SELECT case_id, mask, round(volume_ml, 1) AS ml, round(centroid_z, 1) AS z_mm "
        "FROM masks WHERE NOT empty AND kind = 'mask' ORDER BY volume_ml DESC LIMIT 5"
    )
    run("medmask", medmask, ["query", str(catalog), question])
    open_from_python(archive)
    print("\nResults:")
    print(f"  DICOM cases:        {dicom_dir / 'dicom_cases'}")
    print(f"  DICOM ground truth: {dicom_dir / 'ground_truth.json'}")
    print(f"  metadata tables:    {tables} (all_cases.csv, extraction_report.csv, ...)")
    print(f"  instance index:     {tables / 'all_instances.parquet'} (dcm-extract query ...)")
    print(f"  studies workbook:   {studies}")
    print(f"  organ masks:        {masks_dir / 'segmentations'}")
    print(f"  multi-label mask:   {masks_dir / 'multilabel.nii.gz'}")
    print(f"  synthetic CT:       {masks_dir / 'ct.nii.gz'}")
    print(f"  mask archive:       {archive}")
    print(f"  preview picture:    {preview}")
    print(f"  CT series (DICOM):  {ct_series}")
    print(f"  DICOM SEG:          {seg} (and back: {back})")
    print(f"  3D Slicer:          {slicer}")
    print(f'  mask catalog:       {catalog} (medmask query {catalog} "SELECT ...")')


if __name__ == "__main__":
    main(*sys.argv[1:2])
