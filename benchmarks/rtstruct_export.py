"""RT Structure Set export and import against rt-utils (what TotalSegmentator calls).

    .venv/bin/pip install -e ".[test]"      # rt-utils (and OpenCV) are in the test extra
    .venv/bin/python benchmarks/rtstruct_export.py [--repeat 3]

On s0000 (../shared/data, when present; else the medium phantom): the archive and a CT
series of its geometry (benchmarks/seg_export.py's, cached in benchmarks/out/seg), then

* rt-utils 1.2.7: ``RTStructBuilder.create_new`` + ``add_roi`` per non-empty mask +
  ``save`` (write), ``create_from`` + ``get_roi_mask_by_name`` per ROI (read);
* medmask: ``export_rtstruct`` (all masks, empty ones as ROIs without contours) and
  ``read_rtstruct`` onto the series' grid.

The masks are given to rt-utils on the series' (column, row, slice) axes, as its
``add_roi`` takes them; its own round trip and ours are checked voxel for voxel, and
rt-utils' reading of our file is compared per mask (Dice). rt-utils lays a mask's first
axis along the image rows and its second along the columns (``findContours`` on the
array as it is), so on a series whose images are not square it puts contours across the
image transposed; s0000's are 294 x 192: the Dice of rt-utils reading our file is then
only a measure of that.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from label_map_coders import best
from medmask.exchange.dicom.exchange import export_rtstruct
from medmask.exchange.dicom.grid import map_axes
from medmask.exchange.dicom.rtstruct import read_rtstruct
from medmask.exchange.dicom.source import read_source_series
from medmask.sample import generate_masks
from seg_export import OUT, SHARED, prepare

ROOT = Path(__file__).resolve().parent


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def run(label: str, folder: Path, repeat: int) -> None:
    from rt_utils import RTStructBuilder

    archive, ct, masks = prepare(folder, label)
    source = read_source_series(ct)
    from medmask import MaskArchive

    with MaskArchive(archive) as opened:
        space = opened.space
    assert space is not None
    axes = map_axes(space, source.grid)
    series = {n: axes.to_series(m) for n, m in masks.items()}  # (column, row, slice)
    non_empty = [n for n, m in series.items() if m.any()]
    grid_space = source.grid.space()
    shape = "x".join(str(n) for n in next(iter(masks.values())).shape)
    print(f"\n## {label}: {len(masks)} masks ({len(non_empty)} non-empty), {shape}")
    print(f"{'':34s} {'bytes':>11s} {'write s':>8s} {'read s':>7s}  masks back")

    theirs_path = OUT / f"{label}-rtutils.dcm"

    def rtutils_write() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rt = RTStructBuilder.create_new(dicom_series_path=str(ct))
            for name in non_empty:
                rt.add_roi(mask=series[name], name=name)
            rt.save(str(theirs_path))

    def rtutils_read(path: Path) -> dict[str, np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rt = RTStructBuilder.create_from(dicom_series_path=str(ct), rt_struct_path=str(path))
            out = {}
            for name in rt.get_roi_names():
                try:
                    out[name] = rt.get_roi_mask_by_name(name)
                except Exception:  # rt-utils raises for an ROI without contours
                    out[name] = np.zeros_like(next(iter(series.values())))
            return out

    write_s, _ = best(repeat, rtutils_write)
    read_s, back = best(repeat, lambda: rtutils_read(theirs_path))
    exact = sum(np.array_equal(back[n], series[n]) for n in non_empty)
    print(f"{'rt-utils 1.2.7 (own round trip)':34s} {theirs_path.stat().st_size:11,d} "
          f"{write_s:8.2f} {read_s:7.2f}  {exact}/{len(non_empty)} exact")  # fmt: skip

    ours_path = OUT / f"{label}-medmask-rtstruct.dcm"
    our_write, result = best(
        repeat, lambda: export_rtstruct(archive, ct, ours_path, overwrite=True)
    )
    our_read, rois = best(repeat, lambda: read_rtstruct(ours_path, grid_space))
    ours_back = {r.name: r.voxels for r in rois}
    ours_exact = sum(np.array_equal(ours_back[n], series[n]) for n in series)
    print(f"{'medmask (voxel-edge contours)':34s} {ours_path.stat().st_size:11,d} "
          f"{our_write:8.2f} {our_read:7.2f}  {ours_exact}/{len(series)} exact "
          f"({len(result.empty)} empty ROIs)")  # fmt: skip
    start = time.perf_counter()
    theirs_of_ours = rtutils_read(ours_path)
    seconds = time.perf_counter() - start
    dices = [dice(theirs_of_ours[n], series[n]) for n in non_empty]
    print(f"rt-utils reading medmask's file ({seconds:.2f} s): Dice per mask "
          f"min {min(dices):.4f}, median {float(np.median(dices)):.4f}")  # fmt: skip
    ours_of_theirs = {r.name: r.voxels for r in read_rtstruct(theirs_path, grid_space)}
    agree = sum(np.array_equal(ours_of_theirs[n], back[n]) for n in non_empty)
    print(f"medmask reading rt-utils' file: {agree}/{len(non_empty)} masks as rt-utils reads them")
    print(
        f"export {write_s / our_write:.1f}x faster than rt-utils' write (target >= 10x); "
        f"import {read_s / our_read:.1f}x faster than its read (target >= 10x); "
        f"file {ours_path.stat().st_size / theirs_path.stat().st_size:.2f} of its size"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if SHARED.is_dir():
        run("s0000", SHARED, args.repeat)
    else:
        print(f"{SHARED} not present: the generated phantom only")
        phantom = ROOT / "out" / "phantom"
        if not (phantom / "segmentations").is_dir():
            generate_masks(phantom, scale="medium", overwrite=True)
        run("phantom", phantom / "segmentations", args.repeat)


if __name__ == "__main__":
    main()
