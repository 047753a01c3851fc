"""Mask archives side by side: nibabel, medmask 0.1.3 and ours, on real and generated masks.

    .venv/bin/python benchmarks/archive_vs_medmask013.py [--repeat 5] [--no-legacy]

Data: TotalSegmentator subject s0000 from ../shared/data/totalseg_s0000 (skipped when
absent), s0000 at 3 mm cropped to 120 x 100 x 30 (a stand-in for TotalSegmentator's
``--fast`` output, where masks are small), and a generated full-body phantom (117 masks,
medmask.sample "medium" scale).
Both archives are built the way MedMask's example builds them: each mask as
``SegmentationMask(uint8 0/1 array, {name: 1}, space)``; also measured: the MedMask
notebook's read loop (``load_mask`` + ``get_all_masks``, nothing copied or touched) against
0.1.3's ``load_segmask(...).data``, and the notebook's 117 separate adds (each committed on
return) against one batch. medmask 0.1.3 runs in its own
virtual environment (benchmarks/out/venv-medmask013, created on first use with pip:
its import name clashes with ours). Times are the best of ``--repeat`` runs; the ratios
to the memory floor and to nibabel are medians of runs paired back to back (this VM's
speed drifts). The last line restates the absolute time targets as multiples of the
floor, which carry over between machines (the targets' machine had a ~31 ms floor).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from spacetransformer import Space

from medmask import MaskArchive, SegmentationMask
from medmask.ops.pack import pack
from medmask.sample import generate_masks

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out"
SHARED = ROOT.parent.parent / "shared" / "data" / "totalseg_s0000"

TARGETS = {
    "size_kb": 20.0,
    "read_full_vs_floor": 1.25,
    "nibabel_vs_read_full": 20.0,
    "legacy_full_vs_crops": 8.0,
    "open_read_one_ms": 0.5,
    "write_ms": 150.0,
}
REFERENCE_FLOOR_MS = 31.0  # the issue's floor for s0000's 117 arrays, where the targets were set
REFERENCE_NIBABEL_MS = 830.0  # and nibabel reading them there

LEGACY_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, statistics
    from pathlib import Path
    import nibabel as nib
    import numpy as np
    from medmask import MaskArchive, SegmentationMask
    from spacetransformer import Space

    folder, archive_path, repeat = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    files = sorted(folder.glob("*.nii.gz"))
    arrays = {f.name[:-7]: np.asarray(nib.load(f).dataobj) for f in files}
    space = Space.from_nifti(nib.load(files[0]))
    best = {}
    def timed(key, fn):
        t0 = time.perf_counter()
        fn()
        best[key] = min(best.get(key, 1e9), time.perf_counter() - t0)
    def write():
        archive_path.unlink(missing_ok=True)
        archive = MaskArchive(str(archive_path), mode="w", space=space)
        for name, arr in arrays.items():
            archive.add_segmask(SegmentationMask(arr, {name: 1}, space), name)
    def read_all():
        archive = MaskArchive(str(archive_path), mode="r")
        for name in arrays:
            np.count_nonzero(archive.load_segmask(name).data)
    for _ in range(max(1, repeat // 2)):
        timed("write", write)
    def from_files():  # what packing a folder is with 0.1.3: read each file, add it
        archive_path.unlink(missing_ok=True)
        archive = MaskArchive(str(archive_path), mode="w", space=space)
        for f in files:
            image = nib.load(f)
            arr = np.asarray(image.dataobj)
            archive.add_segmask(SegmentationMask(arr, {f.name[:-7]: 1}, space), f.name[:-7])
    for _ in range(max(1, repeat // 2)):
        timed("from_files", from_files)
    for _ in range(repeat):
        timed("read_full", read_all)
    one = []
    for name in arrays:
        t0 = time.perf_counter()
        MaskArchive(str(archive_path), mode="r").load_segmask(name).data
        one.append(time.perf_counter() - t0)
    best["open_read_one_median"] = statistics.median(one)
    def notebook_read():  # the MedMask notebook's loop, 0.1.3's way: .data, nothing touched
        archive = MaskArchive(str(archive_path), mode="r")
        for name in arrays:
            archive.load_segmask(name).data
    for _ in range(repeat):
        timed("notebook_read", notebook_read)
    best["notebook_one_median"] = best["open_read_one_median"]  # 0.1.3's way is that loop
    best["size"] = archive_path.stat().st_size
    print(json.dumps(best))
    """
)


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """Fastest of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def paired(repeat: int, fn: Callable[[], object], reference: Callable[[], object]) -> float:
    """Median of ``fn``'s time over ``reference``'s, the two run back to back in turns.

    This VM's speed drifts by tens of percent (even 2x) within a minute, so a ratio of
    two best-ofs taken at different moments can say anything; each pair here is taken
    moments apart, and neither side always goes first. Each side runs once untimed
    first: whatever runs right after nibabel's gigabyte of short-lived arrays pays for
    the memory nibabel handed back to the system, and that is not its own cost.
    """
    ratios = []
    for turn in range(repeat):
        times = {}
        for which in (fn, reference) if turn % 2 else (reference, fn):
            which()
            start = time.perf_counter()
            which()
            times[id(which)] = time.perf_counter() - start
        ratios.append(times[id(fn)] / times[id(reference)])
    return statistics.median(ratios)


def legacy_python() -> Path | None:
    """The medmask 0.1.3 environment's python, created on first use; None if pip fails."""
    venv = OUT / "venv-medmask013"
    python = venv / "bin" / "python"
    if python.exists():
        return python
    print("creating", venv, "(medmask==0.1.3, nibabel) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "medmask==0.1.3", "nibabel"],
            check=True,
        )
    except (subprocess.CalledProcessError, OSError) as err:
        print("medmask 0.1.3 unavailable:", err)
        return None
    return python


def label(folder: Path) -> str:
    return folder.parent.name if folder.name == "segmentations" else folder.name


def run_legacy(python: Path, folder: Path, repeat: int) -> dict[str, float] | None:
    archive = OUT / f"{label(folder)}-0.1.3.mska"
    result = subprocess.run(
        [str(python), "-c", LEGACY_SCRIPT, str(folder), str(archive), str(repeat)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print("medmask 0.1.3 run failed:", result.stderr[-2000:])
        return None
    data: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def measure(folder: Path, repeat: int, legacy: dict[str, float] | None) -> dict[str, Any]:
    files = sorted(folder.glob("*.nii.gz"))
    space = Space.from_nifti(nib.load(files[0]))
    shape = tuple(space.shape)
    archive_path = OUT / f"{label(folder)}-ours.mska"
    arrays = {f.name[:-7]: np.asarray(nib.load(f).dataobj) for f in files}
    nii_bytes = sum(f.stat().st_size for f in files)

    def floor() -> None:
        for _ in arrays:
            np.count_nonzero(np.zeros(shape, np.uint8))

    def nibabel_read() -> None:
        for f in files:
            np.count_nonzero(np.asarray(nib.load(f).dataobj))

    def write() -> None:
        with MaskArchive(archive_path, mode="w", space=space) as archive:
            for name, arr in arrays.items():
                archive.add_mask(SegmentationMask(arr, {name: 1}, space), name)

    def read_full() -> None:
        with MaskArchive(archive_path) as archive:
            for name in arrays:
                np.count_nonzero(archive.load_mask(name).data)

    def read_crops() -> None:
        with MaskArchive(archive_path) as archive:
            for name in arrays:
                np.count_nonzero(archive.load_crop(name)[0])

    def from_files() -> None:  # medmask pack FOLDER -o ARCHIVE: read, check, write
        pack(folder, archive_path.with_suffix(".packed.mska"), overwrite=True)

    result: dict[str, Any] = {
        "name": label(folder),
        "masks": len(files),
        "shape": "x".join(map(str, shape)),
        "nii_bytes": nii_bytes,
        "write": best_of(max(1, repeat // 2), write),
        "from_files": best_of(max(1, repeat // 2), from_files),
    }
    result["size"] = archive_path.stat().st_size
    result.update(measure_notebook_ways(arrays, space, archive_path, repeat, write))
    result["floor"] = best_of(repeat, floor)
    result["nibabel"] = best_of(max(1, repeat // 2), nibabel_read)
    result["read_full"] = best_of(repeat, read_full)
    result["read_full_vs_floor"] = paired(repeat, read_full, floor)
    result["nibabel_vs_read_full"] = paired(max(1, repeat // 2), nibabel_read, read_full)
    result["read_crops"] = best_of(repeat, read_crops)
    one = []
    for name in arrays:
        start = time.perf_counter()
        with MaskArchive(archive_path) as archive:
            archive.load_mask(name)
        one.append(time.perf_counter() - start)
    result["open_read_one_median"] = statistics.median(one)
    result["open_read_one_max"] = max(one)
    with MaskArchive(archive_path) as archive:
        result["exact"] = all(
            np.array_equal(archive.load_mask(n).data, a) for n, a in arrays.items()
        )
    result["legacy"] = legacy
    return result


def measure_notebook_ways(
    arrays: dict[str, np.ndarray],
    space: Space,
    archive_path: Path,
    repeat: int,
    write: Callable[[], None],
) -> dict[str, float]:
    """The MedMask notebook's read loop, and its separate adds against one batch (``write``)."""
    separate_path = archive_path.with_name(archive_path.stem + "-separate.mska")

    def write_separate() -> None:  # the notebook's way: no with-block, each add committed
        archive = MaskArchive(separate_path, mode="w", space=space)
        for name, arr in arrays.items():
            archive.add_mask(SegmentationMask(arr, {name: 1}, space), name)
        archive.close()

    def notebook_read() -> None:  # the notebook's loop: load_mask + get_all_masks (no copy)
        archive = MaskArchive(archive_path, mode="r")
        for name in arrays:
            archive.load_mask(name).get_all_masks()

    out = {"write_separate": best_of(max(1, repeat // 2), write_separate)}
    out["separate_size"] = separate_path.stat().st_size
    out["separate_vs_batch"] = paired(repeat, write_separate, write)
    out["notebook_read"] = best_of(repeat, notebook_read)
    one = []
    for name in arrays:
        start = time.perf_counter()
        MaskArchive(archive_path).load_mask(name).get_all_masks()
        one.append(time.perf_counter() - start)
    out["notebook_one_median"] = statistics.median(one)
    return out


def report(r: dict[str, Any]) -> None:
    ms = 1000.0
    legacy = r["legacy"] or {}
    mb = r["nii_bytes"] / 1e6
    print(f"\n## {r['name']}: {r['masks']} masks, {r['shape']} voxels, {mb:.2f} MB of .nii.gz")
    print(f"{'measure':34s} {'nibabel':>10s} {'0.1.3':>10s} {'ours':>10s}   ratio")
    size_legacy = legacy.get("size")
    print(
        f"{'archive size (KB)':34s} {r['nii_bytes'] / 1024:10.1f} "
        f"{(size_legacy or float('nan')) / 1024:10.1f} {r['size'] / 1024:10.1f}   "
        f"{r['nii_bytes'] / r['size']:.0f}:1 vs .nii.gz"
        + (f", {size_legacy / r['size']:.1f}x smaller than 0.1.3" if size_legacy else "")
    )
    print(
        f"{'read all, full arrays (ms)':34s} {r['nibabel'] * ms:10.1f} "
        f"{legacy.get('read_full', float('nan')) * ms:10.1f} {r['read_full'] * ms:10.1f}   "
        f"{r['read_full_vs_floor']:.2f}x the memory floor ({r['floor'] * ms:.1f} ms), "
        f"{r['nibabel_vs_read_full']:.1f}x faster than nibabel (median pairs)"
    )
    crops_ratio = legacy["read_full"] / r["read_crops"] if legacy else float("nan")
    print(
        f"{'read all, load_crop (ms)':34s} {'':10s} {'':10s} {r['read_crops'] * ms:10.1f}   "
        f"{crops_ratio:.1f}x faster than 0.1.3 reading whole"
    )
    print(
        f"{'open + read one, median (ms)':34s} {'':10s} "
        f"{legacy.get('open_read_one_median', float('nan')) * ms:10.2f} "
        f"{r['open_read_one_median'] * ms:10.2f}   max {r['open_read_one_max'] * ms:.2f} ms"
    )
    write_ratio = legacy["write"] / r["write"] if legacy else float("nan")
    print(
        f"{'write all (ms)':34s} {'':10s} {legacy.get('write', float('nan')) * ms:10.1f} "
        f"{r['write'] * ms:10.1f}   {write_ratio:.1f}x faster than 0.1.3"
    )
    pack_ratio = legacy["from_files"] / r["from_files"] if legacy else float("nan")
    print(
        f"{'pack from the .nii.gz files (ms)':34s} {'':10s} "
        f"{legacy.get('from_files', float('nan')) * ms:10.1f} "
        f"{r['from_files'] * ms:10.1f}   {pack_ratio:.2f}x 0.1.3's (nibabel + add_segmask "
        "each) (target >= 1.0x)"
    )
    nb_all = legacy["notebook_read"] / r["notebook_read"] if legacy else float("nan")
    nb_one = legacy["notebook_one_median"] / r["notebook_one_median"] if legacy else float("nan")
    print(
        f"{'notebook read loop, all (ms)':34s} {'':10s} "
        f"{legacy.get('notebook_read', float('nan')) * ms:10.2f} {r['notebook_read'] * ms:10.2f}"
        f"   {nb_all:.1f}x 0.1.3 (load_mask + get_all_masks vs load_segmask + .data)"
    )
    print(
        f"{'notebook read, open + one (ms)':34s} {'':10s} "
        f"{legacy.get('notebook_one_median', float('nan')) * ms:10.2f} "
        f"{r['notebook_one_median'] * ms:10.2f}   {nb_one:.1f}x 0.1.3 (median over masks)"
    )
    size_x = r["separate_size"] / r["size"]
    print(
        f"{'117 separate adds vs one batch':34s} {'':10s} {'':10s} "
        f"{r['write_separate'] * ms:10.1f}   {r['separate_size'] / 1024:.1f} KB vs "
        f"{r['size'] / 1024:.1f} KB ({size_x:.3f}x the size), {r['separate_vs_batch']:.2f}x "
        f"the time (median pairs)"
    )
    exact = "yes" if r["exact"] else "NO"
    print(f"{'bit-exact, overlaps included':34s} {'':10s} {'':10s} {exact:>10s}")
    checks = {
        f"size <= {TARGETS['size_kb']:.0f} KB": r["size"] / 1024 <= TARGETS["size_kb"],
        f"read full <= {TARGETS['read_full_vs_floor']}x floor": r["read_full_vs_floor"]
        <= TARGETS["read_full_vs_floor"],
        f">= {TARGETS['nibabel_vs_read_full']:.0f}x nibabel": r["nibabel_vs_read_full"]
        >= TARGETS["nibabel_vs_read_full"],
        f"crops >= {TARGETS['legacy_full_vs_crops']:.0f}x 0.1.3 whole": bool(legacy)
        and crops_ratio >= TARGETS["legacy_full_vs_crops"],
        f"open+read one <= {TARGETS['open_read_one_ms']} ms": r["open_read_one_median"] * ms
        <= TARGETS["open_read_one_ms"],
        f"write <= {TARGETS['write_ms']:.0f} ms": r["write"] * ms <= TARGETS["write_ms"],
        "bit-exact": r["exact"],
        "notebook read all >= 1.0x 0.1.3": nb_all >= 1.0,
        "notebook read one >= 1.0x 0.1.3": nb_one >= 1.0,
        "separate adds <= 1.10x batch size": size_x <= 1.10,
        "separate adds <= 2x batch time": r["separate_vs_batch"] <= 2.0,
    }
    heading = "targets" if r["name"] == SHARED.name else "s0000's targets, for scale"
    verdicts = "; ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in checks.items())
    print(f"{heading}: {verdicts}")
    # The absolute targets were set on a machine whose memory floor for s0000 was ~31 ms;
    # as multiples of the floor they carry over to a machine of another speed.
    floor_one = r["floor"] / r["masks"]
    write_x, one_x = r["write"] / r["floor"], r["open_read_one_median"] / floor_one
    write_t = TARGETS["write_ms"] / REFERENCE_FLOOR_MS
    one_t = TARGETS["open_read_one_ms"] / (REFERENCE_FLOOR_MS / 117)
    print(
        f"relative to this machine's floor: write {write_x:.1f}x the floor "
        f"(target {write_t:.1f}x: {'met' if write_x <= write_t else 'MISSED'}); "
        f"open+read one {one_x:.1f}x one array's floor "
        f"(target {one_t:.1f}x: {'met' if one_x <= one_t else 'MISSED'})"
    )
    # nibabel is not equally slow everywhere: zlib speed and memory speed differ by machine.
    nib_floors = r["nibabel"] / r["floor"]
    there = REFERENCE_NIBABEL_MS / REFERENCE_FLOOR_MS / r["read_full_vs_floor"]
    print(
        f"nibabel takes {nib_floors:.1f}x the floor here, "
        f"{REFERENCE_NIBABEL_MS / REFERENCE_FLOOR_MS:.1f}x on the targets' machine; "
        f"reading at {r['read_full_vs_floor']:.2f}x the floor is {there:.1f}x nibabel there "
        f"(target {TARGETS['nibabel_vs_read_full']:.0f}x: "
        f"{'met' if there >= TARGETS['nibabel_vs_read_full'] else 'MISSED'})"
    )


def three_mm_stand_in() -> Path:
    """s0000 as TotalSegmentator's ``--fast`` 3 mm output looks: every second voxel of
    the 1.5 mm masks (nearest neighbour), cropped to 120 x 100 x 30 around the pelvis,
    117 NIfTI files (issue 31: per-mask overhead dominates where masks are small)."""
    folder = OUT / "s0000-3mm"
    files = sorted(SHARED.glob("*.nii.gz"))
    if len(list(folder.glob("*.nii.gz"))) == len(files):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    first = nib.load(files[0])
    start = (5, 0, 60)  # voxels of the 3 mm grid where the crop begins: all 21 organs in it
    stop = (start[0] + 120, start[1] + 100, start[2] + 30)
    affine = first.affine @ np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = first.affine[:3, :3] @ (2 * np.asarray(start)) + first.affine[:3, 3]
    for path in files:
        data = np.asarray(nib.load(path).dataobj)[::2, ::2, ::2]
        crop = np.zeros((120, 100, 30), np.uint8)
        part = data[start[0] : stop[0], start[1] : stop[1], start[2] : stop[2]]
        crop[: part.shape[0], : part.shape[1], : part.shape[2]] = part
        nib.save(nib.Nifti1Image(crop, affine), folder / path.name)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-legacy", action="store_true", help="skip medmask 0.1.3")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    folders = []
    if SHARED.is_dir():
        folders.append(SHARED)
        folders.append(three_mm_stand_in())
    else:
        print(f"{SHARED} not present: only the generated phantom is measured")
    phantom = OUT / "phantom"
    if not (phantom / "segmentations").is_dir():
        print("generating the full-body phantom (117 masks) ...", flush=True)
        generate_masks(phantom, scale="medium", overwrite=True)
    folders.append(phantom / "segmentations")
    python = None if args.no_legacy else legacy_python()
    for folder in folders:
        legacy = run_legacy(python, folder, args.repeat) if python else None
        report(measure(folder, args.repeat, legacy))


if __name__ == "__main__":
    main()
