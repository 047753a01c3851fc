"""Reading a large label map: ``SegmentationMask.from_nifti`` against nibabel's own load.

    .venv/bin/python benchmarks/large_label_map.py [--shape 512 512 800] [--labels 30]

A whole-body label map of ``--shape`` voxels with ``--labels`` organs (uint8, as
TotalSegmentator writes them, and int16, as other tools do) is generated once into
benchmarks/out. Each reader runs in a fresh process, so its peak memory (ru_maxrss,
minus the interpreter's own before the read) is its own; times are the best of
``--repeat`` runs. Targets: from_nifti within 2x nibabel's time, its peak memory within
2x the array's size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

OUT = Path(__file__).resolve().parent / "out"

READER = """
import json, resource, sys, time
import numpy as np
import nibabel as nib
from medmask import SegmentationMask
import medmask.codecs.arith_runs  # noqa: F401 - loaded before the baseline, like nibabel
which, path = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if which == "nibabel":
    array = np.asanyarray(nib.load(path).dataobj)
else:
    array = SegmentationMask.from_nifti(path).data
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(json.dumps({"seconds": elapsed, "peak_kb": peak, "nbytes": array.nbytes}))
"""


def label_map(shape: tuple[int, int, int], labels: int, dtype: type) -> Path:
    """A label map of ``labels`` box-and-ball organs, cached by shape, count and dtype."""
    path = OUT / f"labels-{'x'.join(map(str, shape))}-{labels}-{np.dtype(dtype).name}.nii.gz"
    if path.exists():
        return path
    print(f"generating {path.name} ...", flush=True)
    rng = np.random.default_rng(0)
    arr = np.zeros(shape, dtype)
    grid = [np.arange(n) for n in shape]
    for label in range(1, labels + 1):
        center = [int(rng.integers(n // 8, n - n // 8)) for n in shape]
        radius = [int(rng.integers(n // 30 + 2, n // 8 + 3)) for n in shape]
        box = tuple(slice(max(0, c - r), c + r) for c, r in zip(center, radius, strict=True))
        sub = [g[b] for g, b in zip(grid, box, strict=True)]
        inside = sum(
            ((axis[:, None, None] if i == 0 else axis[None, :, None] if i == 1 else axis)
             - c) ** 2 / r**2
            for i, (axis, c, r) in enumerate(zip(sub, center, radius, strict=True))
        ) <= 1  # fmt: skip
        arr[box][inside] = label
    OUT.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr, np.diag([0.8, 0.8, 1.0, 1.0])), path)
    return path


def measure(which: str, path: Path, repeat: int) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        result = subprocess.run(
            [sys.executable, "-c", READER, which, str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["seconds"])
    return {
        "seconds": best["seconds"],
        "peak_mb": max(r["peak_kb"] for r in runs) / 1024,
        "array_mb": best["nbytes"] / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", type=int, nargs=3, default=(512, 512, 800))
    parser.add_argument("--labels", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shape = (args.shape[0], args.shape[1], args.shape[2])
    print(f"{'label map':30s} {'reader':10s} {'seconds':>8s} {'peak MB':>8s}   ratio")
    for dtype in (np.uint8, np.int16):
        path = label_map(shape, args.labels, dtype)
        start = time.perf_counter()
        nib_result = measure("nibabel", path, args.repeat)
        ours = measure("medmask", path, args.repeat)
        name = f"{'x'.join(map(str, shape))} {np.dtype(dtype).name}"
        print(
            f"{name:30s} {'nibabel':10s} {nib_result['seconds']:8.2f} {nib_result['peak_mb']:8.0f}"
        )
        time_x = ours["seconds"] / nib_result["seconds"]
        memory_x = ours["peak_mb"] / ours["array_mb"]
        nib_x = nib_result["peak_mb"] / ours["array_mb"]
        print(
            f"{'':30s} {'from_nifti':10s} {ours['seconds']:8.2f} {ours['peak_mb']:8.0f}   "
            f"{time_x:.2f}x nibabel's time (target <= 2: {'met' if time_x <= 2 else 'MISSED'}), "
            f"peak {memory_x:.2f}x the {ours['array_mb']:.0f} MB array "
            f"(target <= 2: {'met' if memory_x <= 2 else 'MISSED'}; nibabel's own load: "
            f"{nib_x:.2f}x)"
        )
        print(f"{'':30s} ({time.perf_counter() - start:.0f} s for this dtype)", flush=True)


if __name__ == "__main__":
    main()
