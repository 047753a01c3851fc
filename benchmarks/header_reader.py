"""Header reading per core: the original extractor's approach against ours, side by side.

    .venv/bin/python benchmarks/header_reader.py [--files 10000] [--repeat 5]

Data: a generated data set built from the real CT header template
(../shared/data/ct_sample/I10 when present, else pydicom's CT_small.dcm), half of the
cases in zips. Baseline, as the original did it: ``pydicom.dcmread(path,
stop_before_pixels=True, force=True)`` on every file, zips extracted to a temporary
folder first. Ours: the fast header reader on the first 16 KB of each file, zip members
read in place (one ``pread`` and a zlib-ng inflate of each member's head). Single
process; rows are compared on every valid file. Baseline and ours run in pairs, taking
turns at going first; the ratio printed is the median pair's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from pydicom import dcmread

from dcm_extractor.reading.facts import ImageFacts
from dcm_extractor.reading.fastheader import HEAD_BYTES, FastReader, read_head
from dcm_extractor.sample import generate_dicom_dataset
from dcm_extractor.sources.zipread import ZipMember, iter_zip_members

ROOT = Path(__file__).resolve().parent
TEMPLATE = ROOT.parent.parent / "shared" / "data" / "ct_sample" / "I10"
KEYS = (
    "PatientName",
    "PatientID",
    "StudyDate",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
)


def baseline_folder(files: list[Path]) -> dict[str, tuple[str, ...]]:
    out = {}
    for path in files:
        ds = dcmread(path, stop_before_pixels=True, force=True)
        out[str(ds.SOPInstanceUID)] = tuple(str(ds.get(k, "")) for k in KEYS)
    return out


def baseline_zips(zips: list[Path]) -> dict[str, tuple[str, ...]]:
    out = {}
    for zip_path in zips:
        temp = Path(tempfile.mkdtemp())
        try:
            with zipfile.ZipFile(zip_path) as archive:
                archive.extractall(temp)
            out.update(baseline_folder(sorted(p for p in temp.rglob("*") if p.is_file())))
        finally:
            shutil.rmtree(temp)
    return out


def ours_folder(files: list[Path]) -> dict[str, tuple[str, ...]]:
    out = {}
    reader = FastReader()  # one for the run's cases, as a run in one process has
    for path in files:
        head, size = read_head(path)
        verdict, _ = reader.inspect(head, size, read_all=path.read_bytes)
        if isinstance(verdict, ImageFacts):
            out[verdict.sop_instance_uid] = tuple(verdict.values[k] for k in KEYS)
    return out


def ours_zips(zips: list[Path]) -> dict[str, tuple[str, ...]]:
    out = {}
    reader = FastReader()
    for zip_path in zips:
        for item in iter_zip_members(zip_path, head_bytes=HEAD_BYTES):
            if isinstance(item, ZipMember):
                verdict, _ = reader.inspect(item.head, item.size, read_all=item.read_all)
                if isinstance(verdict, ImageFacts):
                    out[verdict.sop_instance_uid] = tuple(verdict.values[k] for k in KEYS)
    return out


def timed(fn: Any, arg: Any) -> tuple[float, Any]:
    os.sync()  # the baseline's temporary files are flushed outside either timing
    start = time.perf_counter()
    result = fn(arg)
    return time.perf_counter() - start, result


def paired(
    repeat: int, base_fn: Any, our_fn: Any, arg: Any
) -> tuple[list[float], list[float], Any, Any]:
    """Baseline and ours run back to back ``repeat`` times, taking turns at going first.

    This VM's speed drifts by tens of percent within a minute, and a run is slower right
    after the baseline has written and deleted its temporary files; so each ratio
    compares two runs made moments apart, and neither side always runs second.
    """
    base_times, our_times, base_rows, our_rows = [], [], None, None
    for turn in range(repeat):
        if turn % 2:
            our_time, our_rows = timed(our_fn, arg)
            base_time, base_rows = timed(base_fn, arg)
        else:
            base_time, base_rows = timed(base_fn, arg)
            our_time, our_rows = timed(our_fn, arg)
        base_times.append(base_time)
        our_times.append(our_time)
    return base_times, our_times, base_rows, our_rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--image-size",
        type=int,
        default=16,
        help="rows = columns of the generated images (16: small files, the baseline's best "
        "case; 512: real CT size, 0.5 MB a file)",
    )
    args = parser.parse_args()
    template = TEMPLATE if TEMPLATE.is_file() else None
    per_case = 100
    cases = max(2, args.files // per_case)
    size = args.image_size
    out = ROOT / "out" / (f"headers-{cases}" if size == 16 else f"headers-{cases}-px{size}")
    if not (out / "dicom_cases").is_dir():
        print(
            f"generating {cases * per_case} files from {template or 'CT_small.dcm'} ...", flush=True
        )
        sizes = {"series_per_case": 2, "images_per_series": per_case // 2, "image_size": size}
        generate_dicom_dataset(
            out, showcase=False, bulk_cases=cases, template=template, overwrite=True, **sizes
        )
    root = out / "dicom_cases"
    files = sorted(p for p in root.rglob("*.dcm"))
    zips = sorted(root.rglob("*.zip"))
    members = sum(len(zipfile.ZipFile(z).namelist()) for z in zips)
    print(
        f"{len(files)} files in folders, {members} in {len(zips)} zips, "
        f"{size}x{size} images; one process\n"
    )
    print(
        f"{'':8s} {'baseline files/s':>17s} {'ours files/s':>13s} "
        f"{'ratio':>7s} {'(range)':>13s}  rows equal"
    )
    for label, base_fn, our_fn, arg, count in (
        ("folders", baseline_folder, ours_folder, files, len(files)),
        ("zips", baseline_zips, ours_zips, zips, members),
    ):
        base_times, our_times, base_rows, our_rows = paired(args.repeat, base_fn, our_fn, arg)
        ratios = sorted(b / o for b, o in zip(base_times, our_times, strict=True))
        same = base_rows == our_rows
        print(
            f"{label:8s} {count / min(base_times):17,.0f} {count / min(our_times):13,.0f} "
            f"{statistics.median(ratios):6.1f}x {f'({ratios[0]:.1f}-{ratios[-1]:.1f})':>13s}  "
            f"{'yes' if same else 'NO'} ({len(our_rows)} images)"
        )
    print(
        f"\nfiles/s: the best of {args.repeat} runs; ratio: the median of {args.repeat} "
        "baseline/ours pairs run back to back (range: lowest-highest pair)"
    )


if __name__ == "__main__":
    main()
