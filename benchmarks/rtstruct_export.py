"""RT Structure Set export and import against rt-utils (what TotalSegmentator calls).

    .venv/bin/pip install -e ".[test]"      # rt-utils (and OpenCV) are in the test extra
    .venv/bin/python benchmarks/rtstruct_export.py [--repeat 3]

Three parts, each side by side in one run:

1. **s0000** (../shared/data, when present; else the medium phantom): the archive and a
   CT series of its geometry (benchmarks/seg_export.py's, cached in benchmarks/out/seg).
   rt-utils 1.2.7: ``RTStructBuilder.create_new`` + ``add_roi`` per non-empty mask +
   ``save`` (write), ``create_from`` + ``get_roi_mask_by_name`` per ROI (read); medmask:
   ``export_rtstruct`` (all masks, empty ones as ROIs without contours) and
   ``read_rtstruct`` onto the series' grid. s0000's images are 294 x 192, and rt-utils
   only takes a mask of (Columns, Rows, slices) while it traces the first axis as the
   image rows: on an image that is not square it can only write contours transposed
   (its own round trip agrees with itself, the contours lie elsewhere), and reads every
   file so. The rt-utils Dice on s0000's own grid is a measure of that alone.
2. **s0000 on a square grid**: the same masks on the grid grown to 294 x 294 (rows
   added; the voxels stay where they are), where rt-utils' convention holds: its write
   and read, ours, and rt-utils reading our files (voxel-edge and inset contours),
   Dice per mask.
3. **Hard shapes in every orientation** (medmask.sample.grids: a ring, a ring with an
   island in its hole, a vertebra with its canal, pixels touching at corners, a line one
   pixel wide, a single pixel, an empty mask; 40 x 40 x 6 on the eight grids of the
   orientation matrix): our round trip
   and rt-utils' own, voxel for voxel, and each reading the other's file.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from spacetransformer import Space

from label_map_coders import best
from medmask import MaskArchive, SegmentationMask
from medmask.exchange.dicom.exchange import export_rtstruct
from medmask.exchange.dicom.grid import map_axes
from medmask.exchange.dicom.rtstruct import read_rtstruct
from medmask.exchange.dicom.source import read_source_series
from medmask.sample import generate_masks
from medmask.sample.ct_series import write_ct_series
from medmask.sample.grids import ORIENTATIONS, contour_shapes
from seg_export import OUT, SHARED, prepare

ROOT = Path(__file__).resolve().parent


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


class Case:
    """An archive, its CT series, and its masks as rt-utils takes and gives them."""

    def __init__(self, archive: Path, ct: Path, masks: dict[str, np.ndarray]) -> None:
        self.archive, self.ct = archive, ct
        self.source = read_source_series(ct)
        with MaskArchive(archive) as opened:
            space = opened.space
        assert space is not None
        axes = map_axes(space, self.source.grid)
        self.series = {n: axes.to_series(m) for n, m in masks.items()}  # (column, row, slice)
        self.non_empty = [n for n, m in self.series.items() if m.any()]
        self.grid_space = self.source.grid.space()
        self.square = self.source.grid.rows == self.source.grid.columns

    def for_rt_utils(self, mask: np.ndarray) -> np.ndarray:
        """(rows, columns, slices) where rt-utils puts contours right (square images),
        else (columns, rows, slices), the only shape it takes."""
        return mask.transpose(1, 0, 2) if self.square else mask

    def rtutils_write(self, path: Path) -> None:
        from rt_utils import RTStructBuilder

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rt = RTStructBuilder.create_new(dicom_series_path=str(self.ct))
            order = self._rtutils_order(rt.series_data)
            for name in self.non_empty:
                rt.add_roi(mask=self.for_rt_utils(self.series[name])[:, :, order], name=name)
            rt.save(str(path))

    def rtutils_read(self, path: Path) -> dict[str, np.ndarray]:
        """rt-utils' masks, back on (column, row, slice) in our slice order."""
        from rt_utils import RTStructBuilder

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rt = RTStructBuilder.create_from(
                dicom_series_path=str(self.ct), rt_struct_path=str(path)
            )
            order = self._rtutils_order(rt.series_data)
            out = {}
            for name in rt.get_roi_names():
                try:
                    theirs = rt.get_roi_mask_by_name(name)
                except Exception:  # rt-utils raises for an ROI without contours
                    theirs = np.zeros_like(self.for_rt_utils(next(iter(self.series.values()))))
                ours = np.zeros_like(theirs)
                ours[:, :, order] = theirs
                out[name] = ours.transpose(1, 0, 2) if self.square else ours
            return out

    def _rtutils_order(self, datasets: list) -> list[int]:  # type: ignore[type-arg]
        """Our slice index of each of rt-utils' slices (it sorts them its own way)."""
        ours = {uid: i for i, uid in enumerate(self.source.sop_instance_uids)}
        return [ours[str(ds.SOPInstanceUID)] for ds in datasets]

    def ours_read(self, path: Path) -> dict[str, np.ndarray]:
        return {r.name: r.voxels for r in read_rtstruct(path, self.grid_space)}


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def dice_line(label: str, read: dict[str, np.ndarray], case: Case) -> str:
    dices = [dice(read[n], case.series[n]) for n in case.non_empty]
    exact = sum(np.array_equal(read[n], case.series[n]) for n in case.non_empty)
    return (
        f"  {label:44s} Dice per mask min {min(dices):.4f}, median "
        f"{float(np.median(dices)):.4f}; {exact}/{len(case.non_empty)} exact"
    )


def compare(label: str, case: Case, repeat: int) -> None:
    """rt-utils' write and read against ours on one case, and each reading the other."""
    grid = case.source.grid
    print(
        f"\n## {label}: {len(case.series)} masks ({len(case.non_empty)} non-empty), "
        f"images {grid.rows} x {grid.columns}, {len(grid.positions)} slices"
    )
    print(f"{'':34s} {'bytes':>11s} {'write s':>8s} {'read s':>7s}  masks back")
    theirs = OUT / f"{label}-rtutils.dcm"
    write_s, _ = best(repeat, lambda: case.rtutils_write(theirs))
    read_s, back = best(repeat, lambda: case.rtutils_read(theirs))
    exact = sum(np.array_equal(back[n], case.series[n]) for n in case.non_empty)
    print(f"{'rt-utils 1.2.7 (own round trip)':34s} {theirs.stat().st_size:11,d} "
          f"{write_s:8.2f} {read_s:7.2f}  {exact}/{len(case.non_empty)} exact")  # fmt: skip
    ours: dict[str, Path] = {}
    for style in ("voxel-edges", "inset"):
        path = ours[style] = OUT / f"{label}-medmask-{style}.dcm"
        our_write, result = best(
            repeat,
            lambda p=path, s=style: export_rtstruct(  # type: ignore[misc]
                case.archive, case.ct, p, overwrite=True, contours=s
            ),
        )
        our_read, read = best(repeat, lambda p=path: case.ours_read(p))  # type: ignore[misc]
        ours_exact = sum(np.array_equal(read[n], case.series[n]) for n in case.series)
        print(f"{'medmask (' + style + ' contours)':34s} {path.stat().st_size:11,d} "
              f"{our_write:8.2f} {our_read:7.2f}  {ours_exact}/{len(case.series)} exact "
              f"({len(result.empty)} empty ROIs)")  # fmt: skip
        if style == "voxel-edges":
            print(
                f"  export {write_s / our_write:.1f}x faster than rt-utils' write (target "
                f">= 10x); import {read_s / our_read:.1f}x faster than its read (target >= "
                f"10x); file {path.stat().st_size / theirs.stat().st_size:.2f} of its size"
            )
    for style, path in ours.items():
        print(dice_line(f"rt-utils reading medmask's {style} file:", case.rtutils_read(path), case))
    mine = case.ours_read(theirs)
    agree = sum(np.array_equal(mine[n], back[n]) for n in case.non_empty)
    print(f"  medmask reading rt-utils' file: {agree}/{len(case.non_empty)} masks as rt-utils "
          "reads them")  # fmt: skip


def square_case(archive: Path, masks: dict[str, np.ndarray], label: str) -> Case:
    """The masks on their grid grown along its shorter in-plane axis to a square (the
    added voxels empty; origin and directions unchanged), with a CT series of it."""
    with MaskArchive(archive) as opened:
        space = opened.space
    assert space is not None
    nx, ny, nz = (int(n) for n in space.shape)
    side = max(nx, ny)
    grown = Space(
        shape=(side, side, nz), origin=space.origin, spacing=space.spacing,
        x_orientation=space.x_orientation, y_orientation=space.y_orientation,
        z_orientation=space.z_orientation,
    )  # fmt: skip
    padded = {n: np.pad(m, ((0, side - nx), (0, side - ny), (0, 0))) for n, m in masks.items()}
    square = OUT / f"{label}-square.mska"
    with MaskArchive(square, "w") as out:
        for name, mask in padded.items():
            out.add_mask(SegmentationMask(mask.astype(np.uint8), {name: 1}, grown), name)
    ct = OUT / f"{label}-square-ct"
    if not ct.is_dir():
        write_ct_series(np.zeros((side, side, nz), np.int16), grown, ct)
    return Case(square, ct, padded)


def orientations() -> None:
    """Hard shapes on every grid of the orientation matrix: both round trips, each
    reading the other's file."""
    shapes = contour_shapes()
    filled = sum(bool(m.any()) for m in shapes.values())
    print(
        f"\n## Hard shapes in every orientation (40 x 40 x 6, {len(shapes)} masks, "
        f"{filled} non-empty)"
    )
    print(
        f"{'grid':26s} {'medmask':>9s} {'rt-utils':>9s} {'rt-utils reads ours':>20s} "
        f"{'ours of theirs':>15s}\n{'':26s} {'own trip':>9s} {'own trip':>9s} "
        f"{'edges / inset':>20s} {'= theirs':>15s}"
    )
    spacing = np.array([0.8, 0.8, 2.5])
    folder = OUT / "orientations"
    for name, directions in ORIENTATIONS.items():
        space = Space(
            shape=(40, 40, 6), origin=(-31.5, 12.25, 40.0), spacing=tuple(spacing),
            x_orientation=tuple(directions[:, 0]), y_orientation=tuple(directions[:, 1]),
            z_orientation=tuple(directions[:, 2]),
        )  # fmt: skip
        here = folder / name
        if not (here / "ct").is_dir():
            write_ct_series(np.zeros(space.shape, np.int16), space, here / "ct")
        with MaskArchive(here / "shapes.mska", "w") as out:
            for mask_name, mask in shapes.items():
                out.add_mask(
                    SegmentationMask(mask.astype(np.uint8), {mask_name: 1}, space), mask_name
                )
        case = Case(here / "shapes.mska", here / "ct", shapes)
        edges, inset = here / "edges.dcm", here / "inset.dcm"
        export_rtstruct(case.archive, case.ct, edges, overwrite=True)
        export_rtstruct(case.archive, case.ct, inset, overwrite=True, contours="inset")
        ours = case.ours_read(edges)
        ours_exact = sum(np.array_equal(ours[n], case.series[n]) for n in case.series)
        theirs_file = here / "rtutils.dcm"
        case.rtutils_write(theirs_file)
        theirs = case.rtutils_read(theirs_file)
        n = len(case.non_empty)
        theirs_exact = sum(np.array_equal(theirs[k], case.series[k]) for k in case.non_empty)
        reads = [case.rtutils_read(p) for p in (edges, inset)]
        of_ours = [sum(np.array_equal(r[k], case.series[k]) for k in case.non_empty) for r in reads]
        mine = case.ours_read(theirs_file)
        agree = sum(np.array_equal(mine[k], theirs[k]) for k in case.non_empty)
        print(
            f"{name:26s} {ours_exact:>5d}/{len(case.series)} {theirs_exact:>7d}/{n} "
            f"{of_ours[0]:>13d}/{n} {of_ours[1]}/{n} {agree:>13d}/{n}"
        )
    print(
        "  rt-utils reads voxel-edge contours grown by up to a pixel (it rounds corners to "
        "pixels and fills the boundary in);\n  inset contours (--contours inset) it reads "
        "exactly, as medmask does."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if SHARED.is_dir():
        label, folder = "s0000", SHARED
    else:
        print(f"{SHARED} not present: the generated phantom only")
        phantom = ROOT / "out" / "phantom"
        if not (phantom / "segmentations").is_dir():
            generate_masks(phantom, scale="medium", overwrite=True)
        label, folder = "phantom", phantom / "segmentations"
    archive, ct, masks = prepare(folder, label)
    compare(label, Case(archive, ct, masks), args.repeat)
    compare(f"{label} on a square grid", square_case(archive, masks, label), args.repeat)
    orientations()


if __name__ == "__main__":
    main()
